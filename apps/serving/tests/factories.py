"""Model versions, endpoints and deployments for serving tests, built
directly: a small scikit-learn pipeline fitted on generated lab submissions
with the datasets app's feature spec compiler, saved with skops."""

from __future__ import annotations

import io
from functools import lru_cache

import pandas as pd
from django.db import transaction

from apps.core import modelio
from apps.core.permissions import grant_on_create
from apps.core.storage import store_file
from apps.datasets.features import build_preprocessor, default_feature_spec, input_signature
from apps.datasets.generator import generate_submissions
from apps.registry.choices import ModelTaskType, Stage
from apps.registry.models import ModelVersion, RegisteredModel
from apps.serving import services
from apps.serving.models import Deployment, Endpoint
from apps.serving.services.health import json_value

TARGET = "qc_pass"


def schema_for(frame: pd.DataFrame, *, target: str = TARGET) -> dict:
    """A schema in the datasets app's format, enough for the feature spec."""
    columns = []
    for name in frame.columns:
        series = frame[name]
        role = {"sample_id": "identifier", "submitted_at": "timestamp"}.get(name, "feature")
        if name in ("qc_pass", "turnaround_hours"):
            role = "target"
        if pd.api.types.is_bool_dtype(series):
            kind = "boolean"
        elif pd.api.types.is_integer_dtype(series):
            kind = "integer"
        elif pd.api.types.is_float_dtype(series):
            kind = "float"
        elif pd.api.types.is_datetime64_any_dtype(series):
            kind = "datetime"
        else:
            kind = "categorical"
        column = {"name": name, "type": kind, "role": role, "null_share": float(series.isna().mean())}
        if kind == "categorical":
            column["stats"] = {"counts": {str(k): int(v) for k, v in series.value_counts().items()}}
        columns.append(column)
    return {"columns": columns}


@lru_cache(maxsize=4)
def lab_frame(rows: int = 600, seed: int = 11) -> pd.DataFrame:
    return generate_submissions(rows=rows, seed=seed)


def json_records(frame: pd.DataFrame) -> list[dict]:
    """Frame rows as a client would send them (NaN → null, numpy → Python)."""
    return [{key: json_value(value) for key, value in row.items()} for row in frame.to_dict("records")]


def feature_spec(frame: pd.DataFrame) -> tuple[dict, dict]:
    schema = schema_for(frame)
    spec = default_feature_spec(schema=schema, target=TARGET)
    spec["columns"]["turnaround_hours"] = {"kind": "drop"}
    return spec, schema


def fit_pipeline(*, estimator: str = "logistic", rows: int = 600, seed: int = 11):
    """(fitted pipeline, signature, test records, test frame)."""
    from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.semi_supervised import LabelSpreading

    frame = lab_frame(rows, seed)
    spec, schema = feature_spec(frame)
    signature = input_signature(spec=spec, schema=schema, target=TARGET, task="classification")
    names = [i["name"] for i in signature["inputs"]]
    cut = int(len(frame) * 0.75)
    train, test = frame.iloc[:cut], frame.iloc[cut:]
    classifier = {
        "logistic": lambda: LogisticRegression(max_iter=2000),
        "forest": lambda: RandomForestClassifier(n_estimators=15, max_depth=6, random_state=0),
        "hist_gradient_boosting": lambda: HistGradientBoostingClassifier(max_iter=20, random_state=0),
        "gradient_boosting": lambda: GradientBoostingClassifier(n_estimators=30, max_depth=3, random_state=0),
        # skl2onnx has no converter for it: the model that must fall back to scikit-learn.
        "label_spreading": LabelSpreading,
    }[estimator]()
    pipeline = Pipeline([("preprocess", build_preprocessor(spec=spec, schema=schema, target=TARGET)),
                         ("classifier", classifier)])
    pipeline.fit(train[names], train[TARGET])
    return pipeline, signature, json_records(test[names]), test[names].reset_index(drop=True)


def fit_nan_intolerant_pipeline(rows: int = 600, seed: int = 11):
    """A model that passes its health check but fails on live traffic: no
    imputation, while its signature accepts missing measurements (nullable).
    A request with a null concentration then makes it fail."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    frame = lab_frame(rows, seed)
    numeric = ["concentration_ng_ul", "volume_ul", "a260_280", "days_in_storage", "freeze_thaw_cycles"]
    categorical = ["sample_type", "analysis_type"]
    data = frame.dropna(subset=numeric)
    pipeline = Pipeline([
        ("preprocess", ColumnTransformer([
            ("numeric", "passthrough", numeric),
            ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical),
        ])),
        ("classifier", LogisticRegression(max_iter=2000)),
    ]).fit(data[numeric + categorical], data[TARGET])
    signature = {
        "inputs": [*({"name": n, "type": "float", "nullable": True} for n in numeric),
                   *({"name": c, "type": "categorical", "nullable": False,
                      "categories": sorted(frame[c].dropna().unique().tolist())} for c in categorical)],
        "target": TARGET, "task": "classification",
    }
    return pipeline, signature, json_records(data[numeric + categorical].tail(50))


def make_model_version(*, owner, name: str = "sample-qc", stage: str = Stage.PRODUCTION, estimator: str = "logistic",
                       model=None, signature: dict | None = None, example: list | None = None,
                       rows: int = 600, seed: int = 11) -> ModelVersion:
    """Register a fitted pipeline as the next version of ``name`` in ``stage``."""
    if model is None:
        model, signature, records, _ = fit_pipeline(estimator=estimator, rows=rows, seed=seed)
        example = records[:5] if example is None else example
    data = modelio.dumps(model)
    with transaction.atomic():
        registered, created = RegisteredModel.objects.get_or_create(
            name=name, defaults={"owner": owner, "task_type": ModelTaskType.CLASSIFICATION})
        if created:
            grant_on_create(registered, owner=owner)
        registered = RegisteredModel.objects.select_for_update().get(pk=registered.pk)
        number = registered.latest_version + 1
        registered.latest_version = number
        registered.save(update_fields=["latest_version"])
        stored = store_file(io.BytesIO(data), f"tests/models/{name}/v{number}.skops")
        if stage == Stage.PRODUCTION:
            ModelVersion.objects.filter(registered_model=registered, stage=Stage.PRODUCTION).update(
                stage=Stage.ARCHIVED)
        return ModelVersion.objects.create(
            registered_model=registered, version=number, artifact=stored.name, sha256=stored.sha256,
            size_bytes=stored.size, signature=signature, input_example=example or [], stage=stage,
            created_by=owner)


def make_endpoint(*, owner, slug: str = "sample-qc", environment: str = "production", **config) -> Endpoint:
    return services.endpoint_create(actor=owner, slug=slug, name=slug, environment=environment,
                                    config=config or None)


def run_rollout(deployment: Deployment, *, max_ticks: int = 50) -> Deployment:
    """Drive the state machine synchronously (as the worker would), treating
    every tick as due, until the rollout leaves its active states or pauses."""
    from django.utils import timezone

    for _ in range(max_ticks):
        deployment.refresh_from_db()
        if not deployment.rollout_active or deployment.next_check_at is None:
            return deployment
        Deployment.objects.filter(pk=deployment.pk).update(next_check_at=timezone.now())
        services.rollout_tick(deployment_id=deployment.pk, seq=deployment.rollout_seq)
    deployment.refresh_from_db()
    return deployment


def deploy(*, endpoint: Endpoint, version: ModelVersion, actor, strategy: str = "immediate",
           config: dict | None = None, drive: bool = True) -> Deployment:
    deployment = services.deployment_start(endpoint=endpoint, model_version=version, strategy=strategy,
                                           config=config, actor=actor)
    if drive:
        tick_once(deployment)
    deployment.refresh_from_db()
    return deployment


def tick_once(deployment: Deployment) -> str:
    from django.utils import timezone

    deployment.refresh_from_db()
    Deployment.objects.filter(pk=deployment.pk).update(next_check_at=timezone.now())
    return services.rollout_tick(deployment_id=deployment.pk, seq=deployment.rollout_seq)


def backdate_step(deployment: Deployment, seconds: float) -> None:
    """Pretend the current step started ``seconds`` ago."""
    from datetime import timedelta

    deployment.refresh_from_db()
    Deployment.objects.filter(pk=deployment.pk).update(
        step_started_at=deployment.step_started_at - timedelta(seconds=seconds))


def live_weights(endpoint: Endpoint) -> dict[int, float]:
    """Traffic weight per model version number among the endpoint's live deployments."""
    return {d.model_version.version: d.traffic_weight
            for d in Deployment.objects.filter(endpoint=endpoint, status__in=("deploying", "healthy", "degraded"))
            .select_related("model_version")}


def log_requests(deployment: Deployment, n: int, *, status: int = 200, latency: float = 5.0) -> None:
    """``n`` prediction-log rows answered by ``deployment`` just now."""
    from django.utils import timezone

    from apps.serving.models import PredictionLog

    now = timezone.now()
    PredictionLog.objects.bulk_create([
        PredictionLog(endpoint_id=deployment.endpoint_id, deployment=deployment,
                      model_version_id=deployment.model_version_id, request_id=f"r{deployment.pk}-{i}-{status}",
                      latency_ms=latency, status_code=status, created_at=now) for i in range(n)])
