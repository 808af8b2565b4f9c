from django.apps import AppConfig


class AbtestsConfig(AppConfig):
    name = "apps.abtests"
    label = "abtests"
    verbose_name = "A/B tests"

    def ready(self):
        from apps.core import navigation

        navigation.register("A/B calculator", "abtests:calculator", order=45)
