from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Core: users, API keys, audit trail"

    # Model permissions each role holds, declared by every app the same way
    # (see apps.core.roles). Codenames are "<app_label>.<codename>".
    role_permissions = {
        "Viewer": ["core.view_user", "core.add_apikey", "core.view_apikey", "core.delete_apikey"],
        "Data Scientist": ["core.view_user", "core.add_apikey", "core.view_apikey", "core.delete_apikey"],
        "ML Engineer": ["core.view_user", "core.add_apikey", "core.view_apikey", "core.delete_apikey"],
        "Approver": [
            "core.view_user",
            "core.add_apikey",
            "core.view_apikey",
            "core.delete_apikey",
            "core.view_auditevent",
        ],
    }

    def ready(self):
        from django.db.models.signals import post_migrate

        from apps.core.roles import sync_role_permissions_after_migrate

        post_migrate.connect(sync_role_permissions_after_migrate, dispatch_uid="core-sync-roles")
