"""Endpoint settings edited in the admin get the API's checks and audit."""

import pytest
from django.test import Client

from apps.core.models import AuditEvent
from apps.serving.models import Endpoint
from apps.serving.tests.factories import make_endpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def endpoint(engineer):
    return make_endpoint(owner=engineer, slug="sample-qc", max_batch_size=20)


def _edit(user, endpoint, **fields):
    client = Client()
    client.force_login(user)
    data = {"name": endpoint.name, "description": endpoint.description, "config": '{"max_batch_size": 20}',
            "follow_mode": endpoint.follow_mode, "follow_strategy": endpoint.follow_strategy,
            "bake_minutes": "" if endpoint.bake_minutes is None else endpoint.bake_minutes,
            "_save": "Save", **fields}
    return client.post(f"/admin/serving/endpoint/{endpoint.pk}/change/", data)


@pytest.mark.parametrize("config, message", [
    ('{"max_batch_size": 0}', "must be a whole number from 1 to 10000"),
    ('{"max_batch_size": 20, "log_inputs": "yes"}', "must be true or false"),
    ('{"run_as": "root"}', "unknown setting"),
])
def test_an_invalid_config_is_a_form_error_and_writes_nothing(admin_user, endpoint, config, message):
    events = AuditEvent.objects.count()
    response = _edit(admin_user, endpoint, config=config, name="renamed")
    assert response.status_code == 200
    assert message in response.content.decode()
    stored = Endpoint.objects.get(pk=endpoint.pk)
    assert stored.config == {"max_batch_size": 20, "log_inputs": True, "unit_field": ""}
    assert stored.name == "sample-qc"
    assert AuditEvent.objects.count() == events


def test_a_valid_edit_goes_through_the_service_and_is_audited(admin_user, endpoint):
    response = _edit(admin_user, endpoint, config='{"max_batch_size": 50}', description="Library-prep QC")
    assert response.status_code == 302
    stored = Endpoint.objects.get(pk=endpoint.pk)
    assert stored.config == {"max_batch_size": 50, "log_inputs": True, "unit_field": ""}
    event = AuditEvent.objects.get(action="endpoint.updated")
    assert event.actor == admin_user
    assert event.before["config"]["max_batch_size"] == 20 and event.after["config"]["max_batch_size"] == 50
    assert event.after["description"] == "Library-prep QC"


def test_deleting_in_the_admin_refuses_an_endpoint_that_still_serves(admin_user, engineer):
    from apps.serving.tests.factories import deploy, make_model_version

    live = make_endpoint(owner=engineer, slug="live-qc")
    deploy(endpoint=live, version=make_model_version(owner=engineer), actor=engineer)
    client = Client()
    client.force_login(admin_user)
    client.post(f"/admin/serving/endpoint/{live.pk}/delete/", {"post": "yes"})
    assert Endpoint.objects.filter(pk=live.pk).exists()
    idle = make_endpoint(owner=engineer, slug="idle-qc")
    client.post(f"/admin/serving/endpoint/{idle.pk}/delete/", {"post": "yes"})
    assert not Endpoint.objects.filter(pk=idle.pk).exists()
    assert AuditEvent.objects.filter(action="endpoint.deleted", object_id=str(idle.pk)).exists()


def test_the_deployment_page_saves_nothing(admin_user, engineer):
    from apps.serving.models import Deployment
    from apps.serving.tests.factories import deploy, make_model_version

    deployment = deploy(endpoint=make_endpoint(owner=engineer, slug="qc"), version=make_model_version(owner=engineer),
                        actor=engineer)
    before = Deployment.objects.filter(pk=deployment.pk).values().get()
    client = Client()
    client.force_login(admin_user)
    page = client.get(f"/admin/serving/deployment/{deployment.pk}/change/").content.decode()
    assert 'name="_save"' not in page
    response = client.post(f"/admin/serving/deployment/{deployment.pk}/change/", {"_save": "Save"})
    assert response.status_code == 403
    assert Deployment.objects.filter(pk=deployment.pk).values().get() == before
