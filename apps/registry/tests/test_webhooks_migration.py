"""registry/0007_webhooks_to_core: existing webhook subscriptions, deliveries
and attempts move to core's tables with their ids, uuids, times and scope,
and the id sequences go on past them (run on SQLite and PostgreSQL)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("registry", "0006_promotion_request_event_names"), ("core", "0006_webhooks")]
AFTER = [("registry", "0007_webhooks_to_core")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def migrator(transactional_db):
    yield _migrate
    executor = MigrationExecutor(connection)
    _migrate(executor.loader.graph.leaf_nodes())  # the schema as the rest of the suite expects it


def test_webhooks_move_to_core_with_their_ids_and_scope(migrator):
    apps = migrator(BEFORE)
    User = apps.get_model("core", "User")
    RegisteredModel = apps.get_model("registry", "RegisteredModel")
    OldSubscription = apps.get_model("registry", "WebhookSubscription")
    OldDelivery = apps.get_model("registry", "WebhookDelivery")
    OldAttempt = apps.get_model("registry", "WebhookAttempt")
    admin = User.objects.create(username="boss")
    model = RegisteredModel.objects.create(name="sample-qc", owner=admin, task_type="classification")
    global_hook = OldSubscription.objects.create(id=41, name="all", url="https://hooks.example.org/a",
                                                 events=[], secret="s" * 32, created_by=admin)
    model_hook = OldSubscription.objects.create(id=42, name="qc", url="https://hooks.example.org/b",
                                                registered_model=model, events=["registry.alias.moved"],
                                                secret="t" * 32, is_active=False, created_by=admin)
    long_ago = timezone.now() - timedelta(days=30)
    OldSubscription.objects.filter(pk=model_hook.pk).update(created_at=long_ago)
    sent = OldDelivery.objects.create(id=7, subscription=model_hook, event="registry.alias.moved", body='{"a":1}',
                                      status="succeeded", attempt_count=2, last_status_code=200,
                                      completed_at=long_ago)
    OldDelivery.objects.filter(pk=sent.pk).update(created_at=long_ago)
    owed = OldDelivery.objects.create(id=8, subscription=global_hook, event="deployment.created", body="{}",
                                      status="retrying", attempt_count=1, next_attempt_at=long_ago)
    OldAttempt.objects.create(delivery=sent, number=1, status_code=503, error="HTTP 503")
    OldAttempt.objects.create(delivery=sent, number=2, status_code=200, response_time_ms=12.5)

    apps = migrator(AFTER)
    Subscription = apps.get_model("core", "WebhookSubscription")
    Delivery = apps.get_model("core", "WebhookDelivery")
    Attempt = apps.get_model("core", "WebhookAttempt")
    ContentType = apps.get_model("contenttypes", "ContentType")
    model_type = ContentType.objects.get(app_label="registry", model="registeredmodel")

    moved = {s.pk: s for s in Subscription.objects.all()}
    assert set(moved) == {41, 42}
    assert (moved[41].subject_type_id, moved[41].subject_id, moved[41].events) == (None, None, [])
    assert (moved[42].subject_type_id, moved[42].subject_id) == (model_type.pk, model.pk)
    assert (moved[42].secret, moved[42].is_active, moved[42].events) == ("t" * 32, False, ["registry.alias.moved"])
    assert moved[42].created_at == long_ago, "the copy keeps the original times"
    deliveries = {d.pk: d for d in Delivery.objects.all()}
    assert deliveries[7].uuid == sent.uuid and deliveries[7].created_at == long_ago
    assert (deliveries[7].status, deliveries[7].attempt_count, deliveries[7].subscription_id) == ("succeeded", 2, 42)
    assert (deliveries[8].status, deliveries[8].next_attempt_at) == ("retrying", owed.next_attempt_at)
    assert sorted(Attempt.objects.values_list("delivery_id", "number", "status_code")) == [(7, 1, 503), (7, 2, 200)]
    # New rows get fresh ids after the copied ones (PostgreSQL sequences moved on).
    fresh = Subscription.objects.create(name="new", url="https://hooks.example.org/c", secret="u" * 32,
                                        created_by_id=admin.pk)
    assert fresh.pk > 42
    assert "registry_webhooksubscription" not in connection.introspection.table_names()

    # And back: the rows return to the registry's tables.
    apps = migrator(BEFORE)
    back = apps.get_model("registry", "WebhookSubscription").objects.get(pk=42)
    assert back.registered_model_id == model.pk
    assert apps.get_model("registry", "WebhookDelivery").objects.get(pk=7).uuid == sent.uuid
