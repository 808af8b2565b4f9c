"""Build the registry's upstream objects directly: a dataset version with a
real stored CSV, a finished run with a fitted skops pipeline and the
well-known artifacts a training job writes (model, signature, input example,
test indices) and its evaluation metrics."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
from django.db import transaction
from django.utils import timezone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from apps.core import modelio
from apps.core.permissions import grant_on_create
from apps.core.storage import store_file
from apps.registry import quality

FEATURES = ["concentration_ng_ul", "a260_280", "din", "freeze_thaw_cycles"]
TARGET = "qc_pass"


def sample_frame(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    """Sample-QC-like rows whose label really depends on the features."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "concentration_ng_ul": rng.lognormal(3.0, 0.6, rows).round(2),
        "a260_280": rng.normal(1.85, 0.12, rows).round(3),
        "din": rng.uniform(2.0, 9.5, rows).round(1),
        "freeze_thaw_cycles": rng.integers(0, 5, rows),
    })
    logit = (0.08 * (frame["concentration_ng_ul"] - 20) + 0.9 * (frame["din"] - 5)
             - 0.6 * frame["freeze_thaw_cycles"] - 8 * (frame["a260_280"] - 1.85).abs() + 1.2)
    frame[TARGET] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


def make_dataset_version(owner, *, frame: pd.DataFrame | None = None, status: str = "valid", name: str = "submissions"):
    from apps.datasets.models import Dataset, DatasetVersion

    frame = sample_frame() if frame is None else frame
    data = frame.to_csv(index=False).encode()
    with transaction.atomic():
        dataset, created = Dataset.objects.get_or_create(
            name=name, defaults={"owner": owner, "target_column": TARGET, "task_hint": "classification"})
        if created:
            grant_on_create(dataset, owner=owner)
        stored = store_file(io.BytesIO(data), f"datasets/{name}/test-{modelio.sha256_bytes(data)[:12]}.csv")
        number = (dataset.versions.order_by("-version").values_list("version", flat=True).first() or 0) + 1
        return DatasetVersion.objects.create(
            dataset=dataset, version=number, file=stored.name, original_filename="submissions.csv",
            file_format="csv", encoding="utf-8", sha256=stored.sha256, size_bytes=stored.size,
            row_count=len(frame), column_count=len(frame.columns), status=status, created_by=owner,
            validated_at=timezone.now() if status == "valid" else None,
        )


def fit_pipeline(frame: pd.DataFrame, *, C: float = 1.0, features=FEATURES, seed: int = 0) -> Pipeline:
    model = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(C=C, max_iter=500, random_state=seed))])
    model.fit(frame[list(features)], frame[TARGET])
    return model


def poor_pipeline(frame: pd.DataFrame, *, seed: int = 0) -> Pipeline:
    """A model worse than chance: fitted on flipped labels, so it ranks
    passing samples below failing ones (ROC AUC well under 0.5)."""
    flipped = frame.copy()
    flipped[TARGET] = 1 - flipped[TARGET]
    return fit_pipeline(flipped, seed=seed)


def split_indices(rows: int, *, seed: int = 0, test_share: float = 0.25) -> tuple[list[int], list[int]]:
    order = np.random.default_rng(seed).permutation(rows)
    cut = int(rows * (1 - test_share))
    return sorted(order[:cut].tolist()), sorted(order[cut:].tolist())


def signature_for(features=FEATURES) -> dict:
    return {"inputs": [{"name": f, "type": "float", "nullable": False} for f in features],
            "target": TARGET, "task": "classification", "classes": [0, 1]}


def _store_artifact(run, path: str, data: bytes, content_type: str):
    from apps.experiments.models import Artifact

    stored = store_file(io.BytesIO(data), f"runs/{run.pk}/{path}")
    return Artifact.objects.create(run=run, path=path, file=stored.name, size_bytes=stored.size,
                                   sha256=stored.sha256, content_type=content_type)


SPLIT = {"test_size": 0.25, "validation_size": 0.0, "stratify": True}


def platform_split(frame: pd.DataFrame, *, seed: int = 0) -> tuple[list[int], list[int]]:
    """(train, test) row positions as a platform training job with ``SPLIT``
    and ``seed`` makes them (the registry recomputes the test rows)."""
    from apps.experiments.fitting import TrainingSpec, holdout_positions

    spec = TrainingSpec(task="classification", estimator="logistic_regression", hyperparameters={}, target=TARGET,
                        feature_spec={}, schema={}, seed=seed, **SPLIT)
    test = sorted(int(p) for p in holdout_positions(frame, spec))
    chosen = set(test)
    return [p for p in range(len(frame)) if p not in chosen], test


def make_run(user, *, dataset_version, frame: pd.DataFrame, model=None, C: float = 1.0, features=FEATURES,
             signature: dict | None = None, status: str = "finished", experiment_name: str = "sample-qc",
             seed: int = 0, metrics: dict | None = None, with_test_indices: bool = True,
             model_bytes: bytes | None = None, platform_job: bool = True):
    """A finished run as a training job leaves it, trained on ``frame`` (the
    content of ``dataset_version``), with its finished job recording the split
    (``platform_job``; without it, a run a client logged by itself). Metrics
    are computed on the test split unless given."""
    from apps.experiments.models import Experiment, LatestMetric, Run, TrainingJob

    train, test = platform_split(frame, seed=seed) if platform_job else split_indices(len(frame), seed=seed)
    if model is None and model_bytes is None:
        model = fit_pipeline(frame.iloc[train], C=C, features=features, seed=seed)
    now = timezone.now()
    with transaction.atomic():
        experiment, created = Experiment.objects.get_or_create(name=experiment_name, defaults={"owner": user})
        if created:
            grant_on_create(experiment, owner=user)
        run = Run.objects.create(experiment=experiment, name=f"logreg C={C}", status=status, user=user,
                                 dataset_version=dataset_version, start_time=now, end_time=now)
        if platform_job:
            TrainingJob.objects.create(run=run, dataset_version=dataset_version, target_column=TARGET,
                                       task="classification", estimator="logistic_regression",
                                       split={**SPLIT, "seed": seed}, status="finished", created_by=user,
                                       started_at=now, finished_at=now, progress=1.0)
        data = model_bytes if model_bytes is not None else modelio.dumps(model)
        _store_artifact(run, "model/model.skops", data, "application/octet-stream")
        sig = signature if signature is not None else signature_for(features)
        _store_artifact(run, "model/signature.json", json.dumps(sig).encode(), "application/json")
        example = frame.iloc[test[:3]][list(features)].to_dict(orient="records")
        _store_artifact(run, "model/input_example.json", json.dumps(example).encode(), "application/json")
        if with_test_indices:
            _store_artifact(run, "evaluation/test_indices.json", json.dumps(test).encode(), "application/json")
        if metrics is None and model is not None:
            rows = frame.iloc[test]
            metrics = {f"test_{name}": quality.score_estimator(model, name, rows[list(features)], rows[TARGET])
                       for name in ("accuracy", "f1", "roc_auc", "log_loss")}
        for key, value in (metrics or {}).items():
            LatestMetric.objects.create(run=run, key=key, value=value, step=0, timestamp=now)
    return run


def make_model(owner, *, name: str = "sample-qc", gates: dict | None = None, **kwargs):
    from apps.registry.services import registered_model_create

    return registered_model_create(actor=owner, name=name, task_type="classification",
                                   quality_gates=gates or {}, **kwargs)
