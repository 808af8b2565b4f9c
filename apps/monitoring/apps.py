from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "apps.monitoring"
    label = "monitoring"
    verbose_name = "Monitoring: metric series, data drift and alerts"

    # Alert rules, alerts and silences are seen and changed through their
    # endpoint's rights (view, deploy); the model permissions below let the
    # admin list them.
    role_permissions = {
        "Viewer": ["monitoring.view_driftreport", "monitoring.view_alertrule", "monitoring.view_alert",
                   "monitoring.view_silence"],
        # Data scientists compare this month's submissions with the training data.
        "Data Scientist": ["monitoring.add_driftreport"],
    }

    def ready(self):
        from apps.core import events, metrics, navigation
        from apps.monitoring.series.prometheus import MetricSeriesCollector
        from apps.monitoring.series.rollup import metric_series_prune_limit
        from apps.serving import retention

        navigation.register("Drift", "monitoring:drift-report-list", order=55,
                            permission="monitoring.view_driftreport")
        # The log prune keeps every row the metric series has not read yet.
        retention.register_prune_guard("monitoring.metric_series", metric_series_prune_limit)
        metrics.register_collector(MetricSeriesCollector())
        events.subscribe("serving.endpoint.created", _endpoint_created)


def _endpoint_created(event: str, payload: dict) -> None:
    """A new endpoint gets the default alert rules, on the worker."""
    from apps.monitoring.tasks import alert_rules_ensure_defaults

    alert_rules_ensure_defaults.delay(payload["endpoint_id"])
