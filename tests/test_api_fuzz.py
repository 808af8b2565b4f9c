"""Property-based fuzz of the whole OpenAPI schema, in process.

schemathesis reads /api/schema/ from the WSGI application and, for every
operation, sends schema-valid and schema-invalid requests. Any 5xx fails, and
so does an answer the schema does not describe (status code, content type,
body). Seeded objects make some generated ids real.

The coverage phase (boundaries, every kind of wrong value, for each
parameter and field) runs as Admin, who gets furthest past the permission
checks; every role then gets a few random examples per operation. Both are
derandomized, so a run is repeatable."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from apps.core.choices import Role
from mlops_site.wsgi import application
from tests.api_seed import ROLES

SEED = 20261203
_GENERATION = {"deterministic": True, "database": "none"}
thorough = schemathesis.openapi.from_wsgi("/api/schema/", application, config=schemathesis.Config.from_dict({
    "seed": SEED,
    "generation": {**_GENERATION, "max-examples": 5},
    "phases": {"coverage": {"enabled": True}, "examples": {"enabled": True}},
}))
quick = schemathesis.openapi.from_dict(thorough.raw_schema, config=schemathesis.Config.from_dict({
    "seed": SEED,
    "generation": {**_GENERATION, "max-examples": 3},
    "phases": {"coverage": {"enabled": False}, "examples": {"enabled": False}},
}))
quick.app = application
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# One example shares the seeded objects with the next (the test's transaction
# is rolled back after the operation, not after each example).
FUZZ_SETTINGS = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                                HealthCheck.filter_too_much])


@pytest.fixture
def seeded(api_objects, db):
    """Requests go through the WSGI handler, which closes the database
    connection after each one unless told not to: that would end the test's
    transaction (Django's test client does the same). Predictions are logged
    synchronously, inside the transaction, not by the buffer's thread."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    from apps.serving import logbuffer
    from apps.serving.runtime import runtime

    runtime.reset()
    logbuffer.buffer.clear()
    threaded, logbuffer.buffer.use_thread = logbuffer.buffer.use_thread, False
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield api_objects
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
        logbuffer.buffer.use_thread = threaded
        logbuffer.buffer.clear()
        runtime.reset()


@pytest.mark.slow
@thorough.parametrize()
@FUZZ_SETTINGS
def test_api_answers_as_documented_to_admin(case, seeded):
    case.call_and_validate(headers=seeded.headers[Role.ADMIN], checks=CHECKS)


@pytest.mark.slow
@quick.parametrize()
@pytest.mark.parametrize("role", [role for role in ROLES if role != Role.ADMIN])
@FUZZ_SETTINGS
def test_api_answers_as_documented_to_each_role(case, role, seeded):
    case.call_and_validate(headers=seeded.headers[role], checks=CHECKS)
