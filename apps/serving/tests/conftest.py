import pytest


@pytest.fixture(autouse=True)
def _serving_process_state():
    """Each test starts with an empty routing table and log buffer, and
    writes buffered logs itself (``logbuffer.flush()``) instead of a thread
    that could not see the test's transaction."""
    from apps.serving import logbuffer
    from apps.serving.runtime import runtime

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
    return make_user("ML Engineer", username="engineer_t")


@pytest.fixture
def scientist(make_user):
    return make_user("Data Scientist", username="scientist_t")


@pytest.fixture
def viewer(make_user):
    return make_user("Viewer", username="viewer_t")


@pytest.fixture
def api_key_for():
    """An ``Authorization`` header with a fresh API key of ``user``."""
    from django.db import transaction

    from apps.core.services import api_key_create

    def _make(user) -> dict:
        with transaction.atomic():
            issued = api_key_create(user=user, name="test")
        return {"HTTP_AUTHORIZATION": f"Api-Key {issued.raw_key}"}

    return _make


@pytest.fixture
def fitted():
    """A fitted logistic pipeline, its signature and test rows (cached per session)."""
    from apps.serving.tests.factories import fit_pipeline

    return _cached_fit("logistic", fit_pipeline)


_FITS: dict = {}


def _cached_fit(estimator, fit):
    if estimator not in _FITS:
        _FITS[estimator] = fit(estimator=estimator)
    return _FITS[estimator]


@pytest.fixture
def versions(engineer):
    """Version 1 in Production and version 2 in Staging of one model."""
    from apps.registry.choices import Stage
    from apps.serving.tests.factories import make_model_version

    v1 = make_model_version(owner=engineer, stage=Stage.PRODUCTION)
    v2 = make_model_version(owner=engineer, stage=Stage.STAGING, seed=12)
    return v1, v2
