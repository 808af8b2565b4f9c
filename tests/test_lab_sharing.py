"""Lab sharing is reading: a second Data Scientist sees a colleague's
dataset, experiment, run and registered model, but cannot change them or
write into the colleague's run; the roles whose job it is still approve,
roll back and predict on every lab object."""

import io

import pytest
from django.contrib.auth.models import Group
from guardian.models import GroupObjectPermission

from apps.core.errors import PermissionDenied
from apps.core.permissions import grant, has_perm
from apps.datasets import services as datasets
from apps.experiments import services as experiments
from apps.registry import services as registry

pytestmark = pytest.mark.django_db


@pytest.fixture
def lab(make_user):
    owner = make_user("Data Scientist", username="alice")
    colleague = make_user("Data Scientist", username="bob")
    dataset = datasets.dataset_create(actor=owner, name="alice-submissions", target_column="qc_pass")
    experiment = experiments.experiment_create(actor=owner, name="alice-qc")
    run = experiments.run_create(actor=owner, experiment=experiment, name="alice's run")
    model = registry.registered_model_create(actor=owner, name="alice-qc", task_type="classification")
    return owner, colleague, dataset, experiment, run, model


def test_a_colleague_reads_everything_of_the_lab(lab, client_for):
    _, colleague, dataset, experiment, run, model = lab
    api = client_for(colleague)
    assert api.get(f"/api/v1/datasets/{dataset.pk}/").status_code == 200
    assert api.get(f"/api/v1/experiments/{experiment.pk}/").status_code == 200
    assert api.get(f"/api/v1/runs/{run.pk}/").status_code == 200
    assert api.get(f"/api/v1/models/{model.name}/").status_code == 200


def test_a_colleague_cannot_edit_another_persons_dataset(lab, client_for):
    _, colleague, dataset, *_ = lab
    with pytest.raises(PermissionDenied):
        datasets.dataset_update(dataset=dataset, actor=colleague, description="mine now")
    response = client_for(colleague).patch(f"/api/v1/datasets/{dataset.pk}/", {"target_column": "priority"},
                                           format="json")
    assert response.status_code == 403, response.content
    dataset.refresh_from_db()
    assert dataset.target_column == "qc_pass"
    assert not has_perm(colleague, "datasets.change_dataset", dataset)


def test_a_colleague_cannot_edit_another_persons_experiment_or_model(lab, client_for):
    _, colleague, _, experiment, _, model = lab
    api = client_for(colleague)
    assert api.patch(f"/api/v1/experiments/{experiment.pk}/", {"description": "x"},
                     format="json").status_code == 403
    assert api.patch(f"/api/v1/models/{model.name}/", {"description": "x"}, format="json").status_code == 403
    with pytest.raises(PermissionDenied):
        experiments.run_create(actor=colleague, experiment=experiment, name="squatting")


def test_no_role_group_gets_more_than_reading_and_its_duties_on_a_new_object(lab):
    _, _, dataset, experiment, _, model = lab
    for obj in (dataset, experiment, model):
        codenames = set(GroupObjectPermission.objects.filter(object_pk=str(obj.pk),
                                                             content_type__model=obj._meta.model_name)
                        .values_list("permission__codename", flat=True))
        assert codenames, obj
        assert {c for c in codenames if not c.startswith("view_")} <= {"approve_registeredmodel",
                                                                       "rollback_registeredmodel"}, obj


def test_a_colleague_cannot_write_into_another_persons_run(lab, client_for):
    owner, colleague, _, _, run, _ = lab
    api = client_for(colleague)
    batch = {"metrics": [{"key": "test_roc_auc", "value": 0.999}], "params": [], "tags": []}
    response = api.post(f"/api/v1/runs/{run.pk}/log-batch/", batch, format="json")
    assert response.status_code == 403 and response.json()["error"]["code"] == "not_run_owner"
    upload = io.BytesIO(b"[1, 2, 3]")
    upload.name = "test_indices.json"
    assert api.post(f"/api/v1/runs/{run.pk}/artifacts/", {"file": upload, "path": "evaluation/test_indices.json"},
                    format="multipart").status_code == 403
    assert api.post(f"/api/v1/runs/{run.pk}/finish/", {"status": "finished"}, format="json").status_code == 403
    assert api.patch(f"/api/v1/runs/{run.pk}/", {"name": "bob's now"}, format="json").status_code == 403
    run.refresh_from_db()
    assert run.status == "running" and run.name == "alice's run"
    assert not run.latest_metrics.exists() and not run.artifacts.exists()
    # The owner writes as before.
    assert client_for(owner).post(f"/api/v1/runs/{run.pk}/log-batch/", batch, format="json").status_code == 200


def test_someone_given_change_run_on_the_run_may_write_to_it(lab):
    _, colleague, _, _, run, _ = lab
    grant(run, perms=["change_run"], user=colleague)
    result = experiments.run_log_batch(actor=colleague, run_id=run.pk, metrics=[{"key": "loss", "value": 0.5}])
    assert result.metrics == 1


def test_the_owner_holds_change_run_on_a_new_run(lab):
    owner, colleague, _, _, run, _ = lab
    from guardian.shortcuts import get_perms

    assert "change_run" in get_perms(owner, run)
    assert "change_run" not in get_perms(colleague, run)


def test_approvers_approve_and_engineers_deploy_on_lab_objects(lab, make_user):
    _, _, _, _, _, model = lab
    qa = make_user("Approver", username="qa-lab")
    engineer = make_user("ML Engineer", username="eng-lab")
    assert has_perm(qa, "registry.approve_registeredmodel", model)
    assert has_perm(qa, "registry.rollback_registeredmodel", model)
    assert has_perm(engineer, "registry.rollback_registeredmodel", model)
    assert not has_perm(engineer, "registry.change_registeredmodel", model)
    from apps.serving.services import endpoint_create

    endpoint = endpoint_create(actor=engineer, slug="eng-lab-ep", environment="staging")
    other = make_user("ML Engineer", username="eng2-lab")
    scientist = make_user("Data Scientist", username="sci-lab")
    assert has_perm(engineer, "serving.deploy_endpoint", endpoint)
    assert not has_perm(other, "serving.deploy_endpoint", endpoint)
    assert has_perm(other, "serving.view_endpoint", endpoint)
    assert has_perm(scientist, "serving.predict_endpoint", endpoint)


def test_the_migration_strips_old_default_group_rights(lab):
    """Objects shared under the old default (every capability to each role
    group) keep only reading and the lab duties after the data migration."""
    import importlib

    _, colleague, dataset, experiment, _, model = lab
    scientists = Group.objects.get(name="Data Scientist")
    grant(dataset, perms=["change_dataset"], group=scientists)
    grant(experiment, perms=["change_experiment"], group=scientists)
    grant(model, perms=["change_registeredmodel"], group=scientists)
    assert has_perm(colleague, "datasets.change_dataset", dataset)
    migration = importlib.import_module("apps.core.migrations.0004_lab_sharing_reads")
    from django.apps import apps as django_apps

    migration.strip_group_write_rights(django_apps, None)
    assert not has_perm(colleague, "datasets.change_dataset", dataset)
    assert not has_perm(colleague, "experiments.change_experiment", experiment)
    assert not has_perm(colleague, "registry.change_registeredmodel", model)
    assert has_perm(colleague, "datasets.view_dataset", dataset)
    assert has_perm(make_user_approver(model), "registry.approve_registeredmodel", model)


def make_user_approver(model):
    from apps.core.models import User

    user = User.objects.create_user(username="qa-migrated", password="pw-Secret-123")
    user.groups.add(Group.objects.get(name="Approver"))
    return user

