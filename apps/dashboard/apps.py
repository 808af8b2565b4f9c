from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "apps.dashboard"
    label = "dashboard"
    verbose_name = "Dashboard"

    def ready(self):
        from apps.core import navigation
        from apps.dashboard import receivers

        navigation.register("Overview", "dashboard:overview", order=0)
        receivers.subscribe_all()
