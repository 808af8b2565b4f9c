from django.conf import settings
from django.db import models

from apps.datasets.choices import ExpectationKind, FileFormat, Severity, TaskHint, VersionStatus


class Dataset(models.Model):
    """A named collection of immutable versions of one kind of lab table
    (e.g. sample submissions), with the expectations every version must meet
    and the feature spec models are trained with. Carries object permissions."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="datasets")
    task_hint = models.CharField(max_length=20, choices=TaskHint.choices, default=TaskHint.UNSPECIFIED)
    # Default target column for training jobs and the class-balance report.
    target_column = models.CharField(max_length=200, blank=True)
    # Declarative preprocessing, compiled by apps.datasets.features into a
    # scikit-learn ColumnTransformer (see docs/datasets.md for the format).
    feature_spec = models.JSONField(default=dict, blank=True)
    # New versions are compared with this version's schema (missing or renamed
    # columns, type changes); empty means the previous valid version.
    schema_version = models.ForeignKey("DatasetVersion", null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="+")
    schema_check_severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.ERROR)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class DatasetVersion(models.Model):
    """One uploaded file of a dataset. Immutable once stored: its content is
    identified by SHA-256, and uploading the same content again returns this
    version. A worker infers its schema, checks the dataset's expectations and
    writes a quality report; only ``valid`` versions may be trained on."""

    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField()
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    file = models.CharField(max_length=500, help_text="Name in artifact storage.")
    original_filename = models.CharField(max_length=255)
    file_format = models.CharField(max_length=10, choices=FileFormat.choices)
    encoding = models.CharField(max_length=30, blank=True)
    # Field separator of CSV/TSV files, sniffed on upload (empty for Parquet).
    delimiter = models.CharField(max_length=4, blank=True)
    # How the file is read (detected on upload, or the uploader's overrides):
    # delimiter, decimal, thousands, encoding, header_row, sheet, column_types.
    read_options = models.JSONField(default=dict, blank=True)
    sha256 = models.CharField(max_length=64)
    size_bytes = models.BigIntegerField()
    row_count = models.BigIntegerField(null=True, blank=True)
    column_count = models.IntegerField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=VersionStatus.choices, default=VersionStatus.PENDING,
                              db_index=True)
    status_reason = models.TextField(blank=True)
    progress = models.FloatField(default=0.0)
    progress_message = models.CharField(max_length=200, blank=True)
    # Inferred schema: {"columns": [{"name", "type", "null_share", "unique_share", "role", "stats": {...}}]}
    schema = models.JSONField(null=True, blank=True)
    quality_report = models.JSONField(null=True, blank=True)
    quality_score = models.FloatField(null=True, blank=True)
    # One result per expectation of the dataset at validation time (see
    # apps.datasets.expectations.evaluate for the shape).
    expectation_results = models.JSONField(null=True, blank=True)
    note = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    validated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["dataset", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "version"], name="dataset_version_number_unique"),
            models.UniqueConstraint(fields=["dataset", "sha256"], name="dataset_version_content_unique"),
        ]

    def __str__(self):
        return f"{self.dataset.name} v{self.version}"

    @property
    def is_valid(self) -> bool:
        return self.status == VersionStatus.VALID


class Expectation(models.Model):
    """A rule every new version of a dataset is checked against: a column is
    present, has a type, stays within a range or a set of categories, is never
    missing or unique, or the table has enough rows. A failed ``error``
    expectation makes the version invalid; a ``warning`` is only reported.
    See apps.datasets.expectations for the kinds and their params."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="expectations")
    kind = models.CharField(max_length=30, choices=ExpectationKind.choices)
    column = models.CharField(max_length=200, blank=True)
    params = models.JSONField(default=dict, blank=True)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.ERROR)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["dataset", "id"]

    def __str__(self):
        from apps.datasets.expectations import describe

        return describe(self.as_rule())

    def as_rule(self) -> dict:
        """The plain dict apps.datasets.expectations works on."""
        return {"id": self.pk, "kind": self.kind, "column": self.column, "params": self.params or {},
                "severity": self.severity}
