"""Promotion events are now spelled like their audit actions
(``registry.promotion_request.<happened>``); subscriptions that named the old
events are rewritten so that their receivers keep hearing of promotions.
Deliveries already queued keep the name they were emitted under."""

from django.db import migrations

RENAMED = {
    "registry.promotion.requested": "registry.promotion_request.created",
    "registry.promotion.approved": "registry.promotion_request.approved",
    "registry.promotion.rejected": "registry.promotion_request.rejected",
}


def _rewrite(apps, mapping: dict) -> None:
    subscription_model = apps.get_model("registry", "WebhookSubscription")
    for subscription in subscription_model.objects.exclude(events=[]).only("pk", "events"):
        events = sorted({mapping.get(name, name) for name in subscription.events})
        if events != sorted(subscription.events):
            subscription_model.objects.filter(pk=subscription.pk).update(events=events)


def forwards(apps, schema_editor):
    _rewrite(apps, RENAMED)


def backwards(apps, schema_editor):
    _rewrite(apps, {new: old for old, new in RENAMED.items()})


class Migration(migrations.Migration):

    dependencies = [
        ("registry", "0005_version_rolled_back"),
    ]

    operations = [
        migrations.RunPython(forwards, backwards),
    ]
