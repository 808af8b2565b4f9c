"""Quality gates, evaluated when a promotion is requested, again whenever the
model's gates or holdout change, and again at approval; stored with the
request, one result per gate.

The evidence is the platform's own, never what the requester supplies:

* ``metric_threshold``: the candidate is loaded and scored by the platform on
  its holdout; the metric the run logged is shown beside it as
  ``reported_value`` (reported by the client) and never judged.
* ``valid_signature``: the signature parses, names exactly the columns the
  fitted model was trained on, and the model predicts its input example.
* ``valid_dataset``: the version was trained on a dataset version that passed
  validation.
* ``max_regression``: the candidate and the current Production version are
  both scored on the same platform holdout, and the candidate may be worse by
  at most the margin.

The platform's holdout (:func:`platform_holdout`) is, in order:

1. the registered model's evaluation dataset version, chosen by an Approver:
   every row with a value in its evaluation target;
2. when one of the platform's own training jobs trained the candidate, that
   job's test split, recomputed from the split the job recorded (dataset
   version, target, seed, sizes) — never from test indices the run stores,
   which its owner could have written;
3. otherwise none: a version uploaded directly, or logged by a client, cannot
   pass a metric gate until an Approver sets the evaluation dataset version.

A gate that cannot be evaluated fails and says why; an Admin may still
override it with a written reason.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import pandas as pd

from apps.core.errors import ApplicationError
from apps.registry import quality
from apps.registry.choices import Stage
from apps.registry.models import ModelVersion, RegisteredModel
from apps.registry.services.versions import model_version_load

NO_HOLDOUT = "no platform holdout: an Approver must set the model's evaluation dataset version"


class HoldoutUnavailable(ValueError):
    """The platform has no rows of its own to score this version on."""


@dataclass(frozen=True)
class Holdout:
    """Rows the platform chose, with their labels in ``target``."""

    rows: pd.DataFrame
    target: str
    source: str
    dataset_version_id: int


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


# --- The platform's holdout -------------------------------------------------------------

def _platform_job(version: ModelVersion):
    """The finished platform training job that trained ``version``, if any."""
    from apps.experiments.choices import JobStatus
    from apps.experiments.models import TrainingJob

    if version.source_run_id is None:
        return None
    return (TrainingJob.objects.filter(run_id=version.source_run_id, status=JobStatus.FINISHED)
            .select_related("dataset_version__dataset").first())


def platform_holdout(version: ModelVersion) -> Holdout:
    """The rows the platform scores ``version`` on (see the module docstring);
    raises :class:`HoldoutUnavailable` saying why there are none."""
    from apps.datasets.selectors import dataset_version_read_frame
    from apps.experiments.fitting import TrainingSpec, holdout_positions, target_labels

    model = version.registered_model
    if model.evaluation_dataset_version_id is not None:
        dataset_version = model.evaluation_dataset_version
        target = model.evaluation_target or dataset_version.dataset.target_column
        if not target:
            raise HoldoutUnavailable(f"the evaluation dataset version {dataset_version} names no target column")
        frame = dataset_version_read_frame(version=dataset_version)
        if target not in frame.columns:
            raise HoldoutUnavailable(f"the evaluation dataset version {dataset_version} has no column {target!r}")
        rows = frame[frame[target].notna()].copy()
        if rows.empty:
            raise HoldoutUnavailable(f"the evaluation dataset version {dataset_version} has no labelled rows")
        rows[target] = target_labels(rows[target], model.task_type)
        return Holdout(rows=rows, target=target, dataset_version_id=dataset_version.pk,
                       source=f"evaluation dataset version {dataset_version} ({len(rows)} rows)")
    job = _platform_job(version)
    if job is None:
        raise HoldoutUnavailable(NO_HOLDOUT)
    split = job.split or {}
    spec = TrainingSpec(task=job.task, estimator=job.estimator, hyperparameters={}, target=job.target_column,
                        feature_spec={}, schema={}, test_size=split.get("test_size", 0.2),
                        validation_size=split.get("validation_size", 0.1), seed=split.get("seed", 42),
                        stratify=split.get("stratify", True))
    frame = dataset_version_read_frame(version=job.dataset_version)
    rows = frame.iloc[holdout_positions(frame, spec)].copy()
    rows[job.target_column] = target_labels(rows[job.target_column], job.task)
    return Holdout(rows=rows, target=job.target_column, dataset_version_id=job.dataset_version_id,
                   source=f"test split of {job.dataset_version} made by training job {job.pk} ({len(rows)} rows)")


def evaluation_rows(version: ModelVersion) -> pd.DataFrame:
    """The rows of the platform's holdout for ``version`` (serving verifies a
    deployment on them); raises when there are none."""
    return platform_holdout(version).rows


def _input_names(version: ModelVersion, model) -> list[str]:
    features = getattr(model, "feature_names_in_", None)
    if features is not None:
        return [str(f) for f in features]
    return quality.signature_input_names(version.signature)


def _score(version: ModelVersion, model, holdout: Holdout, metric: str) -> float:
    names = _input_names(version, model)
    missing = [c for c in names if c not in holdout.rows.columns]
    if missing:
        raise ValueError(f"v{version.version} needs columns missing from the holdout: {', '.join(missing)}")
    return quality.score_estimator(model, metric, holdout.rows[names], holdout.rows[holdout.target].to_numpy())


class _Evidence:
    """The holdout and the candidate's scores on it, each computed once per
    evaluation and only when a gate needs them."""

    def __init__(self, version: ModelVersion, model, load_error: str | None):
        self.version, self.model, self.load_error = version, model, load_error
        self._holdout: Holdout | None = None
        self._holdout_error: str | None = None
        self._scores: dict[str, float] = {}

    def holdout(self) -> Holdout:
        if self._holdout is None and self._holdout_error is None:
            try:
                self._holdout = platform_holdout(self.version)
            except HoldoutUnavailable as exc:
                self._holdout_error = str(exc)
            except Exception as exc:  # unreadable data is a failed gate with the reason, not a crash
                self._holdout_error = f"the platform's holdout could not be read: {_error_text(exc)}"
        if self._holdout is None:
            raise HoldoutUnavailable(self._holdout_error)
        return self._holdout

    def score(self, metric: str) -> float:
        name = quality.base_metric(metric)
        if name not in self._scores:
            self._scores[name] = _score(self.version, self.model, self.holdout(), metric)
        return self._scores[name]


def _threshold_gate(evidence: _Evidence, rule: dict) -> dict:
    reported = quality.lookup_metric(evidence.version.metrics, rule["metric"])
    result = {"gate": "metric_threshold", "metric": rule["metric"], "op": rule["op"], "threshold": rule["threshold"],
              "value": None, "reported_value": reported}
    if evidence.model is None:
        return {**result, "passed": False, "message": f"The candidate could not be loaded: {evidence.load_error}"}
    try:
        holdout = evidence.holdout()
        value = evidence.score(rule["metric"])
    except HoldoutUnavailable as exc:
        return {**result, "passed": False, "message": f"{rule['metric']} cannot be judged: {exc}."}
    except Exception as exc:  # a model that cannot score the holdout fails the gate with the reason
        return {**result, "passed": False, "message": f"Scoring failed: {_error_text(exc)}"}
    return {**quality.metric_threshold_result(rule, value=value, reported=reported),
            "holdout": holdout.source, "dataset_version": holdout.dataset_version_id}


def _production(version: ModelVersion) -> ModelVersion | None:
    return (ModelVersion.objects.filter(registered_model_id=version.registered_model_id, stage=Stage.PRODUCTION)
            .exclude(pk=version.pk).first())


def _regression_gate(evidence: _Evidence, rule: dict) -> dict:
    version = evidence.version
    metric, margin = rule["metric"], rule["margin"]
    result = {"gate": "max_regression", "metric": metric, "margin": margin}
    production = _production(version)
    if production is None:
        return {**result, "passed": True, "skipped": True,
                "message": "No Production version yet, so there is nothing to compare with."}
    result["production_version"] = production.version
    if evidence.model is None:
        return {**result, "passed": False, "message": f"The candidate could not be loaded: {evidence.load_error}"}
    try:
        holdout = evidence.holdout()
    except HoldoutUnavailable as exc:
        return {**result, "passed": False, "message": f"The candidate cannot be compared: {exc}."}
    production_model, production_error = _load(production)
    if production_model is None:
        return {**result, "passed": False,
                "message": f"Production v{production.version} could not be loaded: {production_error}"}
    try:
        candidate_score = evidence.score(metric)
        production_score = _score(production, production_model, holdout, metric)
    except Exception as exc:  # a model that cannot score these rows fails the gate with the reason
        return {**result, "passed": False, "message": f"Scoring failed: {_error_text(exc)}"}
    outcome = quality.regression_result(metric, candidate=candidate_score, production=production_score, margin=margin)
    return {**outcome, "production_version": production.version, "rows": len(holdout.rows),
            "holdout": holdout.source, "dataset_version": holdout.dataset_version_id}


def gates_fingerprint(model: RegisteredModel) -> str:
    """What a gate evaluation of ``model``'s versions depends on besides the
    version itself: the gates, the holdout setting and the Production
    version. Results whose fingerprint differs are stale."""
    production = (ModelVersion.objects.filter(registered_model_id=model.pk, stage=Stage.PRODUCTION)
                  .values_list("pk", flat=True).first())
    payload = {"gates": model.quality_gates, "evaluation_dataset_version": model.evaluation_dataset_version_id,
               "evaluation_target": model.evaluation_target, "production": production}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class GateEvaluation:
    results: list[dict]
    passed: bool
    fingerprint: str


def quality_gates_evaluate(*, version: ModelVersion) -> GateEvaluation:
    """Evaluate every configured gate for ``version`` now, against the model's
    current settings (re-read, so that a caller's stale copy cannot weaken
    them); returns the results (JSON-safe, one per gate), whether all passed,
    and the fingerprint of what they were computed under."""
    model = RegisteredModel.objects.select_related("evaluation_dataset_version__dataset").get(
        pk=version.registered_model_id)
    version.registered_model = model
    fingerprint = gates_fingerprint(model)
    try:
        config = quality.normalize_gates(model.quality_gates)
    except quality.GateConfigError as exc:
        return GateEvaluation([{"gate": "configuration", "passed": False, "message": str(exc)}], False, fingerprint)
    needs_model = bool(config["metrics"]) or config["require_valid_signature"] or config["max_regression"] is not None
    model_obj, load_error = _load(version) if needs_model else (None, None)
    evidence = _Evidence(version, model_obj, load_error)
    results = [_threshold_gate(evidence, rule) for rule in config["metrics"]]
    if config["require_valid_signature"]:
        results.append(_signature_gate(version, model_obj, load_error))
    if config["require_valid_dataset"]:
        results.append(_dataset_gate(version))
    if config["max_regression"] is not None:
        results.append(_regression_gate(evidence, config["max_regression"]))
    return GateEvaluation(results, all(r["passed"] for r in results), fingerprint)
