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
        from apps.abtests import canary
        from apps.abtests.services.decisions import on_promotion_decided
        from apps.core import events, navigation
        from apps.registry.choices import RegistryEvent
        from apps.serving import holders, judges

        navigation.register("A/B tests", "abtests:list", order=44)
        navigation.register("A/B calculator", "abtests:calculator", order=45)
        holders.register(split_holder)

        # A shipped winner deploys once its promotion is approved.
        for event in (RegistryEvent.PROMOTION_REQUEST_APPROVED, RegistryEvent.PROMOTION_REQUEST_REJECTED,
                      RegistryEvent.PROMOTION_REQUEST_CANCELLED):
            events.subscribe(event, on_promotion_decided)
        # Canary steps with ``analysis: "sequential"`` are judged by the A/B statistics.
        judges.register(canary.SEQUENTIAL, canary.sequential_judge)


def split_holder(split_id: int, user):
    """The endpoint page's link to the test holding a split (serving's hook)."""
    from django.urls import reverse

    from apps.abtests.choices import TestStatus
    from apps.abtests.selectors import ab_test_for_split
    from apps.core.permissions import has_perm
    from apps.serving.holders import SplitHolder

    test = ab_test_for_split(split_id=split_id)
    if test is None or not has_perm(user, "serving.view_endpoint", test.endpoint):
        return None
    may_stop = test.status == TestStatus.RUNNING and has_perm(user, "serving.deploy_endpoint", test.endpoint)
    return SplitHolder(label=test.label, url=reverse("abtests:detail", args=[test.pk]),
                       stop_url=reverse("abtests:action", args=[test.pk, "stop"]) if may_stop else None)
