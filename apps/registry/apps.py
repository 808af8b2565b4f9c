from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "apps.registry"
    label = "registry"
    verbose_name = "Model registry"

    role_permissions = {
        "Viewer": ["registry.view_registeredmodel", "registry.view_modelversion",
                   "registry.view_promotionrequest"],
        "Data Scientist": [
            "registry.add_registeredmodel",
            "registry.change_registeredmodel",
            "registry.add_modelversion",
            "registry.add_promotionrequest",
        ],
        "Approver": ["registry.approve_registeredmodel"],
    }

    def ready(self):
        from apps.core import navigation

        navigation.register("Models", "registry:list", order=30)
