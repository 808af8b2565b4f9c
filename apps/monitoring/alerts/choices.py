"""Choice sets of alerting, spelled like the state machine's constants."""

from django.db import models

from apps.monitoring.alerts import machine


class AlertMetric(models.TextChoices):
    ERROR_RATE = "error_rate", "Error rate (0 to 1)"
    LATENCY_P95 = "latency_p95", "p95 latency (ms)"
    REQUEST_RATE = "request_rate", "Requests per second"
    ACCURACY = "accuracy", "Live accuracy (0 to 1, from feedback)"
    DATASET_DRIFT = "dataset_drift", "Dataset drift in the latest report (1 or 0)"


class Comparison(models.TextChoices):
    GT = ">", "greater than"
    GE = ">=", "at least"
    LT = "<", "less than"
    LE = "<=", "at most"


class AlertState(models.TextChoices):
    INACTIVE = machine.INACTIVE, "Inactive"
    PENDING = machine.PENDING, "Pending"
    FIRING = machine.FIRING, "Firing"
    RESOLVED = machine.RESOLVED, "Resolved"


class AlertSeverity(models.TextChoices):
    NONE = "", "None"
    WARNING = machine.WARNING, "Warning"
    CRITICAL = machine.CRITICAL, "Critical"


class EndpointHealth(models.TextChoices):
    HEALTHY = "healthy", "Healthy"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"
