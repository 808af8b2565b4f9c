"""Fixtures for registry tests: one user per role, a valid dataset version
with a real stored CSV, finished runs with fitted skops pipelines."""

from types import SimpleNamespace

import pytest

from apps.core import events
from apps.registry.tests import factories
from apps.registry.tests.helpers import Published


@pytest.fixture
def people(make_user):
    return SimpleNamespace(
        scientist=make_user("Data Scientist", username="sci"),
        engineer=make_user("ML Engineer", username="eng"),
        qa=make_user("Approver", username="qa"),
        qa2=make_user("Approver", username="qa2"),
        # Can both ask and approve: the case four eyes exists for.
        lead=make_user("Data Scientist", "Approver", username="lead"),
        viewer=make_user("Viewer", username="view"),
        admin=make_user("Admin", username="boss"),
        root=make_user(username="root", is_superuser=True),
    )


@pytest.fixture
def data(people):
    frame = factories.sample_frame(rows=400, seed=1)
    version = factories.make_dataset_version(people.scientist, frame=frame)
    return SimpleNamespace(frame=frame, version=version)


@pytest.fixture
def make_run(people, data):
    def _make(**kwargs):
        kwargs.setdefault("dataset_version", data.version)
        kwargs.setdefault("frame", data.frame)
        return factories.make_run(kwargs.pop("user", people.scientist), **kwargs)

    return _make


@pytest.fixture
def registered(people):
    """A model with gates that good models pass: ROC AUC >= 0.7, at most 0.05 worse than Production.
    Its owner names ``lead`` and ``engineer`` as colleagues who may work on it
    (lab sharing alone gives them reading only)."""
    from apps.core.permissions import grant

    model = factories.make_model(people.scientist, name="sample-qc", gates={
        "metrics": [{"metric": "test_roc_auc", "op": ">=", "threshold": 0.7}],
        "max_regression": {"metric": "test_roc_auc", "margin": 0.05},
    })
    for colleague in (people.lead, people.engineer):
        grant(model, perms=["change_registeredmodel"], user=colleague)
    return model


@pytest.fixture
def published(django_capture_on_commit_callbacks):
    seen = Published(django_capture_on_commit_callbacks)
    events.subscribe("*", seen)
    yield seen
    events.unsubscribe("*", seen)
