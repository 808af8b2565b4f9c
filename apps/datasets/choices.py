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


class ExpectationKind(models.TextChoices):
    COLUMN_EXISTS = "column_exists", "Column is present"
    COLUMN_TYPE = "column_type", "Column has type"
    VALUE_RANGE = "value_range", "Values within range"
    ALLOWED_CATEGORIES = "allowed_categories", "Values among categories"
    NOT_NULL = "not_null", "No missing values"
    UNIQUE = "unique", "Values are unique"
    ROW_COUNT = "row_count", "Row count within range"


class Severity(models.TextChoices):
    ERROR = "error", "Error (version invalid)"
    WARNING = "warning", "Warning (reported only)"
