"""Domain events become notifications for the people who must act: approvers
hear of a request, the requester of the decision, a job's owner of its end,
an endpoint's owner of its trouble — after commit, never breaking the action."""

import pytest
from django.core import mail
from django.db import transaction

from apps.core import services as core
from apps.core.models import Notification
from apps.dashboard import receivers
from apps.dashboard.tests import helpers
from apps.registry import services as registry
from apps.registry.models import PromotionRequest

pytestmark = pytest.mark.django_db


def inbox(user) -> list[Notification]:
    return list(Notification.objects.filter(recipient=user).order_by("id"))


def test_a_promotion_request_notifies_the_users_who_may_approve_it(people, make_run, registered,
                                                                  django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        request = helpers.request_promotion(people=people, make_run=make_run, registered=registered)
    recipients = set(Notification.objects.filter(verb="registry.promotion_request.created")
                     .values_list("recipient__username", flat=True))
    # Approvers (lab duty), the Admin and the superuser; not the requester, not the engineer or viewer.
    assert recipients == {"qa", "qa2", "lead", "boss", "root"}
    note, = inbox(people.qa)
    assert note.url == "/registry/approvals/"
    assert (note.object_type, note.object_id) == ("registry.promotionrequest", str(request.pk))
    assert note.text.startswith("sci asks to promote sample-qc v1 to Staging")


def test_the_decision_notifies_the_requester(people, make_run, registered, django_capture_on_commit_callbacks):
    request = helpers.request_promotion(people=people, make_run=make_run, registered=registered)
    with django_capture_on_commit_callbacks(execute=True):
        registry.promotion_request_reject(promotion_request=request, actor=people.qa, comment="Needs the March data.")
    note, = inbox(people.scientist)
    assert note.verb == "registry.promotion_request.rejected"
    assert note.text == ("qa rejected your request to promote sample-qc v1 to Staging. "
                         "Comment: Needs the March data.")
    assert note.url == "/registry/models/sample-qc/versions/1/"
    assert inbox(people.qa) == []


def test_the_approval_notifies_the_requester_by_email_when_asked(people, make_run, registered,
                                                                 django_capture_on_commit_callbacks):
    people.scientist.email = "sci@lab.example"
    people.scientist.save()
    core.notification_preference_set(actor=people.scientist, email=True)
    request = helpers.request_promotion(people=people, make_run=make_run, registered=registered)
    with django_capture_on_commit_callbacks(execute=True):
        registry.promotion_request_approve(promotion_request=request, actor=people.qa2, comment="fine")
    assert [n.verb for n in inbox(people.scientist)] == ["registry.promotion_request.approved"]
    assert [m.to for m in mail.outbox] == [["sci@lab.example"]]
    assert "qa2 approved your request" in mail.outbox[0].body


def test_nothing_is_notified_before_commit_nor_after_a_rollback(people, make_run, registered,
                                                               django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        helpers.request_promotion(people=people, make_run=make_run, registered=registered)
    assert callbacks and not Notification.objects.exists()  # waiting for the commit
    version = PromotionRequest.objects.get().version
    registry.promotion_request_cancel(promotion_request=PromotionRequest.objects.get(), actor=people.scientist)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        registry.promotion_request_create(version=version, actor=people.scientist, target_stage="staging",
                                          justification="again")
        raise RuntimeError("something later in the same transaction failed")
    assert not Notification.objects.exists()


@pytest.fixture
def ask(people, make_run, registered):
    return lambda: helpers.request_promotion(people=people, make_run=make_run, registered=registered)


def test_a_failing_notification_never_breaks_the_request(ask, monkeypatch, caplog, django_capture_on_commit_callbacks):
    def broken(**kwargs):
        raise RuntimeError("inbox down")

    monkeypatch.setattr(receivers, "notifications_send", broken)
    with django_capture_on_commit_callbacks(execute=True):
        request = ask()
    assert PromotionRequest.objects.get().pk == request.pk and request.status == "pending"
    assert "inbox down" in caplog.text and "registry.promotion_request.created" in caplog.text


def test_a_training_job_ending_notifies_its_owner(people, data, django_capture_on_commit_callbacks):
    from apps.experiments.services import training_job_fail

    job = helpers.running_job(owner=people.scientist, dataset_version=data.version)
    with django_capture_on_commit_callbacks(execute=True):
        training_job_fail(job_id=job.pk, reason="Out of memory.")
    note, = inbox(people.scientist)
    assert note.verb == "experiments.training_job.failed"
    assert note.url == f"/experiments/training/{job.pk}/"
    assert "failed: Out of memory." in note.text


def test_a_degraded_deployment_notifies_the_endpoint_owner(people, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        deployment = helpers.degraded_deployment(owner=people.engineer)
    notes = [n for n in inbox(people.engineer) if n.verb == "serving.deployment.degraded"]
    assert len(notes) == 1
    assert notes[0].url == "/serving/qc-live/" and "error rate" in notes[0].text
    assert (notes[0].object_type, notes[0].object_id) == ("serving.deployment", str(deployment.pk))
    assert inbox(people.scientist) == []


def test_a_rolled_back_deployment_notifies_the_endpoint_owner(people, django_capture_on_commit_callbacks):
    from apps.serving import services as serving

    canary = helpers.paused_canary(owner=people.engineer)
    with django_capture_on_commit_callbacks(execute=True):
        serving.deployment_rollback(deployment=canary, actor=people.engineer, reason="too slow")
    verbs = [n.verb for n in inbox(people.engineer)]
    assert verbs == ["serving.deployment.rolled_back"]
    assert "too slow" in inbox(people.engineer)[0].text
