"""Object permissions: capability (role) and scope (the model) are both
needed to see, register, request, approve and roll back."""

import pytest
from django.test import override_settings

from apps.core.errors import NotFound, PermissionDenied
from apps.core.permissions import grant, make_private
from apps.registry import selectors, services
from apps.registry.tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def private_model(people, make_run):
    """A model taken private by its owner, with a version and a pending request."""
    model = factories.make_model(people.scientist, name="secret-qc")
    version = services.model_version_register(registered_model=model, run=make_run(), actor=people.scientist)
    request = services.promotion_request_create(version=version, actor=people.scientist, target_stage="production",
                                                justification="first")
    make_private(model)
    return model, version, request


def test_a_data_scientist_without_rights_cannot_see_request_or_register(make_user, private_model, client_for,
                                                                        make_run):
    model, version, _ = private_model
    outsider = make_user("Data Scientist", username="outsider")
    assert list(selectors.registered_model_list(user=outsider)) == []
    assert list(selectors.promotion_request_list(user=outsider)) == []
    with pytest.raises(NotFound):
        services.promotion_request_create(version=version, actor=outsider, target_stage="staging",
                                          justification="mine now")
    with pytest.raises(NotFound):
        services.model_version_register(registered_model=model, run=make_run(user=outsider, experiment_name="o"),
                                        actor=outsider)
    client = client_for(outsider)
    assert client.get("/api/v1/models/").json()["count"] == 0
    assert client.get("/api/v1/models/secret-qc/").status_code == 404
    assert client.get("/api/v1/models/secret-qc/versions/1/").status_code == 404
    assert client.get("/api/v1/models/secret-qc/versions/1/download/").status_code == 404
    response = client.post("/api/v1/models/secret-qc/versions/1/transition-requests/",
                           {"stage": "staging", "justification": "x"}, format="json")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_an_approver_without_rights_on_the_model_cannot_approve_or_see(people, private_model, client_for):
    model, _, request = private_model
    with pytest.raises(NotFound):
        services.promotion_request_approve(promotion_request=request, actor=people.qa, comment="ok")
    assert list(selectors.approval_queue(user=people.qa)) == []
    assert client_for(people.qa).post(f"/api/v1/transition-requests/{request.pk}/approve/", {"comment": "ok"},
                                      format="json").status_code == 404
    # Seeing the model is not enough: approving needs the approve right on it.
    grant(model, perms=["view_registeredmodel"], user=people.qa)
    with pytest.raises(PermissionDenied):
        services.promotion_request_approve(promotion_request=request, actor=people.qa, comment="ok")
    grant(model, perms=["approve_registeredmodel"], user=people.qa)
    assert [r.pk for r in selectors.approval_queue(user=people.qa)] == [request.pk]
    approved = services.promotion_request_approve(promotion_request=request, actor=people.qa, comment="ok")
    assert approved.status == "approved"


def test_object_rights_without_the_role_are_not_enough(people, private_model):
    model, _, request = private_model
    grant(model, perms=["view_registeredmodel", "approve_registeredmodel"], user=people.engineer)
    with pytest.raises(PermissionDenied):
        services.promotion_request_approve(promotion_request=request, actor=people.engineer, comment="ok")


def test_owner_keeps_access_to_a_private_model(people, private_model):
    model, _, _ = private_model
    assert [m.name for m in selectors.registered_model_list(user=people.scientist)] == ["secret-qc"]
    assert selectors.registered_model_get(user=people.scientist, name="secret-qc") == model


@override_settings(OBJECT_SHARING="private")
def test_private_sharing_keeps_new_models_to_their_owner(people):
    factories.make_model(people.scientist, name="mine")
    assert list(selectors.registered_model_list(user=people.engineer)) == []
    assert [m.name for m in selectors.registered_model_list(user=people.scientist)] == ["mine"]
    assert [m.name for m in selectors.registered_model_list(user=people.admin)] == ["mine"]


def test_viewers_read_but_do_not_write(people, make_run, client_for):
    factories.make_model(people.scientist, name="shared")
    client = client_for(people.viewer)
    assert client.get("/api/v1/models/shared/").status_code == 200
    assert client.post("/api/v1/models/", {"name": "v", "task_type": "classification"},
                       format="json").status_code == 403
    run = make_run()
    response = client.post("/api/v1/models/shared/versions/", {"run_id": run.pk}, format="json")
    assert response.status_code == 403


def test_the_approval_queue_hides_own_requests(people, make_run):
    model = factories.make_model(people.scientist, name="queue")
    grant(model, perms=["change_registeredmodel"], user=people.lead)
    version = services.model_version_register(registered_model=model, run=make_run(), actor=people.scientist)
    own = services.promotion_request_create(version=version, actor=people.lead, target_stage="staging",
                                            justification="lead asks")
    assert list(selectors.approval_queue(user=people.lead)) == []
    assert [r.pk for r in selectors.approval_queue(user=people.qa)] == [own.pk]
    assert list(selectors.approval_queue(user=people.scientist)) == []
