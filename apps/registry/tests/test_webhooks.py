"""Webhooks against a real HTTP server on 127.0.0.1: signed bodies, retries
with exponential backoff after 5xx, every attempt logged, scheme checks,
model/event filtering and the transactional outbox."""

import json
import socket

import pytest
from django.db import transaction
from django.test import override_settings

from apps.core.errors import PermissionDenied, ValidationFailed
from apps.registry import services, signing
from apps.registry.choices import DeliveryStatus
from apps.registry.models import WebhookDelivery
from apps.registry.tests.factories import make_model
from apps.registry.tests.receiver import Receiver

pytestmark = pytest.mark.django_db

SECRET = "s3cret-for-tests-0123456789"


@pytest.fixture
def admin(make_user):
    return make_user("Admin", username="hookadmin")


@pytest.fixture
def model(make_user):
    return make_model(make_user("Data Scientist", username="owner1"), name="hooked")


def emit(model, event="registry.model_version.created", payload=None):
    with transaction.atomic():
        services.webhooks_emit(event=event, registered_model=model, payload=payload or {"version": 1})


def deliveries():
    return list(WebhookDelivery.objects.order_by("id"))


@override_settings(WEBHOOK_RETRY_BACKOFF_SECONDS=2, WEBHOOK_MAX_ATTEMPTS=5)
def test_signed_delivery_retries_after_500s_and_logs_every_attempt(admin, model, django_capture_on_commit_callbacks):
    with Receiver([500, 503, 200]) as receiver:
        sub = services.webhook_subscription_create(actor=admin, name="lims", url=receiver.url,
                                                   registered_model=model, secret=SECRET)
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            emit(model, payload={"version": 7})
        assert len(callbacks) == 1  # the Celery enqueue, deferred to commit
        (delivery,) = deliveries()
        outcomes = [services.webhook_delivery_attempt(delivery_id=delivery.pk) for _ in range(3)]

    assert [o.retry_in for o in outcomes] == [2, 4, None]  # base, doubled, done
    assert [o.status for o in outcomes] == ["retrying", "retrying", "succeeded"]
    assert len(receiver.requests) == 3
    bodies = {r["body"] for r in receiver.requests}
    assert len(bodies) == 1  # every retry sends the same bytes
    request = receiver.requests[0]
    assert signing.verify(request["body"], SECRET, request["headers"]["X-Mlops-Signature"])
    assert not signing.verify(request["body"], "another-secret-entirely", request["headers"]["X-Mlops-Signature"])
    assert request["headers"]["X-Mlops-Event"] == "registry.model_version.created"
    assert request["headers"]["X-Mlops-Delivery"] == str(delivery.uuid)
    body = json.loads(request["body"])
    assert body["event"] == "registry.model_version.created"
    assert body["registered_model"] == "hooked"
    assert body["data"] == {"version": 7}
    assert body["id"] == str(delivery.uuid)

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert delivery.attempt_count == 3
    attempts = list(delivery.attempts.order_by("number"))
    assert [a.status_code for a in attempts] == [500, 503, 200]
    assert all(a.response_time_ms is not None and a.response_time_ms >= 0 for a in attempts)
    assert attempts[0].error == "HTTP 500"
    assert "receiver says no" in attempts[0].response_excerpt
    assert sub.deliveries.count() == 1


@override_settings(WEBHOOK_RETRY_BACKOFF_SECONDS=1, WEBHOOK_MAX_ATTEMPTS=3)
def test_gives_up_after_the_last_attempt(admin, model):
    with Receiver([500]) as receiver:
        services.webhook_subscription_create(actor=admin, name="down", url=receiver.url, secret=SECRET)
        emit(model)
        (delivery,) = deliveries()
        outcomes = [services.webhook_delivery_attempt(delivery_id=delivery.pk) for _ in range(4)]
    assert [o.status for o in outcomes] == ["retrying", "retrying", "failed", "failed"]
    assert len(receiver.requests) == 3  # the fourth call finds the delivery finished
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempt_count == 3
    assert delivery.completed_at is not None


def test_client_errors_are_not_retried(admin, model):
    with Receiver([404]) as receiver:
        services.webhook_subscription_create(actor=admin, name="gone", url=receiver.url, secret=SECRET)
        emit(model)
        outcome = services.webhook_delivery_attempt(delivery_id=deliveries()[0].pk)
    assert outcome.status == DeliveryStatus.FAILED and outcome.retry_in is None


def test_connection_errors_are_logged_and_retried(admin, model):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    services.webhook_subscription_create(actor=admin, name="nobody", url=f"http://127.0.0.1:{port}/x", secret=SECRET)
    emit(model)
    outcome = services.webhook_delivery_attempt(delivery_id=deliveries()[0].pk)
    assert outcome.status == DeliveryStatus.RETRYING
    attempt = deliveries()[0].attempts.get()
    assert attempt.status_code is None
    assert "ConnectionError" in attempt.error


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/x", "gopher://127.0.0.1:70/",
                                 "javascript:alert(1)", "http://", "http://user:pw@example.org/hook"])
def test_only_http_and_https_targets_are_accepted(admin, url):
    with pytest.raises(ValidationFailed):
        services.webhook_subscription_create(actor=admin, name="bad", url=url)


def test_only_admins_configure_webhooks(make_user):
    for role in ("Data Scientist", "ML Engineer", "Approver"):
        with pytest.raises(PermissionDenied):
            services.webhook_subscription_create(actor=make_user(role), name="x", url="http://127.0.0.1:9/")


def test_subscriptions_filter_by_model_and_event(admin, model, make_user):
    other = make_model(make_user("Data Scientist"), name="other-model")
    everything = services.webhook_subscription_create(actor=admin, name="all", url="http://127.0.0.1:9/a")
    only_this = services.webhook_subscription_create(actor=admin, name="this", url="http://127.0.0.1:9/b",
                                                     registered_model=model)
    approvals = services.webhook_subscription_create(
        actor=admin, name="approvals", url="http://127.0.0.1:9/c",
        events=["registry.promotion_request.approved", "serving.deployment.started"])
    services.webhook_subscription_create(actor=admin, name="off", url="http://127.0.0.1:9/d", is_active=False)

    emit(model, "registry.model_version.created")
    emit(other, "registry.model_version.created")
    emit(model, "registry.promotion_request.approved")
    emit(model, "serving.deployment.started")  # another app's event name goes through
    got = sorted((d.event, d.subscription.name) for d in deliveries())
    assert got == sorted([
        ("registry.model_version.created", "all"), ("registry.model_version.created", "this"),
        ("registry.model_version.created", "all"),  # the other model: only the global subscription
        ("registry.promotion_request.approved", "all"), ("registry.promotion_request.approved", "this"),
        ("registry.promotion_request.approved", "approvals"),
        ("serving.deployment.started", "all"), ("serving.deployment.started", "this"),
        ("serving.deployment.started", "approvals"),
    ])
    assert everything.events == [] and only_this.registered_model == model and approvals.events


def test_a_rolled_back_change_sends_nothing(admin, model):
    services.webhook_subscription_create(actor=admin, name="all", url="http://127.0.0.1:9/a")
    with pytest.raises(RuntimeError), transaction.atomic():
        services.webhooks_emit(event="registry.model_version.created", registered_model=model, payload={})
        raise RuntimeError("the change failed")
    assert deliveries() == []


def test_send_test_event_reaches_a_filtered_subscription(admin, model):
    with Receiver([200]) as receiver:
        sub = services.webhook_subscription_create(actor=admin, name="filtered", url=receiver.url, secret=SECRET,
                                                   events=["registry.model.rolled_back"])
        delivery = services.webhook_send_test(subscription=sub, actor=admin)
        services.webhook_delivery_attempt(delivery_id=delivery.pk)
    assert receiver.requests[0]["headers"]["X-Mlops-Event"] == "webhook.test"
    assert json.loads(receiver.requests[0]["body"])["data"]["sent_by"] == "hookadmin"


def test_event_names_are_checked(admin):
    with pytest.raises(ValidationFailed):
        services.webhook_subscription_create(actor=admin, name="x", url="http://127.0.0.1:9/", events=["Not An Event"])
