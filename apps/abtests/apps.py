from django.apps import AppConfig


class AbtestsConfig(AppConfig):
    name = "apps.abtests"
    label = "abtests"
    verbose_name = "A/B tests"

    # Rights on a test come from its endpoint (seeing it, deploying to it) and,
    # for approval, from its challengers' models; these are the capabilities
    # the admin pages ask for.
    role_permissions = {
        "Viewer": ["abtests.view_abtest", "abtests.view_abtestarm", "abtests.view_abtestarmstatistic",
                   "abtests.view_abtestunit"],
        "ML Engineer": ["abtests.add_abtest", "abtests.change_abtest"],
    }

    def ready(self):
        from apps.core import navigation

        navigation.register("A/B calculator", "abtests:calculator", order=45)
