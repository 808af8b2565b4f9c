"""Alert rules: create, change, delete, and the defaults every endpoint gets.
Changing a rule needs the deploy right on its endpoint."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from apps.core.errors import Conflict, ValidationFailed
from apps.core.permissions import require_perm
from apps.core.services import audit_record, snapshot
from apps.monitoring.alerts.choices import AlertMetric, Comparison
from apps.monitoring.alerts.models import Alert, AlertRule

RULE_FIELDS = ["name", "metric", "window_seconds", "comparison", "warning_threshold", "critical_threshold",
               "for_seconds", "keep_firing_for_seconds", "labels", "runbook_url", "enabled", "deployment"]
EDITABLE = set(RULE_FIELDS)
MAX_SECONDS = 7 * 24 * 3600

# Every endpoint starts with these (names are unique per endpoint, so
# ensuring them twice changes nothing).
DEFAULT_RULES = [
    {"name": "High error rate", "metric": AlertMetric.ERROR_RATE, "comparison": Comparison.GT,
     "warning_threshold": 0.05, "critical_threshold": 0.10, "window_seconds": 300, "for_seconds": 120,
     "keep_firing_for_seconds": 300},
    {"name": "Slow predictions", "metric": AlertMetric.LATENCY_P95, "comparison": Comparison.GT,
     "warning_threshold": 200.0, "critical_threshold": None, "window_seconds": 300, "for_seconds": 300,
     "keep_firing_for_seconds": 300},
    {"name": "Accuracy drop", "metric": AlertMetric.ACCURACY, "comparison": Comparison.LT,
     "warning_threshold": 0.85, "critical_threshold": 0.75, "window_seconds": 3600, "for_seconds": 0,
     "keep_firing_for_seconds": 900},
    {"name": "Dataset drift", "metric": AlertMetric.DATASET_DRIFT, "comparison": Comparison.GE,
     "warning_threshold": 1.0, "critical_threshold": None, "window_seconds": 3600, "for_seconds": 0,
     "keep_firing_for_seconds": 0},
]


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", details={"fields": {field: [message]}})


def _number(field: str, value, *, whole: bool = False, low: float | None = None, high: float | None = None):
    if value is None and not whole:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or (whole and not isinstance(value, int)):
        raise _invalid(field, "must be a whole number" if whole else "must be a number")
    if (low is not None and value < low) or (high is not None and value > high):
        raise _invalid(field, f"must be from {low} to {high}")
    return value


def clean_rule(values: dict, *, endpoint) -> dict:
    """Check a rule's fields as a whole (after merging changes into the old values)."""
    if values.get("metric") not in AlertMetric.values:
        raise _invalid("metric", f"unknown metric (known: {', '.join(AlertMetric.values)})")
    if values.get("comparison") not in Comparison.values:
        raise _invalid("comparison", f"must be one of {' '.join(Comparison.values)}")
    name = values.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise _invalid("name", "must be 1 to 100 characters")
    values["name"] = name.strip()
    values["window_seconds"] = _number("window_seconds", values.get("window_seconds"), whole=True, low=10,
                                       high=MAX_SECONDS)
    for field in ("for_seconds", "keep_firing_for_seconds"):
        values[field] = _number(field, values.get(field), whole=True, low=0, high=MAX_SECONDS)
    warning = values["warning_threshold"] = _number("warning_threshold", values.get("warning_threshold"))
    critical = values["critical_threshold"] = _number("critical_threshold", values.get("critical_threshold"))
    if warning is None and critical is None:
        raise _invalid("warning_threshold", "give a warning or a critical threshold")
    if warning is not None and critical is not None:
        rising = values["comparison"] in (Comparison.GT, Comparison.GE)
        if (rising and critical < warning) or (not rising and critical > warning):
            raise _invalid("critical_threshold", "must be beyond the warning threshold in the comparison's direction")
    if not isinstance(values.get("labels") or {}, dict):
        raise _invalid("labels", "must be an object")
    values["labels"] = {str(k): str(v) for k, v in (values.get("labels") or {}).items()}
    if not isinstance(values.get("runbook_url") or "", str) or len(values.get("runbook_url") or "") > 500:
        raise _invalid("runbook_url", "must be a URL of at most 500 characters")
    values["runbook_url"] = values.get("runbook_url") or ""
    if not isinstance(values.get("enabled", True), bool):
        raise _invalid("enabled", "must be true or false")
    deployment = values.get("deployment")
    if deployment is not None and deployment.endpoint_id != endpoint.pk:
        raise _invalid("deployment_id", "is not a deployment of this endpoint")
    return values


def _audit_snapshot(rule: AlertRule) -> dict:
    return snapshot(rule, [f for f in RULE_FIELDS if f != "deployment"] + ["deployment_id"])


def alert_rule_create(*, actor, endpoint, **fields) -> AlertRule:
    require_perm(actor, "serving.deploy_endpoint", endpoint)
    values = clean_rule({"enabled": True, "window_seconds": 300, "comparison": Comparison.GT, "for_seconds": 0,
                         "keep_firing_for_seconds": 0, **fields}, endpoint=endpoint)
    try:
        with transaction.atomic():
            rule = AlertRule.objects.create(endpoint=endpoint, created_by=actor if actor else None, **values)
            Alert.objects.create(rule=rule)
            audit_record(actor=actor, action="alert_rule.created", target=rule, after=_audit_snapshot(rule))
    except IntegrityError:
        raise Conflict(f"This endpoint already has a rule named {values['name']!r}.",
                       details={"fields": {"name": ["taken"]}})
    return rule


def alert_rule_update(*, actor, rule: AlertRule, **changes) -> AlertRule:
    require_perm(actor, "serving.deploy_endpoint", rule.endpoint)
    unknown = set(changes) - EDITABLE
    if unknown:
        raise _invalid(sorted(unknown)[0], "cannot be changed")
    try:
        with transaction.atomic():
            rule = AlertRule.objects.select_for_update().get(pk=rule.pk)
            before = _audit_snapshot(rule)
            current = {field: getattr(rule, field) for field in RULE_FIELDS}
            values = clean_rule({**current, **changes}, endpoint=rule.endpoint)
            for field, value in values.items():
                setattr(rule, field, value)
            rule.save()
            audit_record(actor=actor, action="alert_rule.updated", target=rule, before=before,
                         after=_audit_snapshot(rule))
    except IntegrityError:
        raise Conflict("This endpoint already has a rule with that name.", details={"fields": {"name": ["taken"]}})
    return rule


def alert_rule_delete(*, actor, rule: AlertRule) -> None:
    require_perm(actor, "serving.deploy_endpoint", rule.endpoint)
    with transaction.atomic():
        audit_record(actor=actor, action="alert_rule.deleted", target=rule, before=_audit_snapshot(rule))
        rule.delete()


def alert_rules_ensure_defaults(*, endpoint, actor) -> list[AlertRule]:
    """Give ``endpoint`` the default rules it lacks (by name); returns the new
    ones. Called for a new endpoint (the platform acts, ``actor`` may be
    None) and by ``alert_rules_ensure_defaults`` for existing ones."""
    created = []
    with transaction.atomic():
        existing = set(AlertRule.objects.filter(endpoint=endpoint).values_list("name", flat=True))
        for spec in DEFAULT_RULES:
            if spec["name"] in existing:
                continue
            rule = AlertRule.objects.create(endpoint=endpoint, created_by=None, labels={"default": "true"},
                                            **spec)
            Alert.objects.create(rule=rule)
            audit_record(actor=actor, action="alert_rule.created", target=rule, after=_audit_snapshot(rule),
                         message="default rule")
            created.append(rule)
    return created
