from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "apps.monitoring"
    label = "monitoring"
    verbose_name = "Monitoring: data drift"

    role_permissions = {
        "Viewer": ["monitoring.view_driftreport"],
        # Data scientists compare this month's submissions with the training data.
        "Data Scientist": ["monitoring.add_driftreport"],
    }

    def ready(self):
        from apps.core import navigation

        navigation.register("Drift", "monitoring:drift-report-list", order=55,
                            permission="monitoring.view_driftreport")
