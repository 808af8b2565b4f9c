from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "apps.monitoring"
    label = "monitoring"
    verbose_name = "Monitoring: metric series and data drift"

    role_permissions = {
        "Viewer": ["monitoring.view_driftreport"],
        # Data scientists compare this month's submissions with the training data.
        "Data Scientist": ["monitoring.add_driftreport"],
    }

    def ready(self):
        from apps.core import metrics, navigation
        from apps.monitoring.series.prometheus import MetricSeriesCollector
        from apps.monitoring.series.rollup import metric_series_prune_limit
        from apps.serving import retention

        navigation.register("Drift", "monitoring:drift-report-list", order=55,
                            permission="monitoring.view_driftreport")
        # The log prune keeps every row the metric series has not read yet.
        retention.register_prune_guard("monitoring.metric_series", metric_series_prune_limit)
        metrics.register_collector(MetricSeriesCollector())
