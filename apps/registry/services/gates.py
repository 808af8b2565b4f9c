"""Quality gates, evaluated when a promotion is requested and stored with the
request, one result per gate.

* ``metric_threshold``: a recorded evaluation metric against a threshold.
* ``valid_signature``: the signature parses, names exactly the columns the
  fitted model was trained on, and the model predicts its input example.
* ``valid_dataset``: the version was trained on a dataset version that passed
  validation.
* ``max_regression``: the candidate and the current Production version are
  both loaded and scored on the same rows — the candidate's test split
  (``evaluation/test_indices.json`` of its run) in its dataset version — and
  the candidate may be worse by at most the margin.

A gate that cannot be evaluated fails and says why; an Admin may still
override it with a written reason.
"""

from __future__ import annotations

import json

import pandas as pd

from apps.core.errors import ApplicationError
from apps.registry import quality
from apps.registry.choices import Stage
from apps.registry.models import ModelVersion
from apps.registry.services.versions import TEST_INDICES_PATH, model_version_load, read_run_artifact


def _error_text(exc: Exception) -> str:
    text = exc.message if isinstance(exc, ApplicationError) else str(exc)
    return f"{type(exc).__name__}: {text}"[:500]


def _load(version: ModelVersion):
    try:
        return model_version_load(version=version), None
    except Exception as exc:  # any failure to load is a failed gate, shown to the approver
        return None, _error_text(exc)


def _signature_gate(version: ModelVersion, model, load_error: str | None) -> dict:
    result = {"gate": "valid_signature"}
    problems = quality.signature_problems(version.signature)
    if problems:
        return {**result, "passed": False, "message": " ".join(problems)}
    if model is None:
        return {**result, "passed": False, "message": f"The model could not be loaded: {load_error}"}
    names = quality.signature_input_names(version.signature)
    features = getattr(model, "feature_names_in_", None)
    if features is not None:
        problems = quality.column_mismatch(names, [str(f) for f in features])
    elif getattr(model, "n_features_in_", len(names)) != len(names):
        problems = [f"The model expects {model.n_features_in_} inputs; the signature declares {len(names)}."]
    if problems:
        return {**result, "passed": False, "message": " ".join(problems)}
    if version.input_example:
        try:
            frame = pd.DataFrame(version.input_example)
            model.predict(frame[names])
        except Exception as exc:  # the example is the caller's data; any failure means the signature lies
            return {**result, "passed": False,
                    "message": f"The model cannot predict its input example: {_error_text(exc)}"}
    return {**result, "passed": True,
            "message": f"{len(names)} inputs, matching the model's columns"
                       + (" and predicting the input example." if version.input_example else ".")}


def _dataset_gate(version: ModelVersion) -> dict:
    result = {"gate": "valid_dataset"}
    dataset_version = version.dataset_version
    if dataset_version is None:
        return {**result, "passed": False, "message": "No dataset version is recorded for this version."}
    if not dataset_version.is_valid:
        return {**result, "passed": False, "dataset_version": dataset_version.pk,
                "message": f"{dataset_version} is {dataset_version.status}, not valid."}
    return {**result, "passed": True, "dataset_version": dataset_version.pk,
            "message": f"{dataset_version} passed validation."}


def evaluation_rows(version: ModelVersion) -> pd.DataFrame:
    """The rows a version was tested on: its test split in its dataset version."""
    from apps.datasets.selectors import dataset_version_read_frame

    if version.dataset_version is None:
        raise ValueError("the version has no dataset version")
    if version.source_run is None:
        raise ValueError("the version has no source run, so its test split is unknown")
    raw = read_run_artifact(version.source_run, TEST_INDICES_PATH)
    if raw is None:
        raise ValueError(f"its run has no {TEST_INDICES_PATH}")
    indices = json.loads(raw)
    if isinstance(indices, dict):
        indices = indices.get("indices", indices.get("test", []))
    if not isinstance(indices, list) or not indices or not all(isinstance(i, int) for i in indices):
        raise ValueError(f"{TEST_INDICES_PATH} is not a non-empty list of row positions")
    frame = dataset_version_read_frame(version=version.dataset_version)
    return frame.iloc[indices]


def _score(version: ModelVersion, model, rows: pd.DataFrame, metric: str, target: str) -> float:
    names = quality.signature_input_names(version.signature)
    missing = [c for c in names if c not in rows.columns]
    if missing:
        raise ValueError(f"v{version.version} needs columns missing from the evaluation rows: {', '.join(missing)}")
    return quality.score_estimator(model, metric, rows[names], rows[target].to_numpy())


def _regression_gate(version: ModelVersion, model, load_error: str | None, rule: dict) -> dict:
    metric, margin = rule["metric"], rule["margin"]
    result = {"gate": "max_regression", "metric": metric, "margin": margin}
    production = (ModelVersion.objects.filter(registered_model_id=version.registered_model_id, stage=Stage.PRODUCTION)
                  .exclude(pk=version.pk).first())
    if production is None:
        return {**result, "passed": True, "skipped": True,
                "message": "No Production version yet, so there is nothing to compare with."}
    result["production_version"] = production.version
    if model is None:
        return {**result, "passed": False, "message": f"The candidate could not be loaded: {load_error}"}
    target = version.signature.get("target") if isinstance(version.signature, dict) else None
    if not target:
        return {**result, "passed": False, "message": "The candidate's signature names no target column."}
    try:
        rows = evaluation_rows(version)
        rows = rows[rows[target].notna()]
    except Exception as exc:  # missing or unreadable evaluation data is a failed gate, not a crash
        return {**result, "passed": False,
                "message": f"The candidate's evaluation rows are not available: {_error_text(exc)}"}
    production_model, production_error = _load(production)
    if production_model is None:
        return {**result, "passed": False,
                "message": f"Production v{production.version} could not be loaded: {production_error}"}
    try:
        candidate_score = _score(version, model, rows, metric, target)
        production_score = _score(production, production_model, rows, metric, target)
    except Exception as exc:  # a model that cannot score these rows fails the gate with the reason
        return {**result, "passed": False, "message": f"Scoring failed: {_error_text(exc)}"}
    outcome = quality.regression_result(metric, candidate=candidate_score, production=production_score, margin=margin)
    return {**outcome, "production_version": production.version, "rows": len(rows),
            "dataset_version": version.dataset_version_id}


def quality_gates_evaluate(*, version: ModelVersion) -> tuple[list[dict], bool]:
    """Evaluate every configured gate for ``version`` now; returns the
    results (JSON-safe, one per gate) and whether all passed."""
    try:
        config = quality.normalize_gates(version.registered_model.quality_gates)
    except quality.GateConfigError as exc:
        results = [{"gate": "configuration", "passed": False, "message": str(exc)}]
        return results, False
    results = [quality.metric_threshold_result(version.metrics, rule) for rule in config["metrics"]]
    needs_model = config["require_valid_signature"] or config["max_regression"] is not None
    model, load_error = _load(version) if needs_model else (None, None)
    if config["require_valid_signature"]:
        results.append(_signature_gate(version, model, load_error))
    if config["require_valid_dataset"]:
        results.append(_dataset_gate(version))
    if config["max_regression"] is not None:
        results.append(_regression_gate(version, model, load_error, config["max_regression"]))
    return results, all(r["passed"] for r in results)
