"""Object permissions in the Django admin.

Approvers are staff, so the admin must hide what the API hides: for every
registered admin of an ``apps.*`` model, a staff user who holds every
non-admin role does not see another user's private object in the list,
cannot open it, cannot act on it with a bulk action (not even with a
crafted POST) and cannot find it through autocomplete; an Admin sees all.

The world built here spans the apps on purpose: the point is that no admin
page of any app forgets the check, including pages added later."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import transaction
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone
from guardian.models import UserObjectPermission

from apps.core.admin import ObjectPermissionAdminMixin
from apps.core.models import ApiKey, AuditEvent, WebhookDelivery, WebhookSubscription
from apps.core.permissions import grant_on_create, make_private
from apps.core.services import audit_record

pytestmark = pytest.mark.django_db

# Registered admins of apps.* models that are not scoped by object
# permissions, each with the reason.
EXEMPT = {
    # People are not lab objects; the page is for Admins managing roles.
    "core.User": "users are not objects with object permissions",
}


def _apps_admins():
    return sorted(((model, model_admin) for model, model_admin in admin.site._registry.items()
                   if model.__module__.startswith("apps.")), key=lambda pair: pair[0]._meta.label)


SCOPED = [model._meta.label for model, _ in _apps_admins() if model._meta.label not in EXEMPT]


def _model(label: str):
    from django.apps import apps

    return apps.get_model(label)


def build_world(owner, tag: str) -> dict:
    """One object of every admin-registered model, all hanging off ``owner``'s
    dataset, experiment, registered model and endpoint."""
    from apps.abtests.models import ABTest, ABTestArm, ABTestArmStatistic, ABTestUnit
    from apps.datasets.models import Dataset, DatasetVersion, Expectation
    from apps.experiments.models import Experiment, Run, TrainingJob
    from apps.monitoring.models import Alert, AlertRule, AlertTransition, DriftReport, Silence
    from apps.registry.models import (
        ModelVersion,
        PromotionRequest,
        RegisteredModel,
        StageTransition,
    )
    from apps.serving.models import Deployment, Endpoint, Feedback, PredictionLog, TrafficSplit

    now = timezone.now()
    with transaction.atomic():
        dataset = Dataset.objects.create(name=f"submissions-{tag}", owner=owner, target_column="qc_pass")
        experiment = Experiment.objects.create(name=f"sample-qc-{tag}", owner=owner)
        model = RegisteredModel.objects.create(name=f"sample-qc-{tag}", owner=owner, task_type="classification")
        endpoint = Endpoint.objects.create(slug=f"sample-qc-{tag}", name=tag, owner=owner)
        for top in (dataset, experiment, model, endpoint):
            grant_on_create(top, owner=owner)
        dataset_version = DatasetVersion.objects.create(
            dataset=dataset, version=1, file=f"datasets/{tag}.csv", original_filename="submissions.csv",
            file_format="csv", sha256=tag.ljust(64, "0"), size_bytes=10, created_by=owner)
        expectation = Expectation.objects.create(dataset=dataset, kind="not_null", column="din", created_by=owner)
        run = Run.objects.create(experiment=experiment, name=f"run-{tag}", user=owner, start_time=now,
                                 dataset_version=dataset_version)
        job = TrainingJob.objects.create(run=run, dataset_version=dataset_version, target_column="qc_pass",
                                         task="classification", estimator="logistic_regression", created_by=owner)
        version = ModelVersion.objects.create(registered_model=model, version=1, artifact=f"models/{tag}.skops",
                                              sha256="0" * 64, created_by=owner, source_run=run)
        promotion = PromotionRequest.objects.create(version=version, target_stage="staging", requested_by=owner,
                                                    justification="ready", gates_passed=True)
        transition = StageTransition.objects.create(version=version, from_stage="none", to_stage="staging",
                                                    kind="approval", actor=owner)
        webhook = WebhookSubscription.objects.create(name=f"lims-{tag}", url="http://127.0.0.1:9/hook",
                                                     subject=model, secret="s" * 32, created_by=owner)
        delivery = WebhookDelivery.objects.create(subscription=webhook, event="webhook.test", body="{}")
        deployment = Deployment.objects.create(endpoint=endpoint, model_version=version, created_by=owner,
                                               status="deploying", rollout_state="progressing",
                                               traffic_weight=0.5)
        log = PredictionLog.objects.create(endpoint=endpoint, deployment=deployment, model_version=version,
                                           request_id=f"req-{tag}", latency_ms=1.0)
        feedback = Feedback.objects.create(endpoint=endpoint, request_id=f"req-{tag}", label=1)
        api_key = ApiKey.objects.create(user=owner, name=tag, prefix=f"k{tag}"[:16], key_hash="0" * 64)
        event = audit_record(actor=owner, action="dataset.updated", target=dataset)
        drift_report = DriftReport.objects.create(owner=owner, reference_version=dataset_version,
                                                  current_version=dataset_version)
        split = TrafficSplit.objects.create(endpoint=endpoint, salt=f"salt-{tag}", owner_label=f"A/B test {tag}",
                                            started_by=owner)
        ab_test = ABTest.objects.create(endpoint=endpoint, name=f"qc-test-{tag}", created_by=owner)
        arm = ABTestArm.objects.create(ab_test=ab_test, index=0, name="control", model_version=version, weight=1)
        arm_statistic = ABTestArmStatistic.objects.create(arm=arm, metric="accuracy")
        unit = ABTestUnit.objects.create(ab_test=ab_test, arm_index=0, unit_key=f"u:S-{tag}")
        alert_rule = AlertRule.objects.create(endpoint=endpoint, name=f"errors-{tag}", metric="error_rate",
                                              warning_threshold=0.05, created_by=owner)
        alert = Alert.objects.create(rule=alert_rule)
        AlertTransition.objects.create(alert=alert, from_state="inactive", to_state="pending", at=now)
        silence = Silence.objects.create(endpoint=endpoint, starts_at=now, ends_at=now + timedelta(hours=1),
                                         reason="maintenance", created_by=owner)
    objects = [dataset, dataset_version, expectation, experiment, run, job, model, version, promotion, transition,
               webhook, delivery, endpoint, deployment, log, feedback, api_key, event, drift_report, split, ab_test,
               arm_statistic, unit, alert_rule, alert, silence]
    return {type(obj)._meta.label: obj for obj in objects}


@pytest.fixture
def world(make_user):
    owner = make_user("Data Scientist", "ML Engineer", username="owner")
    # Staff with every non-admin capability: whatever it cannot see, it is
    # the object scope that hides it, not a missing role.
    staff = make_user("Viewer", "Data Scientist", "ML Engineer", "Approver", username="staff")
    boss = make_user("Admin", username="boss")
    private = build_world(owner, "private")
    for label in ("datasets.Dataset", "experiments.Experiment", "registry.RegisteredModel", "serving.Endpoint"):
        make_private(private[label])
    shared = build_world(owner, "shared")
    # Non-admin staff see their own API keys only.
    shared["core.ApiKey"] = ApiKey.objects.create(user=staff, name="mine", prefix="kmine", key_hash="1" * 64)
    assert staff.is_staff and boss.is_staff
    return SimpleNamespace(owner=owner, staff=staff, boss=boss, private=private, shared=shared)


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _url(model, name: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{name}", args=args)


def _changelist_url(model) -> str:
    # The promotion request list opens on pending requests; show them all.
    return _url(model, "changelist") + ("?status=all" if model._meta.model_name == "promotionrequest" else "")


def _changelist(client, model):
    return client.get(_changelist_url(model))


def _state(obj) -> dict:
    fresh = type(obj)._default_manager.filter(pk=obj.pk).values().first()
    assert fresh is not None, f"{obj._meta.label} {obj.pk} was deleted"
    return fresh


def _has_capability(user, model) -> bool:
    """Whether some role of ``user`` lets it see ``model`` in the admin at all
    (expectations, for one, have no admin page for non-admins)."""
    opts = model._meta
    return any(user.has_perm(f"{opts.app_label}.{action}_{opts.model_name}") for action in ("view", "change"))


def test_world_covers_every_scoped_admin(world):
    assert sorted(world.private) == sorted(SCOPED)
    # The staff user reaches every page but one, so the tests below are not
    # passing on a missing role.
    assert [label for label in SCOPED if not _has_capability(world.staff, _model(label))] == [
        "datasets.Expectation"]


def test_every_apps_admin_and_inline_uses_the_object_permission_mixin():
    missing = []
    for model, model_admin in _apps_admins():
        if model._meta.label in EXEMPT:
            continue
        if not isinstance(model_admin, ObjectPermissionAdminMixin):
            missing.append(type(model_admin).__name__)
        missing += [inline.__name__ for inline in model_admin.inlines
                    if not issubclass(inline, ObjectPermissionAdminMixin)]
    assert missing == []


@pytest.mark.parametrize("label", SCOPED)
def test_staff_does_not_see_a_private_object_in_the_list(world, label):
    model = _model(label)
    page = _changelist(login(world.staff), model)
    if not _has_capability(world.staff, model):
        assert page.status_code == 403
        return
    assert page.status_code == 200
    shown = {obj.pk for obj in page.context["cl"].result_list}
    assert world.shared[label].pk in shown
    assert world.private[label].pk not in shown
    # Not even by name, e.g. among the filter choices.
    assert "-private" not in page.content.decode()


@pytest.mark.parametrize("label", SCOPED)
def test_staff_cannot_open_a_private_object(world, label):
    model = _model(label)
    client = login(world.staff)
    private = world.private[label]
    for view in ("change", "history", "delete"):
        response = client.get(_url(model, view, private.pk))
        assert response.status_code in (302, 403, 404), (view, response.status_code)
        if response.status_code == 302:
            assert response.url == reverse("admin:index")
    if _has_capability(world.staff, model):
        assert client.get(_url(model, "change", world.shared[label].pk)).status_code == 200
    model_admin = admin.site._registry[model]
    request = RequestFactory().get("/admin/")
    request.user = world.staff
    assert not model_admin.has_view_permission(request, private)
    assert not model_admin.has_change_permission(request, private)
    assert not model_admin.has_delete_permission(request, private)


@pytest.mark.parametrize("label", SCOPED)
def test_admin_sees_and_opens_every_object(world, label):
    model = _model(label)
    client = login(world.boss)
    shown = {obj.pk for obj in _changelist(client, model).context["cl"].result_list}
    assert {world.private[label].pk, world.shared[label].pk} <= shown
    assert client.get(_url(model, "change", world.private[label].pk)).status_code == 200


@pytest.mark.parametrize("label", SCOPED)
def test_bulk_actions_with_a_private_id_do_nothing(world, label):
    """A crafted POST naming a hidden object, for every action the staff
    user is offered (intermediate pages answered as a user would)."""
    model = _model(label)
    client = login(world.staff)
    private = world.private[label]
    page = _changelist(client, model)
    offered = page.context["action_form"] if page.status_code == 200 else None
    # delete_selected is posted even where it is not offered: a crafted POST.
    actions = {"delete_selected", *(name for name, _ in (offered.fields["action"].choices if offered else []) if name)}
    before, events = _state(private), AuditEvent.objects.count()
    for action in actions:
        client.post(_changelist_url(model), {
            "action": action, ACTION_CHECKBOX_NAME: [private.pk], "post": "yes", "apply": "yes",
            "comment": "looks fine", "reason": "crafted", "index": 0})
    assert _state(private) == before
    assert AuditEvent.objects.count() == events


def test_staff_cannot_delete_a_private_endpoint_with_the_bulk_action(world):
    from apps.serving.models import Endpoint

    # No deployments under it, so no missing delete right on them stops the delete.
    with transaction.atomic():
        private = Endpoint.objects.create(slug="idle-private", name="idle", owner=world.owner)
        grant_on_create(private, owner=world.owner)
    make_private(private)
    login(world.staff).post(_url(Endpoint, "changelist"), {
        "action": "delete_selected", ACTION_CHECKBOX_NAME: [private.pk], "post": "yes"})
    assert Endpoint.objects.filter(pk=private.pk).exists()


def test_autocomplete_does_not_offer_private_objects(world):
    client = login(world.staff)
    found = client.get("/admin/autocomplete/", {"app_label": "datasets", "model_name": "datasetversion",
                                                "field_name": "dataset", "term": "submissions"}).json()
    names = {item["text"] for item in found["results"]}
    assert str(world.shared["datasets.Dataset"]) in names
    assert str(world.private["datasets.Dataset"]) not in names


def test_raw_id_lookup_pop_up_does_not_offer_private_objects(world):
    from apps.experiments.models import Experiment

    page = login(world.staff).get(_url(Experiment, "changelist"), {"_to_field": "id", "_popup": "1"})
    assert page.status_code == 200
    assert [obj.pk for obj in page.context["cl"].result_list] == [world.shared["experiments.Experiment"].pk]


def test_foreign_key_choices_leave_out_private_objects(world):
    from apps.registry.models import ModelVersion, RegisteredModel

    model_admin = admin.site._registry[ModelVersion]
    request = RequestFactory().get("/admin/")
    request.user = world.staff
    field = model_admin.formfield_for_foreignkey(ModelVersion._meta.get_field("registered_model"), request)
    offered = set(field.queryset.values_list("pk", flat=True))
    assert world.shared["registry.RegisteredModel"].pk in offered
    assert world.private["registry.RegisteredModel"].pk not in offered
    request.user = world.boss
    field = model_admin.formfield_for_foreignkey(ModelVersion._meta.get_field("registered_model"), request)
    assert set(field.queryset.values_list("pk", flat=True)) == set(RegisteredModel.objects.values_list("pk",
                                                                                                       flat=True))


def test_audit_log_shows_non_admin_staff_only_events_on_objects_they_can_view(world):
    from apps.core.services import api_key_revoke

    api_key_revoke(api_key=world.private["core.ApiKey"], actor=world.owner)
    own = api_key_revoke(api_key=world.shared["core.ApiKey"], actor=world.staff)
    staff_list = _changelist(login(world.staff), AuditEvent).context["cl"].result_list
    assert {(e.object_type, e.object_id) for e in staff_list} == {
        ("datasets.dataset", str(world.shared["datasets.Dataset"].pk)), ("core.apikey", str(own.pk))}
    admin_list = _changelist(login(world.boss), AuditEvent).context["cl"].result_list
    assert {e.action for e in admin_list} >= {"dataset.updated", "api_key.revoked"}
    assert len(admin_list) == AuditEvent.objects.count()


def test_audit_log_is_read_only_for_everyone(world):
    event = world.shared["core.AuditEvent"]
    for user in (world.staff, world.boss):
        client = login(user)
        assert client.get(_url(AuditEvent, "add")).status_code == 403
        client.post(_url(AuditEvent, "change", event.pk), {"action": "tampered"})
        assert client.post(_url(AuditEvent, "delete", event.pk), {"post": "yes"}).status_code == 403
    event.refresh_from_db()
    assert event.action == "dataset.updated"


# --- guardian's object-permission pages --------------------------------------------

def test_only_admins_manage_object_permissions(world):
    from apps.registry.models import RegisteredModel

    model = world.shared["registry.RegisteredModel"]
    client = login(world.staff)  # may change the model, so guardian alone would let it in
    base = _url(RegisteredModel, "change", model.pk).removesuffix("change/") + "permissions/"
    assert "permissionslink" not in client.get(_url(RegisteredModel, "change", model.pk)).content.decode()
    assert client.get(base).status_code == 403
    grant = client.post(f"{base}user-manage/{world.staff.pk}/",
                        {"permissions": ["approve_registeredmodel", "delete_registeredmodel"]})
    assert grant.status_code == 403
    group = world.staff.groups.get(name="Approver")
    assert client.post(f"{base}group-manage/{group.pk}/",
                       {"permissions": ["delete_registeredmodel"]}).status_code == 403
    assert not UserObjectPermission.objects.filter(user=world.staff).exists()
    assert not world.staff.has_perm("registry.delete_registeredmodel", model)

    boss = login(world.boss)
    assert "permissionslink" in boss.get(_url(RegisteredModel, "change", model.pk)).content.decode()
    assert boss.get(base).status_code == 200
    boss.post(f"{base}user-manage/{world.staff.pk}/", {"permissions": ["approve_registeredmodel"]})
    assert UserObjectPermission.objects.filter(user=world.staff, permission__codename="approve_registeredmodel",
                                               object_pk=str(model.pk)).exists()
