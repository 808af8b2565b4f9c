"""Webhooks against a real HTTP server on 127.0.0.1: signed bodies, retries
with exponential backoff after 5xx, every attempt logged, scheme checks,
subject/event filtering (names and prefixes), the transactional outbox, and
any app's domain event reaching webhooks through ``events.publish``.

The subject of these tests is a user: the facility scopes to any object."""

import json
import socket

import pytest
from django.db import transaction
from django.test import override_settings

from apps.core.choices import DeliveryStatus
from apps.core.errors import PermissionDenied, ValidationFailed
from apps.core.models import WebhookDelivery
from apps.core.tests.receiver import Receiver
from apps.core.webhooks import services, signing

pytestmark = pytest.mark.django_db

SECRET = "s3cret-for-tests-0123456789"


@pytest.fixture
def admin(make_user):
    return make_user("Admin", username="hookadmin")


@pytest.fixture
def model(make_user):
    return make_user("Data Scientist", username="hooked")


def emit(model, event="registry.model_version.created", payload=None):
    with transaction.atomic():
        services.webhooks_emit(event=event, subject=model, envelope={"registered_model": model.username},
                               payload=payload or {"version": 1})


def deliveries():
    return list(WebhookDelivery.objects.order_by("id"))


@override_settings(WEBHOOK_RETRY_BACKOFF_SECONDS=2, WEBHOOK_MAX_ATTEMPTS=5)
def test_signed_delivery_retries_after_500s_and_logs_every_attempt(admin, model, django_capture_on_commit_callbacks):
    with Receiver([500, 503, 200]) as receiver:
        sub = services.webhook_subscription_create(actor=admin, name="lims", url=receiver.url,
                                                   subject=model, secret=SECRET)
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
                                 "javascript:alert(1)", "http://", "http://user:pw@example.org/hook",
                                 # Not ASCII: the URL a client reads back must be a valid URI.
                                 "https://L\u00c7\u00a62\u00ad\u00f4", "https://example.org/h\u00e4k",
                                 "https://example.org/a b"])
def test_only_http_and_https_targets_are_accepted(admin, url):
    with pytest.raises(ValidationFailed):
        services.webhook_subscription_create(actor=admin, name="bad", url=url)


def test_only_admins_configure_webhooks(make_user):
    for role in ("Data Scientist", "ML Engineer", "Approver"):
        with pytest.raises(PermissionDenied):
            services.webhook_subscription_create(actor=make_user(role), name="x", url="http://127.0.0.1:9/")


def test_subscriptions_filter_by_subject_and_event(admin, model, make_user):
    other = make_user("Data Scientist", username="other-model")
    everything = services.webhook_subscription_create(actor=admin, name="all", url="http://127.0.0.1:9/a")
    only_this = services.webhook_subscription_create(actor=admin, name="this", url="http://127.0.0.1:9/b",
                                                     subject=model)
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
    assert everything.events == [] and only_this.subject == model and approvals.events


def test_a_rolled_back_change_sends_nothing(admin, model):
    services.webhook_subscription_create(actor=admin, name="all", url="http://127.0.0.1:9/a")
    with pytest.raises(RuntimeError), transaction.atomic():
        services.webhooks_emit(event="registry.model_version.created", subject=model, payload={})
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


def test_a_prefix_names_a_family_of_events(admin, model):
    family = services.webhook_subscription_create(actor=admin, name="registry", url="http://127.0.0.1:9/a",
                                                  events=["registry.promotion.*", "deployment.*"])
    emit(model, "registry.promotion.requested")
    emit(model, "registry.promotion_request.approved")  # not under "registry.promotion."
    emit(model, "deployment.started")
    emit(model, "registry.alias.moved")
    assert sorted(d.event for d in deliveries()) == ["deployment.started", "registry.promotion.requested"]
    assert family.wants("registry.promotion.x.y") and not family.wants("registry.promotionx")


@pytest.mark.parametrize("bad", ["registry*", "*.moved", "registry.*.moved", "*", "registry.", "Registry.*"])
def test_prefixes_have_one_syntax(admin, bad):
    with pytest.raises(ValidationFailed):
        services.webhook_subscription_create(actor=admin, name="x", url="http://127.0.0.1:9/", events=[bad])


def test_any_apps_published_event_reaches_matching_webhooks(admin, model, make_user,
                                                            django_capture_on_commit_callbacks):
    from apps.core import events

    heard = []

    def handler(event, payload):
        heard.append(payload)

    events.subscribe("experiments.run.finished", handler)
    try:
        services.webhook_subscription_create(actor=admin, name="all", url="http://127.0.0.1:9/a")
        services.webhook_subscription_create(actor=admin, name="this", url="http://127.0.0.1:9/b", subject=model)
        other = make_user("Viewer", username="someone-else")
        with django_capture_on_commit_callbacks(execute=False), transaction.atomic():
            events.publish("experiments.run.finished", {"run_id": 3}, subject=model)
            events.publish("experiments.run.finished", {"run_id": 4}, subject=other)
            events.publish("experiments.run.finished", {"run_id": 5}, webhooks=False)
            # Written in the publisher's transaction, before any commit.
            got = sorted((d.subscription.name, json.loads(d.body)["data"]["run_id"]) for d in deliveries())
        assert got == [("all", 3), ("all", 4), ("this", 3)]
        assert json.loads(deliveries()[0].body).keys() == {"id", "event", "created_at", "data"}
    finally:
        events.unsubscribe("experiments.run.finished", handler)


def test_signing_is_hmac_sha256_of_the_body():
    import hashlib
    import hmac

    body = b'{"event":"x"}'
    expected = "sha256=" + hmac.new(b"key-123", body, hashlib.sha256).hexdigest()
    assert signing.sign(body, "key-123") == expected
    assert signing.verify(body, "key-123", expected)
    assert not signing.verify(body + b" ", "key-123", expected)
    assert not signing.verify(body, "key-123", expected.replace("sha256=", "sha1="))
