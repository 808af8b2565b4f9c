"""Every write of alerting in one import."""


from apps.monitoring.alerts.evaluation import alert_evaluate, alert_rules_evaluate
from apps.monitoring.alerts.rules import (
    alert_rule_create,
    alert_rule_delete,
    alert_rule_update,
    alert_rules_ensure_defaults,
)
from apps.monitoring.alerts.silences import alert_acknowledge, silence_create, silence_expire

__all__ = ["alert_acknowledge", "alert_evaluate", "alert_rule_create", "alert_rule_delete", "alert_rule_update",
           "alert_rules_ensure_defaults", "alert_rules_evaluate", "silence_create", "silence_expire"]
