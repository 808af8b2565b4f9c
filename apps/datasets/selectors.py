"""Reads of the datasets app: visible datasets and versions, the version
file as a DataFrame, lineage and the overview card."""

from __future__ import annotations

import codecs

import pandas as pd
from django.db.models import Count, Max, OuterRef, Q, QuerySet, Subquery
from django.urls import reverse

from apps.core.errors import InvalidState, NotFound, ValidationFailed
from apps.core.lineage import reverse_related, split_visible
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

def _stage_words(model_version) -> str:
    """A model version's stage in words: "No stage" for a version outside every stage."""
    stage = getattr(model_version, "stage", "")
    if not stage or stage == "none":
        return "No stage"
    display = getattr(model_version, "get_stage_display", None)
    return str(display()) if display else str(stage).capitalize()


def dataset_version_lineage(*, version: DatasetVersion, user) -> dict:
    """What was derived from ``version``: runs (directly, or through a
    training job), model versions (registered from it or from those runs)
    and the deployments of those model versions. Each list holds what
    ``user`` may view; ``hidden`` counts the others, which are never named.
    Each list is empty until the app that owns it is installed."""
    lineage = {"dataset_version": {"id": version.pk, "dataset": version.dataset.name, "version": version.version},
               "parent": None, "children": [], "runs": [], "training_jobs": [], "model_versions": [],
               "deployments": [], "hidden": {"runs": 0, "model_versions": 0, "deployments": 0}}
    if version.parent_id:
        lineage["parent"] = {"id": version.parent_id, "version": version.parent.version}
    lineage["children"] = [
        {"id": child.pk, "version": child.version, "status": child.status}
        for child in version.children.order_by("version")
    ]
    Run = reverse_related(DatasetVersion, "runs")
    TrainingJob = reverse_related(DatasetVersion, "training_jobs")
    ModelVersion = reverse_related(DatasetVersion, "model_versions")
    all_runs = None
    if Run is not None:
        condition = Q(dataset_version=version)
        if TrainingJob is not None:
            condition |= Q(training_job__dataset_version=version)
        all_runs = Run.objects.filter(pk__in=Run.objects.filter(condition).values("pk"))
        runs, lineage["hidden"]["runs"] = split_visible(user, all_runs.select_related("experiment").order_by("-pk"))
        lineage["runs"] = [{"id": run.pk, "name": str(run), "status": run.status,
                            "experiment": run.experiment.name, "experiment_id": run.experiment_id} for run in runs]
    if TrainingJob is not None:
        jobs = filter_visible(user, TrainingJob.objects.filter(dataset_version=version), via="run__experiment")
        lineage["training_jobs"] = [{"id": job.pk, "status": job.status, "run_id": job.run_id}
                                    for job in jobs.order_by("-pk")[:200]]
    if ModelVersion is None:
        return lineage
    condition = Q(dataset_version=version)
    if all_runs is not None:
        condition |= Q(source_run__in=all_runs.values("pk"))
    all_versions = ModelVersion.objects.filter(pk__in=ModelVersion.objects.filter(condition).values("pk"))
    versions, lineage["hidden"]["model_versions"] = split_visible(
        user, all_versions.select_related("registered_model").order_by("-pk"))
    lineage["model_versions"] = [{"id": mv.pk, "model": mv.registered_model.name, "version": mv.version,
                                  "stage": getattr(mv, "stage", ""), "stage_label": _stage_words(mv),
                                  "source_run_id": mv.source_run_id}
                                 for mv in versions]
    Deployment = reverse_related(ModelVersion, "deployments")
    if Deployment is not None:
        visible_ids = [mv.pk for mv in versions]
        every = Deployment.objects.filter(model_version__in=all_versions.values("pk"))
        # Deployments of hidden model versions count as hidden too.
        shown, _ = split_visible(user, every.filter(model_version_id__in=visible_ids)
                                 .select_related("endpoint", "model_version__registered_model").order_by("-pk"))
        lineage["deployments"] = [{
            "id": d.pk, "model_version_id": d.model_version_id, "status": d.status, "name": str(d),
            "endpoint": d.endpoint.slug, "model": d.model_version.registered_model.name,
            "version": d.model_version.version, "traffic_weight": d.traffic_weight,
        } for d in shown]
        lineage["hidden"]["deployments"] = max(every.count() - len(shown), 0)
    return lineage


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
