from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "apps.registry"
    label = "registry"
    verbose_name = "Model registry"

    role_permissions = {
        "Viewer": ["registry.view_registeredmodel", "registry.view_modelversion",
                   "registry.view_promotionrequest", "registry.view_modelalias", "registry.view_stagetransition"],
        "Data Scientist": [
            "registry.add_registeredmodel",
            "registry.change_registeredmodel",
            "registry.add_modelversion",
            "registry.add_promotionrequest",
        ],
        "ML Engineer": [
            "registry.rollback_registeredmodel",
        ],
        "Approver": [
            "registry.approve_registeredmodel",
            "registry.rollback_registeredmodel",
        ],
    }

    # With lab sharing, Approvers approve (and set the quality gates of) every
    # lab model, and ML Engineers and Approvers roll back any of them in an
    # incident: their role's work, not the owner's to give.
    lab_duties = ["registry.approve_registeredmodel", "registry.rollback_registeredmodel"]

    def ready(self):
        from apps.core import lineage, navigation
        from apps.core.webhooks import subjects
        from apps.registry.lineage import PROVIDER
        from apps.registry.models import RegisteredModel

        navigation.register("Models", "registry:list", order=30)
        lineage.register(PROVIDER)
        # Webhooks scoped to one model: "registered_model": "<name>" in the API.
        subjects.register(key="registered_model", model=RegisteredModel, lookup="name",
                          help_text="A model name; empty for every model.")
        navigation.register("Approvals", "registry:approvals", order=31,
                            permission="registry.approve_registeredmodel")
