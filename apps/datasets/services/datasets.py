"""Writes on datasets: create, update, feature spec."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from apps.core.errors import Conflict, ValidationFailed
from apps.core.permissions import grant_on_create, require_perm
from apps.core.services import audit_record, snapshot
from apps.datasets.choices import Severity, TaskHint, VersionStatus
from apps.datasets.features import FeatureSpecError, validate_feature_spec
from apps.datasets.models import Dataset, DatasetVersion

DATASET_FIELDS = ["name", "description", "task_hint", "target_column", "owner", "schema_version",
                  "schema_check_severity"]

# --- Datasets -----------------------------------------------------------------------

def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("A dataset needs a name.", details={"fields": {"name": ["Required."]}})
    if len(name) > 200:
        raise ValidationFailed("The name is longer than 200 characters.", details={"fields": {"name": ["Too long."]}})
    return name


def _check_task_hint(task_hint: str) -> None:
    if task_hint not in TaskHint.values:
        raise ValidationFailed(f"task_hint must be one of {', '.join(TaskHint.values)}.",
                               details={"fields": {"task_hint": ["Unknown value."]}})


def dataset_create(*, actor, name: str, description: str = "", task_hint: str = TaskHint.UNSPECIFIED,
                   target_column: str = "", feature_spec: dict | None = None) -> Dataset:
    """Create a dataset owned by ``actor`` (who needs ``datasets.add_dataset``)."""
    require_perm(actor, "datasets.add_dataset")
    name = _clean_name(name)
    _check_task_hint(task_hint)
    spec = {}
    if feature_spec:
        spec = _validated_spec(feature_spec, schema=None, target=target_column)
    with transaction.atomic():
        if Dataset.objects.filter(name=name).exists():
            raise Conflict(f"A dataset named {name!r} already exists.", details={"fields": {"name": ["Taken."]}})
        try:
            with transaction.atomic():
                dataset = Dataset.objects.create(name=name, description=description or "", owner=actor,
                                                 task_hint=task_hint, target_column=(target_column or "").strip(),
                                                 feature_spec=spec)
        except IntegrityError:
            raise Conflict(f"A dataset named {name!r} already exists.", details={"fields": {"name": ["Taken."]}})
        grant_on_create(dataset, owner=actor)
        audit_record(actor=actor, action="dataset.created", target=dataset, after=snapshot(dataset, DATASET_FIELDS))
    return dataset


def dataset_update(*, dataset: Dataset, actor, **changes) -> Dataset:
    """Change a dataset's name, description, task hint or target column."""
    require_perm(actor, "datasets.change_dataset", dataset)
    allowed = {"name", "description", "task_hint", "target_column", "schema_version", "schema_check_severity"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationFailed(f"Cannot change {', '.join(sorted(unknown))}.")
    if "name" in changes:
        changes["name"] = _clean_name(changes["name"])
    if "task_hint" in changes:
        _check_task_hint(changes["task_hint"])
    if "target_column" in changes:
        changes["target_column"] = (changes["target_column"] or "").strip()
        schema = latest_schema(dataset)
        if changes["target_column"] and schema and changes["target_column"] not in _column_names(schema):
            raise ValidationFailed(f"The latest valid version has no column {changes['target_column']!r}.",
                                   details={"fields": {"target_column": ["No such column."]}})
    if "schema_check_severity" in changes and changes["schema_check_severity"] not in Severity.values:
        raise ValidationFailed(f"schema_check_severity must be one of {', '.join(Severity.values)}.",
                               details={"fields": {"schema_check_severity": ["Unknown value."]}})
    if "schema_version" in changes:
        changes["schema_version"] = _schema_version(dataset, changes["schema_version"])
    with transaction.atomic():
        dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
        before = snapshot(dataset, DATASET_FIELDS)
        if "name" in changes and Dataset.objects.exclude(pk=dataset.pk).filter(name=changes["name"]).exists():
            raise Conflict(f"A dataset named {changes['name']!r} already exists.")
        for field, value in changes.items():
            setattr(dataset, field, value)
        dataset.save()
        audit_record(actor=actor, action="dataset.updated", target=dataset, before=before,
                     after=snapshot(dataset, DATASET_FIELDS))
    return dataset


def _schema_version(dataset: Dataset, value) -> DatasetVersion | None:
    """The pinned schema version: a valid version of this dataset, or None."""
    if value in (None, ""):
        return None
    pk = value.pk if isinstance(value, DatasetVersion) else value
    version = DatasetVersion.objects.filter(pk=pk, dataset=dataset).first()
    if version is None or version.status != VersionStatus.VALID:
        raise ValidationFailed("The schema version must be a valid version of this dataset.",
                               details={"fields": {"schema_version": ["Not a valid version of this dataset."]}})
    return version


def latest_schema(dataset: Dataset) -> dict | None:
    """The schema of the dataset's newest valid version (what specs are checked against)."""
    version = dataset.versions.filter(status=VersionStatus.VALID).order_by("-version").only("schema").first()
    return version.schema if version is not None else None


def _column_names(schema: dict) -> list[str]:
    return [c["name"] for c in schema.get("columns", [])]


def _validated_spec(spec: dict, *, schema: dict | None, target: str) -> dict:
    try:
        return validate_feature_spec(spec=spec, schema=schema, target=target)
    except FeatureSpecError as exc:
        raise ValidationFailed(str(exc), code="invalid_feature_spec", details={"fields": exc.errors})


def dataset_feature_spec_set(*, dataset: Dataset, actor, spec: dict) -> Dataset:
    """Replace the dataset's feature spec, checked against its newest valid
    version's schema (when it has one). An empty spec means the defaults."""
    require_perm(actor, "datasets.change_dataset", dataset)
    normalised = _validated_spec(spec or {}, schema=latest_schema(dataset), target=dataset.target_column)
    if not spec:
        normalised = {}
    with transaction.atomic():
        dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
        before = dataset.feature_spec
        dataset.feature_spec = normalised
        dataset.save(update_fields=["feature_spec", "updated_at"])
        audit_record(actor=actor, action="dataset.feature_spec_changed", target=dataset,
                     before={"feature_spec": before}, after={"feature_spec": normalised})
    return dataset


