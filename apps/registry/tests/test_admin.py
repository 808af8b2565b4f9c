"""The admin: pending-first request list, approve/reject actions with an
intermediate comment page, four eyes and gate override, rollback action,
webhook subscriptions."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.test import Client

from apps.core.models import AuditEvent, WebhookAttempt, WebhookSubscription
from apps.core.webhooks import services as webhook_services
from apps.registry import services
from apps.registry.choices import RequestStatus, Stage
from apps.registry.tests import factories

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/registry/promotionrequest/"


def staff(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def pending(people, make_run, registered):
    v1 = services.model_version_register(registered_model=registered, run=make_run(), actor=people.scientist)
    approved = services.promotion_request_create(version=v1, actor=people.scientist, target_stage="production",
                                                 justification="first")
    services.promotion_request_approve(promotion_request=approved, actor=people.qa, comment="ok")
    v2 = services.model_version_register(registered_model=registered, run=make_run(C=0.5), actor=people.scientist)
    return services.promotion_request_create(version=v2, actor=people.lead, target_stage="production",
                                             justification="C=0.5 generalises better")


def test_changelist_shows_pending_requests_by_default(people, pending):
    client = staff(people.qa)
    page = client.get(CHANGELIST)
    assert page.status_code == 200
    shown = list(page.context["cl"].result_list)
    assert shown == [pending]
    everything = client.get(CHANGELIST + "?status=all")
    assert len(everything.context["cl"].result_list) == 2
    detail = client.get(f"{CHANGELIST}{pending.pk}/change/").content.decode()
    assert "gate-results" in detail and "metric-comparison" in detail and "Production v1" in detail


def test_approve_action_asks_for_a_comment_then_promotes(people, pending):
    client = staff(people.qa)
    form = client.post(CHANGELIST, {"action": "approve_selected", ACTION_CHECKBOX_NAME: [pending.pk]})
    assert form.status_code == 200
    html = form.content.decode()
    assert "decision-form" in html and "gate-results" in html and "metric-comparison" in html
    no_comment = client.post(CHANGELIST, {"action": "approve_selected", ACTION_CHECKBOX_NAME: [pending.pk],
                                          "apply": "Approve", "comment": ""})
    assert no_comment.status_code == 200 and "This field is required" in no_comment.content.decode()
    done = client.post(CHANGELIST, {"action": "approve_selected", ACTION_CHECKBOX_NAME: [pending.pk],
                                    "apply": "Approve", "comment": "Reviewed the FFPE subset"}, follow=True)
    assert "Approved 1 promotion request." in done.content.decode()
    pending.refresh_from_db()
    pending.version.refresh_from_db()
    assert pending.status == RequestStatus.APPROVED and pending.decided_by == people.qa
    assert pending.version.stage == Stage.PRODUCTION
    assert AuditEvent.objects.filter(action="promotion_request.approved", actor=people.qa).count() == 2


def test_requester_is_not_offered_approve_on_their_own_request(people, pending, make_run, registered):
    client = staff(people.lead)
    page = client.post(CHANGELIST, {"action": "approve_selected", ACTION_CHECKBOX_NAME: [pending.pk]})
    html = page.content.decode()
    assert page.status_code == 200 and 'name="apply"' not in html and 'id="nothing-to-approve"' in html
    assert "It is left out of this approval." in html
    # Mixed with a colleague's request: only that one is offered.
    other = services.promotion_request_create(
        version=services.model_version_register(registered_model=registered, run=make_run(C=0.3),
                                                actor=people.scientist),
        actor=people.scientist, target_stage="staging", justification="try it")
    html = client.post(CHANGELIST, {"action": "approve_selected",
                                    ACTION_CHECKBOX_NAME: [pending.pk, other.pk]}).content.decode()
    assert 'name="apply" value="Approve"' in html
    assert f'name="{ACTION_CHECKBOX_NAME}" value="{other.pk}"' in html
    assert f'name="{ACTION_CHECKBOX_NAME}" value="{pending.pk}"' not in html
    # Rejecting is not four-eyes bound the same way: the form is offered.
    assert 'name="apply"' in client.post(CHANGELIST, {"action": "reject_selected",
                                                      ACTION_CHECKBOX_NAME: [pending.pk]}).content.decode()


def test_requester_cannot_approve_in_the_admin(people, pending):
    client = staff(people.lead)
    result = client.post(CHANGELIST, {"action": "approve_selected", ACTION_CHECKBOX_NAME: [pending.pk],
                                      "apply": "Approve", "comment": "my own"}, follow=True)
    assert "four eyes" in result.content.decode()
    pending.refresh_from_db()
    assert pending.status == RequestStatus.PENDING


def test_superuser_cannot_approve_own_request_in_the_admin(people, make_run, registered):
    version = services.model_version_register(registered_model=registered, run=make_run(), actor=people.root)
    own = services.promotion_request_create(version=version, actor=people.root, target_stage="staging",
                                            justification="root wants it")
    result = staff(people.root).post(CHANGELIST, {"action": "approve_selected", ACTION_CHECKBOX_NAME: [own.pk],
                                                  "apply": "Approve", "comment": "self"}, follow=True)
    assert "four eyes" in result.content.decode()
    own.refresh_from_db()
    assert own.status == RequestStatus.PENDING


def test_admin_override_of_failed_gates(people, data, make_run, registered):
    version = services.model_version_register(registered_model=registered, actor=people.scientist,
                                              run=make_run(model=factories.poor_pipeline(data.frame)))
    failed = services.promotion_request_create(version=version, actor=people.scientist, target_stage="production",
                                               justification="urgent")
    assert not failed.gates_passed
    blocked = staff(people.qa).post(CHANGELIST, {"action": "approve_selected", ACTION_CHECKBOX_NAME: [failed.pk],
                                                 "apply": "Approve", "comment": "ok"}, follow=True)
    assert "Quality gates failed" in blocked.content.decode()
    admin = staff(people.admin)
    form = admin.post(CHANGELIST, {"action": "approve_selected", ACTION_CHECKBOX_NAME: [failed.pk]})
    assert "Override reason" in form.content.decode()
    admin.post(CHANGELIST, {"action": "approve_selected", ACTION_CHECKBOX_NAME: [failed.pk], "apply": "Approve",
                            "comment": "ok", "override_reason": "Manual review of 300 samples, ticket QA-7"})
    failed.refresh_from_db()
    assert failed.status == RequestStatus.APPROVED
    assert failed.override_reason == "Manual review of 300 samples, ticket QA-7"


def test_reject_action(people, pending):
    client = staff(people.qa)
    client.post(CHANGELIST, {"action": "reject_selected", ACTION_CHECKBOX_NAME: [pending.pk], "apply": "Reject",
                             "comment": "Needs more RNA samples"})
    pending.refresh_from_db()
    assert pending.status == RequestStatus.REJECTED and pending.decision_comment == "Needs more RNA samples"


def test_requests_are_read_only_in_the_admin(people, pending):
    client = staff(people.admin)
    assert client.get("/admin/registry/promotionrequest/add/").status_code == 403
    page = client.get(f"{CHANGELIST}{pending.pk}/change/").content.decode()
    assert 'name="_save"' not in page


def test_rollback_action(people, pending):
    staff(people.qa).post(CHANGELIST, {"action": "approve_selected", ACTION_CHECKBOX_NAME: [pending.pk],
                                       "apply": "Approve", "comment": "ok"})
    model = pending.version.registered_model
    client = staff(people.admin)
    url = "/admin/registry/registeredmodel/"
    form = client.post(url, {"action": "rollback_selected", ACTION_CHECKBOX_NAME: [model.pk]})
    assert "v2 will be archived and v1 put back" in form.content.decode()
    client.post(url, {"action": "rollback_selected", ACTION_CHECKBOX_NAME: [model.pk], "apply": "Roll back",
                      "reason": "Complaints from the Berlin lab"})
    assert model.versions.get(stage=Stage.PRODUCTION).version == 1
    assert AuditEvent.objects.get(action="registered_model.rolled_back").message == "Complaints from the Berlin lab"


def test_gate_settings_are_validated_in_the_admin(people, registered):
    client = staff(people.admin)
    url = f"/admin/registry/registeredmodel/{registered.pk}/change/"
    response = client.post(url, {"description": "x", "tags": "{}", "quality_gates": '{"metrics": "nope"}',
                                 "champion_follows_production": "on"})
    assert response.status_code == 200 and "must be a list" in response.content.decode()
    client.post(url, {"description": "Library-prep QC", "tags": "{}", "champion_follows_production": "on",
                      "quality_gates": '{"metrics": [{"metric": "test_f1", "threshold": 0.6}]}'})
    registered.refresh_from_db()
    assert registered.quality_gates["metrics"] == [{"metric": "test_f1", "op": ">=", "threshold": 0.6}]
    assert AuditEvent.objects.filter(action="registered_model.updated", actor=people.admin).exists()


def test_webhook_admin(people, registered):
    client = staff(people.admin)
    refused = client.post("/admin/core/webhooksubscription/add/", {
        "name": "bad", "url": "ftp://example.org/", "events": "[]", "is_active": "on"})
    assert refused.status_code == 200 and "http" in refused.content.decode()
    created = client.post("/admin/core/webhooksubscription/add/", {
        "name": "lims", "url": "http://127.0.0.1:9/hook",
        "subject_type": ContentType.objects.get_for_model(registered).pk, "subject_id": registered.pk,
        "events": '["registry.promotion_request.approved"]', "is_active": "on"}, follow=True)
    subscription = WebhookSubscription.objects.get(name="lims")
    assert subscription.subject == registered
    assert subscription.secret in created.content.decode()  # shown once
    client.post("/admin/core/webhooksubscription/", {"action": "send_test_event",
                                                         ACTION_CHECKBOX_NAME: [subscription.pk]})
    assert subscription.deliveries.get().event == "webhook.test"
    deliveries = client.get("/admin/core/webhookdelivery/").content.decode()
    assert "webhook.test" in deliveries
    assert staff(people.qa).get("/admin/core/webhooksubscription/add/").status_code == 403
    # The admin pages moved with the facility; the registry's old links lead there.
    moved = client.get(f"/admin/registry/webhooksubscription/{subscription.pk}/change/?x=1")
    assert moved.status_code == 301
    assert moved["Location"] == f"/admin/core/webhooksubscription/{subscription.pk}/change/?x=1"


def test_webhook_response_bodies_are_shown_to_admins_only(people):
    """What a receiver answered can be anything inside the network it sits
    in; only Admins, who configure the targets, read it."""
    hook = webhook_services.webhook_subscription_create(actor=people.admin, name="lims", url="http://127.0.0.1:9/h")
    delivery = webhook_services.webhook_send_test(subscription=hook, actor=people.admin)
    WebhookAttempt.objects.create(delivery=delivery, number=1, status_code=500,
                                  response_excerpt="internal-body-7f3a9c")
    url = f"/admin/core/webhookdelivery/{delivery.pk}/change/"
    # Approvers are staff and see deliveries; this one may see attempts too.
    people.qa.user_permissions.add(Permission.objects.get(codename="view_webhookattempt"))
    approver_page = staff(people.qa).get(url)
    assert "attempt" in approver_page.content.decode().lower()
    assert approver_page.status_code == 200
    assert "internal-body-7f3a9c" not in approver_page.content.decode()
    assert "internal-body-7f3a9c" in staff(people.admin).get(url).content.decode()
