"""Reads of the datasets app: visible datasets and versions, the version
file as a DataFrame, lineage and the overview card."""

from __future__ import annotations

import codecs

import pandas as pd
from django.db.models import Count, Max, OuterRef, Q, QuerySet, Subquery
from django.urls import reverse

from apps.core import lineage
from apps.core.errors import InvalidState, NotFound, ValidationFailed
from apps.core.permissions import filter_visible, has_perm
from apps.core.storage import open_artifact
from apps.datasets import fileformats
from apps.datasets.choices import VersionStatus
from apps.datasets.models import Dataset, DatasetVersion, Expectation

# --- Datasets and versions ----------------------------------------------------------

def dataset_list(*, user) -> QuerySet[Dataset]:
    """Datasets the user may see, with their version count and latest version number."""
    latest = DatasetVersion.objects.filter(dataset=OuterRef("pk")).order_by("-version")
    return (
        filter_visible(user, Dataset.objects.all())
        .select_related("owner")
        .annotate(
            version_count=Count("versions", distinct=True),
            latest_version=Max("versions__version"),
            latest_status=Subquery(latest.values("status")[:1]),
            latest_quality=Subquery(latest.values("quality_score")[:1]),
        )
        .order_by("name")
    )


def dataset_get(*, user, pk) -> Dataset:
    """The dataset, or NotFound when it does not exist or is not visible."""
    dataset = Dataset.objects.select_related("owner").filter(pk=pk).first()
    if dataset is None or not has_perm(user, "datasets.view_dataset", dataset):
        raise NotFound("Dataset not found.")
    return dataset


def dataset_version_list(*, user, dataset: Dataset | None = None) -> QuerySet[DatasetVersion]:
    """Versions the user may see (through their dataset), newest first."""
    queryset = DatasetVersion.objects.select_related("dataset", "created_by", "parent")
    if dataset is not None:
        queryset = queryset.filter(dataset=dataset)
    return filter_visible(user, queryset, "datasets.view_dataset", via="dataset").order_by("dataset__name",
                                                                                          "-version")


def dataset_version_get(*, user, pk) -> DatasetVersion:
    version = DatasetVersion.objects.select_related("dataset", "created_by", "parent").filter(pk=pk).first()
    if version is None or not has_perm(user, "datasets.view_dataset", version.dataset):
        raise NotFound("Dataset version not found.")
    return version


def expectation_list(*, dataset: Dataset) -> QuerySet[Expectation]:
    return Expectation.objects.filter(dataset=dataset).select_related("created_by").order_by("id")


def dataset_version_expectations(*, version: DatasetVersion) -> list[dict]:
    return [e.as_rule() for e in expectation_list(dataset=version.dataset)]


# --- Reading the file ---------------------------------------------------------------

def _head(version: DatasetVersion) -> bytes:
    with open_artifact(version.file) as handle:
        return handle.read(fileformats.HEAD_BYTES)


def dataset_version_sniffed(*, version: DatasetVersion, from_file: bool = False) -> fileformats.Sniffed:
    """How to read the version's file: format, encoding, delimiter and header.
    Taken from the version when it recorded them (unless ``from_file``);
    sniffed from the file otherwise."""
    schema_columns = [] if from_file else [c["name"] for c in (version.schema or {}).get("columns", [])]
    options = version.read_options or {}
    if options and version.file_format != "parquet":
        if schema_columns:
            return fileformats.Sniffed.from_read_options(file_format=version.file_format, columns=schema_columns,
                                                         options=options)
        return _sniff_stored(version, options)
    if version.file_format == "parquet":
        if schema_columns:
            names = schema_columns
        else:
            with open_artifact(version.file) as handle:
                import pyarrow.parquet as pq

                names = list(pq.ParquetFile(handle).schema_arrow.names)
        # Types chosen at upload apply to Parquet columns too.
        return fileformats.Sniffed(file_format="parquet", columns=names,
                                   column_types=dict(options.get("column_types") or {}))
    if version.delimiter and version.encoding and schema_columns:
        return fileformats.Sniffed(file_format=version.file_format, encoding=version.encoding,
                                   delimiter=version.delimiter, columns=schema_columns)
    head = _head(version)
    utf8_valid = True
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head)
    except UnicodeDecodeError:
        utf8_valid = False
    sniffed = fileformats.sniff("", file_format=version.file_format, head=head, utf8_valid=utf8_valid,
                                size=version.size_bytes)
    if version.encoding:
        sniffed.encoding = version.encoding
    return sniffed


def _sniff_stored(version: DatasetVersion, options: dict) -> fileformats.Sniffed:
    """Sniff the stored file again with the options recorded at upload (the
    detected values included), so a re-read cannot pick another reading."""
    head = _head(version)
    utf8_valid = True
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head)
    except UnicodeDecodeError:
        utf8_valid = False
    wanted = {k: v for k, v in options.items() if k in fileformats.OPTION_NAMES}
    if version.file_format == "xlsx":
        wanted.pop("encoding", None)
        wanted.pop("delimiter", None)
    if version.file_format == "xlsx":
        with open_artifact(version.file) as handle:
            sniffed = fileformats.sniff(handle, file_format="xlsx", head=head, utf8_valid=utf8_valid,
                                        size=version.size_bytes, options=wanted)
    else:
        sniffed = fileformats.sniff("", file_format=version.file_format, head=head, utf8_valid=utf8_valid,
                                    size=version.size_bytes, options=wanted)
    sniffed.overridden = list(options.get("overridden") or [])
    sniffed.decimal_by_column = dict(options.get("decimal_by_column") or {})
    return sniffed


def dataset_version_column_types(*, version: DatasetVersion) -> dict[str, str]:
    """Column name → schema type; inferred from the file (one profiling pass)
    for a version that has no schema yet."""
    if version.schema and version.schema.get("columns"):
        return {c["name"]: c["type"] for c in version.schema["columns"]}
    from apps.datasets.profiling import Profiler

    sniffed = dataset_version_sniffed(version=version)
    profiler = Profiler(sniffed.columns, block_rows=10**9)
    with open_artifact(version.file) as handle:
        for batch, _ in fileformats.iter_batches(handle, sniffed=sniffed, bad_rows=fileformats.BadRows()):
            profiler.add_batch(batch)
    return profiler.infer_types()


def dataset_version_read_frame(*, version: DatasetVersion, columns: list[str] | None = None,
                               nrows: int | None = None) -> pd.DataFrame:
    """The version's file as a pandas DataFrame, with the dtypes its schema implies.

    CSV, TSV and Parquet are read with the encoding and delimiter detected on
    upload, through the same parser the validation used, so a value is
    missing, a number or a date here exactly when the schema says so:

    * integer → ``int64`` (``float64`` when the rows read have missing values),
    * float → ``float64``, boolean → pandas ``boolean``,
    * datetime → ``datetime64`` (UTC when the file has offsets),
    * categorical and text → pandas ``str`` (missing values are NaN).

    ``columns`` selects and orders columns (ValidationFailed for unknown
    ones); ``nrows`` reads only the first rows. Rows whose field count differs
    from the header (which make a version invalid) are skipped. Access
    control is the caller's business: this is the internal reader training
    jobs, quality gates and drift checks use.
    """
    if not version.file:
        raise InvalidState(f"{version} has no stored file.")
    sniffed = dataset_version_sniffed(version=version)
    types = dataset_version_column_types(version=version)
    if columns is not None:
        columns = list(columns)
        unknown = [c for c in columns if c not in sniffed.columns]
        if unknown:
            raise ValidationFailed(f"{version} has no column(s) {', '.join(repr(c) for c in unknown)}.",
                                   details={"unknown_columns": unknown, "columns": sniffed.columns})
    if nrows is not None and nrows < 0:
        raise ValidationFailed("nrows must not be negative.")
    with open_artifact(version.file) as handle:
        return fileformats.read_frame(handle, sniffed=sniffed, column_types=types, columns=columns, nrows=nrows,
                                      total_bytes=version.size_bytes)


# --- Lineage ------------------------------------------------------------------------

# The keys of each list in the lineage answer (the API's shape), taken from
# the descriptions the providing apps give (apps.core.lineage).
_MODEL_VERSION_KEYS = ("id", "model", "version", "stage", "stage_label", "source_run_id")
_DEPLOYMENT_KEYS = ("id", "model_version_id", "status", "name", "endpoint", "model", "version", "traffic_weight")


def _pick(row: dict, keys: tuple[str, ...]) -> dict:
    return {key: row[key] for key in keys}


def dataset_version_lineage(*, version: DatasetVersion, user) -> dict:
    """What was derived from ``version``: runs (directly, or through a
    training job), model versions (registered from it or from those runs)
    and the deployments of those model versions. Each list holds what
    ``user`` may view; ``hidden`` counts the others, which are never named.
    Each list is empty until an installed app provides it (its lineage
    provider, see ``apps.core.lineage``)."""
    result = {"dataset_version": {"id": version.pk, "dataset": version.dataset.name, "version": version.version},
              "parent": None, "children": [], "runs": [], "training_jobs": [], "model_versions": [],
              "deployments": [], "hidden": {"runs": 0, "model_versions": 0, "deployments": 0}}
    if version.parent_id:
        result["parent"] = {"id": version.parent_id, "version": version.parent.version}
    result["children"] = [
        {"id": child.pk, "version": child.version, "status": child.status}
        for child in version.children.order_by("version")
    ]
    runs = lineage.link(DatasetVersion, "runs")
    if runs is not None:
        shown, result["hidden"]["runs"] = runs.split(user, runs.of(version))
        result["runs"] = [runs.describe(run) for run in shown]
    jobs = lineage.link(DatasetVersion, "training_jobs")
    if jobs is not None:
        result["training_jobs"] = [jobs.describe(job) for job in jobs.visible(user, jobs.of(version))[:200]]
    model_versions = lineage.link(DatasetVersion, "model_versions")
    if model_versions is None:
        return result
    every_version = model_versions.of(version)
    shown, result["hidden"]["model_versions"] = model_versions.split(user, every_version)
    result["model_versions"] = [_pick(model_versions.describe(mv), _MODEL_VERSION_KEYS) for mv in shown]
    deployments = lineage.link(every_version.model, "deployments")
    if deployments is not None:
        # Deployments of hidden model versions count as hidden too.
        visible_versions = every_version.filter(pk__in=[mv.pk for mv in shown])
        shown_deployments, _ = deployments.split(user, deployments.of(visible_versions))
        result["deployments"] = [_pick(deployments.describe(d), _DEPLOYMENT_KEYS) for d in shown_deployments]
        result["hidden"]["deployments"] = max(deployments.of(every_version).count() - len(shown_deployments), 0)
    return result


# --- Overview -----------------------------------------------------------------------

def overview_card(*, user) -> dict | None:
    """The datasets card of the dashboard overview, or None without access."""
    if not has_perm(user, "datasets.view_dataset"):
        return None
    datasets = filter_visible(user, Dataset.objects.all())
    versions = DatasetVersion.objects.filter(dataset__in=datasets.values("pk"))
    counts = versions.aggregate(
        total=Count("pk"),
        valid=Count("pk", filter=Q(status=VersionStatus.VALID)),
        invalid=Count("pk", filter=Q(status=VersionStatus.INVALID)),
        busy=Count("pk", filter=Q(status__in=[VersionStatus.PENDING, VersionStatus.VALIDATING])),
    )
    return {
        "title": "Datasets",
        "url": reverse("datasets:list"),
        "stats": [
            ("Datasets", datasets.count()),
            ("Valid versions", counts["valid"]),
            ("Invalid versions", counts["invalid"]),
            ("Being validated", counts["busy"]),
        ],
    }


# --- Feature spec -------------------------------------------------------------------

def dataset_latest_valid_version(*, dataset: Dataset) -> DatasetVersion | None:
    return dataset.versions.filter(status=VersionStatus.VALID).order_by("-version").first()


def dataset_feature_spec_summary(*, dataset: Dataset) -> dict:
    """The stored spec and what it compiles to against the newest valid
    version: the effective per-column kinds, the input columns and the
    signature a model trained now would have (or the reason it cannot compile)."""
    from apps.datasets import features

    version = dataset_latest_valid_version(dataset=dataset)
    summary = {"spec": dataset.feature_spec or {}, "effective": None, "feature_columns": [], "signature": None,
               "schema_version": version.version if version else None, "error": "", "columns": []}
    if version is None or not version.schema:
        summary["error"] = "No valid version yet: the spec is checked once a version is valid."
        return summary
    target = dataset.target_column
    spec = dataset.feature_spec or {}
    try:
        effective = features.default_feature_spec(schema=version.schema, target=target)
        effective["numeric"].update(spec.get("numeric", {}))
        effective["categorical"].update(spec.get("categorical", {}))
        effective["columns"].update(spec.get("columns", {}))
        summary["effective"] = effective
        summary["columns"] = features.spec_columns_summary(spec=spec, schema=version.schema, target=target)
        summary["feature_columns"] = features.feature_columns(spec=spec, schema=version.schema, target=target)
        task = dataset.task_hint if dataset.task_hint != "unspecified" else "classification"
        summary["signature"] = features.input_signature(spec=spec, schema=version.schema, target=target, task=task)
    except features.FeatureSpecError as exc:
        summary["error"] = str(exc)
    return summary
