"""Webhook delivery through a real Celery worker and broker: enqueued after
commit, retried with backoff after 500s, every attempt logged."""

import json

import pytest
from django.db import transaction

from apps.core.choices import DeliveryStatus
from apps.core.models import WebhookDelivery
from apps.core.tests.receiver import Receiver
from apps.core.webhooks import services, signing

SECRET = "worker-test-secret-0123456789"


@pytest.mark.worker
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_worker_delivers_with_retries(worker_factory, make_user):
    worker = worker_factory("webhooks", queues="default", concurrency=1,
                            extra_env={"WEBHOOK_RETRY_BACKOFF_SECONDS": "0.5", "WEBHOOK_MAX_ATTEMPTS": "4"})
    admin = make_user("Admin", username="hooks")
    model = make_user("Data Scientist", username="hooked")
    with Receiver([500, 502, 200]) as receiver:
        services.webhook_subscription_create(actor=admin, name="lims", url=receiver.url, subject=model,
                                             secret=SECRET)
        with transaction.atomic():
            services.webhooks_emit(event="registry.alias.moved", subject=model,
                                   payload={"alias": "champion", "version": 3})
        delivery = worker.wait_for(
            lambda: WebhookDelivery.objects.filter(status=DeliveryStatus.SUCCEEDED).first(),
            timeout=90, what="the webhook delivery to succeed")
    assert delivery.attempt_count == 3
    assert [a.status_code for a in delivery.attempts.order_by("number")] == [500, 502, 200]
    assert len(receiver.requests) == 3
    for request in receiver.requests:
        assert signing.verify(request["body"], SECRET, request["headers"]["X-Mlops-Signature"])
    assert json.loads(receiver.requests[-1]["body"])["data"] == {"alias": "champion", "version": 3}
    first, last = delivery.attempts.order_by("number")[0], delivery.attempts.order_by("number").last()
    assert (last.created_at - first.created_at).total_seconds() >= 1.0  # 0.5 s, then 1 s of backoff


@pytest.mark.worker
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_retry_lost_with_the_broker_is_sent_by_the_sweep(worker_factory, make_user,
                                                           django_capture_on_commit_callbacks):
    """A delivery waiting for its retry whose task is gone (the worker or the
    broker restarted): the beat sweep, run by a real worker, sends it."""
    from datetime import timedelta

    from django.utils import timezone

    from apps.core.tasks import webhook_delivery_sweep

    admin = make_user("Admin", username="hooks")
    model = make_user("Data Scientist", username="hooked")
    with Receiver([200]) as receiver:
        services.webhook_subscription_create(actor=admin, name="lims", url=receiver.url, subject=model,
                                             secret=SECRET)
        with django_capture_on_commit_callbacks(execute=False):  # the task never reaches the broker
            services.webhooks_emit(event="registry.alias.moved", subject=model, payload={"version": 4})
        WebhookDelivery.objects.update(status=DeliveryStatus.RETRYING, attempt_count=1, last_status_code=503,
                                       next_attempt_at=timezone.now() - timedelta(minutes=2))
        worker = worker_factory("webhooks", queues="default", concurrency=1)
        webhook_delivery_sweep.delay()
        delivery = worker.wait_for(
            lambda: WebhookDelivery.objects.filter(status=DeliveryStatus.SUCCEEDED).first(),
            timeout=90, what="the swept delivery to succeed")
    assert delivery.attempt_count == 2
    assert len(receiver.requests) == 1
    assert json.loads(receiver.requests[0]["body"])["data"] == {"version": 4}
