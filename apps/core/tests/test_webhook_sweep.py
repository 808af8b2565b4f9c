"""The webhook sweep: deliveries whose task was lost with a worker or broker
(an overdue retry, a new delivery never picked up, a sender that died
mid-attempt) are sent again, once, however many sweeps and stale tasks
run."""

import threading
from datetime import timedelta

import pytest
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from apps.core import tasks
from apps.core.choices import DeliveryStatus
from apps.core.models import WebhookDelivery
from apps.core.tests.receiver import Receiver
from apps.core.webhooks import delivery as webhook_services
from apps.core.webhooks import services
from celery_app import app as celery_app
from celery_app.schedule import BEAT_SCHEDULE

SECRET = "sweep-test-secret-0123456789"


def run_together(*calls):
    """Run each call in its own thread (own DB connection), released at once
    by a barrier; returns (results, errors) in call order."""
    barrier = threading.Barrier(len(calls))
    results, errors = [None] * len(calls), [None] * len(calls)

    def worker(index, call):
        try:
            barrier.wait(timeout=30)
            results[index] = call()
        except Exception as exc:  # collected and asserted on by the test
            errors[index] = exc
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results, errors


@pytest.fixture(autouse=True)
def local_receiver_allowed(settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]  # the test's receiver; nothing else is reached


@pytest.fixture
def admin(make_user):
    return make_user("Admin", username="hookadmin")


@pytest.fixture
def model(make_user):
    return make_user("Data Scientist", username="hooked")


def lost_delivery(admin, model, url, django_capture_on_commit_callbacks, **state) -> WebhookDelivery:
    """A delivery whose task never reached a worker (the enqueue is dropped), in ``state``."""
    services.webhook_subscription_create(actor=admin, name="lims", url=url, subject=model, secret=SECRET)
    with django_capture_on_commit_callbacks(execute=False), transaction.atomic():
        services.webhooks_emit(event="registry.alias.moved", subject=model, payload={"v": 1})
    delivery = WebhookDelivery.objects.get()
    if state:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(**state)
    return delivery


def sweep_and_run(django_capture_on_commit_callbacks) -> list:
    """Run the beat task and then, in this process, the delivery tasks it enqueued."""
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        tasks.webhook_delivery_sweep()
    results = []
    for callback in callbacks:
        assert callback.func == tasks.webhook_delivery_send.apply_async
        results.append(tasks.webhook_delivery_send.apply(args=callback.keywords["args"],
                                                   kwargs=callback.keywords["kwargs"]).get())
    return results


@pytest.mark.django_db
def test_sweep_sends_an_overdue_retry_whose_task_was_lost(admin, model, django_capture_on_commit_callbacks):
    with Receiver([200]) as receiver:
        delivery = lost_delivery(admin, model, receiver.url, django_capture_on_commit_callbacks,
                                 status=DeliveryStatus.RETRYING, attempt_count=1,
                                 next_attempt_at=timezone.now() - timedelta(minutes=5))
        assert sweep_and_run(django_capture_on_commit_callbacks) == [DeliveryStatus.SUCCEEDED]
        # Nothing is owed any more: later sweeps hand out nothing.
        assert sweep_and_run(django_capture_on_commit_callbacks) == []
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.attempt_count == 2
    assert len(receiver.requests) == 1


@pytest.mark.django_db
def test_sweep_recovers_new_and_stuck_deliveries_but_leaves_live_ones(admin, model,
                                                                      django_capture_on_commit_callbacks):
    now = timezone.now()
    with Receiver([200]) as receiver:
        delivery = lost_delivery(admin, model, receiver.url, django_capture_on_commit_callbacks)
        for live in (
            {"status": DeliveryStatus.PENDING},  # its own task may still be on its way
            {"status": DeliveryStatus.RETRYING, "next_attempt_at": now + timedelta(minutes=1)},
            {"status": DeliveryStatus.SENDING, "next_attempt_at": now + timedelta(minutes=1)},
            {"status": DeliveryStatus.SUCCEEDED, "next_attempt_at": None},
        ):
            WebhookDelivery.objects.filter(pk=delivery.pk).update(**live)
            assert services.webhook_delivery_sweep() == [], live
        for owed in (
            {"status": DeliveryStatus.PENDING, "created_at": now - timedelta(minutes=5)},
            # The sender died mid-attempt: its claim ran out.
            {"status": DeliveryStatus.SENDING, "next_attempt_at": now - timedelta(seconds=1)},
        ):
            WebhookDelivery.objects.filter(pk=delivery.pk).update(**owed)
            assert [pk for pk, _ in services.webhook_delivery_sweep()] == [delivery.pk], owed
    assert receiver.requests == []


@pytest.mark.django_db
def test_a_delivery_is_sent_once_whatever_tasks_and_sweeps_race(admin, model, django_capture_on_commit_callbacks):
    with Receiver([200]) as receiver:
        delivery = lost_delivery(admin, model, receiver.url, django_capture_on_commit_callbacks,
                                 status=DeliveryStatus.RETRYING, attempt_count=1,
                                 next_attempt_at=timezone.now() - timedelta(minutes=5))
        ((pk, first_stamp),) = services.webhook_delivery_sweep()
        # The lease ran out before the task ran: the next sweep hands it out again.
        WebhookDelivery.objects.filter(pk=pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
        ((_, second_stamp),) = services.webhook_delivery_sweep()
        assert second_stamp != first_stamp
        # The lost Celery retry shows up too, while the hand-out holds the row.
        assert services.webhook_delivery_attempt(delivery_id=pk).status == DeliveryStatus.SENDING
        # The stale hand-out's task does nothing; the current one sends.
        assert services.webhook_delivery_attempt(delivery_id=pk, claim=first_stamp).status == DeliveryStatus.SENDING
        assert receiver.requests == []
        assert services.webhook_delivery_attempt(delivery_id=pk, claim=second_stamp).status == "succeeded"
        # A duplicate of it, or of the original task, arrives later: nothing more is sent.
        assert services.webhook_delivery_attempt(delivery_id=pk, claim=second_stamp).status == "succeeded"
        assert services.webhook_delivery_attempt(delivery_id=pk).status == "succeeded"
    assert len(receiver.requests) == 1
    assert WebhookDelivery.objects.get(pk=delivery.pk).attempts.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_sweeps_hand_out_each_delivery_once(admin, model, django_capture_on_commit_callbacks,
                                                       monkeypatch):
    # Outside a test transaction the emit's tasks really go to the broker, where a
    # worker another test started could take one while the sweeps run: keep them here.
    from apps.core import tasks

    monkeypatch.setattr(tasks.webhook_delivery_send, "apply_async", lambda *args, **kwargs: None)
    services.webhook_subscription_create(actor=admin, name="lims", url="http://127.0.0.1:9/x",
                                         subject=model, secret=SECRET)
    with django_capture_on_commit_callbacks(execute=False):
        for n in range(40):
            services.webhooks_emit(event="registry.alias.moved", subject=model, payload={"n": n})
    WebhookDelivery.objects.update(status=DeliveryStatus.RETRYING,
                                   next_attempt_at=timezone.now() - timedelta(minutes=1))
    results, errors = run_together(*[services.webhook_delivery_sweep for _ in range(4)])
    assert errors == [None] * 4
    handed_out = [pk for result in results for pk, _ in result]
    assert len(handed_out) == len(set(handed_out)) == 40


def test_the_sweep_runs_every_minute_on_the_default_queue():
    entry = BEAT_SCHEDULE["core-webhook-delivery-sweep"]
    assert entry["task"] == tasks.webhook_delivery_sweep.name
    assert entry["task"] in celery_app.tasks
    assert entry["options"]["queue"] == "default"
    assert entry["schedule"] <= timedelta(minutes=1)
    assert tasks.webhook_delivery_send.time_limit < webhook_services.SEND_LEASE_SECONDS
