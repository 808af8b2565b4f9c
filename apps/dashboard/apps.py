from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "apps.dashboard"
    label = "dashboard"
    verbose_name = "Dashboard"

    def ready(self):
        from apps.core import navigation

        navigation.register("Overview", "dashboard:overview", order=0)
