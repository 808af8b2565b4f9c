"""Fixtures for the client's tests: a live server with a real API key, a
counting session and a fault-injecting proxy (see client_testkit)."""

from __future__ import annotations

import pytest
from client_testkit import CountingSession, FaultyProxy, TrackingServer


@pytest.fixture
def tracking_server(live_server, make_user):
    """The live test server and an API key of a Data Scientist."""
    from apps.core.services import api_key_create

    user = make_user("Data Scientist", username="client_tester")
    issued = api_key_create(user=user, name="client tests")
    return TrackingServer(url=live_server.url, api_key=issued.raw_key, user=user)


@pytest.fixture
def counting_session():
    session = CountingSession()
    yield session
    session.close()


@pytest.fixture
def faulty_proxy(tracking_server):
    proxy = FaultyProxy(tracking_server.url)
    yield proxy
    proxy.close()
