"""Webhooks moved from the registry to core (apps.core.webhooks): copy every
subscription, delivery and attempt into the core tables, keeping ids and
uuids (so /api/v1/webhooks/<id>/ and receivers' delivery ids still hold),
then drop the registry tables.

A subscription of one registered model becomes one whose subject is that
model (content type registry.registeredmodel, the model's id). Plain
create / copy / drop works the same on SQLite and PostgreSQL; the id
sequences of the core tables are moved past the copied ids afterwards.
Reversible: going back copies the rows the other way."""

from django.core.management.color import no_style
from django.db import migrations

FIELDS_SUBSCRIPTION = ["id", "name", "url", "events", "secret", "is_active", "created_by_id", "created_at",
                       "updated_at"]
FIELDS_DELIVERY = ["id", "uuid", "subscription_id", "event", "body", "status", "attempt_count", "last_status_code",
                   "last_error", "next_attempt_at", "created_at", "completed_at"]
FIELDS_ATTEMPT = ["id", "delivery_id", "number", "status_code", "response_time_ms", "error", "response_excerpt",
                  "created_at"]
BATCH = 1000


def _model_type(apps, alias):
    ContentType = apps.get_model("contenttypes", "ContentType")
    content_type, _ = ContentType.objects.using(alias).get_or_create(app_label="registry", model="registeredmodel")
    return content_type


def _copy(source, target, fields, alias, convert=None):
    # auto_now(_add) would stamp every copied row with the time of the
    # migration; the copy keeps the original times (the historical model's
    # fields belong to this migration alone).
    for field in target._meta.concrete_fields:
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            field.auto_now = field.auto_now_add = False
    batch = []
    for row in source.objects.using(alias).order_by("pk").values(*fields).iterator(chunk_size=BATCH):
        if convert is not None:
            row = convert(row)
            if row is None:
                continue
        batch.append(target(**row))
        if len(batch) >= BATCH:
            target.objects.using(alias).bulk_create(batch)
            batch = []
    if batch:
        target.objects.using(alias).bulk_create(batch)


def _reset_sequences(schema_editor, models):
    connection = schema_editor.connection
    statements = connection.ops.sequence_reset_sql(no_style(), models)
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


def registry_to_core(apps, schema_editor):
    alias = schema_editor.connection.alias
    old = {name: apps.get_model("registry", name) for name in ("WebhookSubscription", "WebhookDelivery",
                                                                "WebhookAttempt")}
    new = {name: apps.get_model("core", name) for name in old}
    if not old["WebhookSubscription"].objects.using(alias).exists():
        return
    model_type = _model_type(apps, alias)

    def scope(row):
        model_id = row.pop("registered_model_id")
        row["subject_type_id"] = model_type.pk if model_id is not None else None
        row["subject_id"] = model_id
        return row

    _copy(old["WebhookSubscription"], new["WebhookSubscription"], [*FIELDS_SUBSCRIPTION, "registered_model_id"],
          alias, scope)
    _copy(old["WebhookDelivery"], new["WebhookDelivery"], FIELDS_DELIVERY, alias)
    _copy(old["WebhookAttempt"], new["WebhookAttempt"], FIELDS_ATTEMPT, alias)
    _reset_sequences(schema_editor, list(new.values()))


def core_to_registry(apps, schema_editor):
    alias = schema_editor.connection.alias
    new = {name: apps.get_model("core", name) for name in ("WebhookSubscription", "WebhookDelivery",
                                                            "WebhookAttempt")}
    old = {name: apps.get_model("registry", name) for name in new}
    if not new["WebhookSubscription"].objects.using(alias).exists():
        return
    model_type = _model_type(apps, alias)
    # Subscriptions scoped to anything but a registered model have no place
    # in the old tables; they (and their deliveries) stay behind in core.
    kept = set(new["WebhookSubscription"].objects.using(alias).filter(subject_type__isnull=True)
               .values_list("pk", flat=True))
    kept |= set(new["WebhookSubscription"].objects.using(alias).filter(subject_type=model_type)
                .values_list("pk", flat=True))

    def unscope(row):
        if row["id"] not in kept:
            return None
        row.pop("subject_type_id")
        row["registered_model_id"] = row.pop("subject_id")
        return row

    def of_kept(row):
        return row if row["subscription_id"] in kept else None

    deliveries = set(new["WebhookDelivery"].objects.using(alias).filter(subscription__in=kept)
                     .values_list("pk", flat=True))

    _copy(new["WebhookSubscription"], old["WebhookSubscription"],
          [*FIELDS_SUBSCRIPTION, "subject_type_id", "subject_id"], alias, unscope)
    _copy(new["WebhookDelivery"], old["WebhookDelivery"], FIELDS_DELIVERY, alias, of_kept)
    _copy(new["WebhookAttempt"], old["WebhookAttempt"], FIELDS_ATTEMPT, alias,
          lambda row: row if row["delivery_id"] in deliveries else None)
    new["WebhookSubscription"].objects.using(alias).filter(pk__in=kept).delete()
    _reset_sequences(schema_editor, list(old.values()))


class Migration(migrations.Migration):

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("core", "0006_webhooks"),
        ("registry", "0006_promotion_request_event_names"),
    ]

    operations = [
        migrations.RunPython(registry_to_core, core_to_registry),
        migrations.DeleteModel(name="WebhookAttempt"),
        migrations.DeleteModel(name="WebhookDelivery"),
        migrations.DeleteModel(name="WebhookSubscription"),
    ]
