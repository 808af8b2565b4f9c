from django.db import models


class TestKind(models.TextChoices):
    CHAMPION_CHALLENGER = "champion_challenger", "Champion / challenger"
    MULTIVARIATE = "multivariate", "Multivariate"


class TestStatus(models.TextChoices):
    """draft → pending_approval (production, challengers outside Production)
    → running → stopped → concluded; aborted from any state before concluded."""

    DRAFT = "draft", "Draft"
    PENDING_APPROVAL = "pending_approval", "Waiting for approval"
    RUNNING = "running", "Running"
    STOPPED = "stopped", "Stopped"
    CONCLUDED = "concluded", "Concluded"
    ABORTED = "aborted", "Aborted"


class TestMetric(models.TextChoices):
    """What an arm is judged on, from the prediction log and feedback."""

    ACCURACY = "accuracy", "Accuracy against ground truth"
    ERROR_RATE = "error_rate", "Error rate"
    POSITIVE_RATE = "positive_rate", "Share predicted positive"
    REVIEW_RATE = "review_rate", "Share flagged for review (low confidence)"
    LATENCY_MS = "latency_ms", "Latency (ms)"
    ABS_ERROR = "abs_error", "Absolute error (regression)"
    CONFIDENCE = "confidence", "Confidence"


class TestEngine(models.TextChoices):
    FREQUENTIST = "frequentist", "Frequentist"
    BAYESIAN = "bayesian", "Bayesian"
    SEQUENTIAL = "sequential", "Sequential"


class TestCorrection(models.TextChoices):
    NONE = "none", "None"
    HOLM = "holm", "Holm-Bonferroni"
    BH = "bh", "Benjamini-Hochberg"


# Proportions take the variance p(1 - p); the others are means.
PROPORTION_METRICS = frozenset({TestMetric.ACCURACY, TestMetric.ERROR_RATE, TestMetric.POSITIVE_RATE,
                                TestMetric.REVIEW_RATE})
OPEN_STATUSES = (TestStatus.DRAFT, TestStatus.PENDING_APPROVAL, TestStatus.RUNNING, TestStatus.STOPPED)
