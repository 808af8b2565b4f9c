from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Core: users, API keys, audit trail"

    # Webhook targets are configured by Admins only (who hold every
    # permission): the platform sends requests to them from the lab network.
    # Model permissions each role holds, declared by every app the same way
    # (see apps.core.roles). Codenames are "<app_label>.<codename>".
    role_permissions = {
        "Viewer": ["core.view_user", "core.add_apikey", "core.view_apikey", "core.delete_apikey"],
        "Data Scientist": ["core.view_user", "core.add_apikey", "core.view_apikey", "core.delete_apikey"],
        "ML Engineer": ["core.view_user", "core.add_apikey", "core.view_apikey", "core.delete_apikey",
                        "core.view_webhooksubscription", "core.view_webhookdelivery"],
        "Approver": [
            "core.view_user",
            "core.add_apikey",
            "core.view_apikey",
            "core.delete_apikey",
            "core.view_auditevent",
            "core.view_webhooksubscription",
            "core.view_webhookdelivery",
        ],
    }

    def ready(self):
        from django.db.models.signals import post_migrate

        from apps.core import checks  # noqa: F401  (registers the settings checks)
        from apps.core.roles import sync_role_permissions_after_migrate

        post_migrate.connect(sync_role_permissions_after_migrate, dispatch_uid="core-sync-roles")

        from django.conf import settings

        if getattr(settings, "WORKER_CLEAR_CONTENT_TYPES_PER_TASK", False):
            from celery.signals import task_prerun

            task_prerun.connect(_forget_content_types, dispatch_uid="core-forget-content-types", weak=False)


def _forget_content_types(**_kwargs) -> None:
    """Test runs only: the suite flushes the database between tests and
    recreates content types, which PostgreSQL numbers anew; a worker process
    that lives across tests must not keep the old ids (object permissions are
    looked up by content type)."""
    from django.contrib.contenttypes.models import ContentType

    ContentType.objects.clear_cache()
