"""Fixtures the A/B service tests share: a clean in-process serving state
(routing table, loaded models, the log buffer flushed by hand) and the people
who run a test."""

import pytest

from apps.serving import logbuffer
from apps.serving.runtime import runtime


@pytest.fixture
def serving_process_state():
    runtime.reset()
    logbuffer.buffer.clear()
    previous = logbuffer.buffer.use_thread
    logbuffer.buffer.use_thread = False
    yield
    logbuffer.buffer.use_thread = previous
    logbuffer.buffer.clear()
    runtime.reset()


@pytest.fixture
def engineer(make_user):
    return make_user("ML Engineer", username="engineer_ab")


@pytest.fixture
def approver(make_user):
    return make_user("Approver", username="approver_ab")
