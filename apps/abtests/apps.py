from django.apps import AppConfig


class AbtestsConfig(AppConfig):
    name = "apps.abtests"
    label = "abtests"
    verbose_name = "A/B tests"

    # Rights on a test come from its endpoint (seeing it, deploying to it) and,
    # for approval, from its challengers' models; these are the capabilities
    # the admin pages ask for.
    role_permissions = {
        "Viewer": ["abtests.view_abtest", "abtests.view_abtestarm", "abtests.view_abtestarmstatistic"],
        "ML Engineer": ["abtests.add_abtest", "abtests.change_abtest"],
    }

    def ready(self):
        from apps.abtests import canary
        from apps.abtests.services.decisions import on_promotion_decided
        from apps.core import events, navigation
        from apps.registry.choices import RegistryEvent
        from apps.serving import judges

        navigation.register("A/B calculator", "abtests:calculator", order=45)
        # A shipped winner deploys once its promotion is approved.
        for event in (RegistryEvent.PROMOTION_REQUEST_APPROVED, RegistryEvent.PROMOTION_REQUEST_REJECTED,
                      RegistryEvent.PROMOTION_REQUEST_CANCELLED):
            events.subscribe(event, on_promotion_decided)
        # Canary steps with ``analysis: "sequential"`` are judged by the A/B statistics.
        judges.register(canary.SEQUENTIAL, canary.sequential_judge)
