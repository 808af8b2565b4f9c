from django.db import models


class ReportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class Correction(models.TextChoices):
    NONE = "none", "None"
    BONFERRONI = "bonferroni", "Bonferroni"
    BH = "bh", "Benjamini-Hochberg"


TERMINAL_REPORT_STATUSES = (ReportStatus.DONE, ReportStatus.FAILED)


class Granularity(models.TextChoices):
    MINUTE = "minute", "Minute"
    HOUR = "hour", "Hour"
    DAY = "day", "Day"
