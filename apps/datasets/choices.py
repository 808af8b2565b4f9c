from django.db import models


class TaskHint(models.TextChoices):
    CLASSIFICATION = "classification", "Classification"
    REGRESSION = "regression", "Regression"
    UNSPECIFIED = "unspecified", "Unspecified"


class FileFormat(models.TextChoices):
    CSV = "csv", "CSV"
    TSV = "tsv", "TSV"
    PARQUET = "parquet", "Parquet"


class VersionStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    VALIDATING = "validating", "Validating"
    VALID = "valid", "Valid"
    INVALID = "invalid", "Invalid"


class ColumnType(models.TextChoices):
    INTEGER = "integer", "Integer"
    FLOAT = "float", "Float"
    BOOLEAN = "boolean", "Boolean"
    CATEGORICAL = "categorical", "Categorical"
    TEXT = "text", "Text"
    DATETIME = "datetime", "Datetime"


class ColumnRole(models.TextChoices):
    FEATURE = "feature", "Feature"
    TARGET = "target", "Target"
    IDENTIFIER = "identifier", "Identifier"
    TIMESTAMP = "timestamp", "Timestamp"
