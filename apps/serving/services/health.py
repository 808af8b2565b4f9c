"""Health of deployments.

The deploy-time health check (``deployment_health_check``): before a
deployment gets any traffic its model must load with a matching SHA-256, be
compiled (ONNX where it converts exactly, see ``apps.serving.compiler``), and
answer smoke predictions on the version's input example within the latency
budget, through the very code the web processes will use.

The live health check (``deployments_check_health``, each minute): a serving
deployment whose live numbers break its thresholds is marked degraded, and
healthy again when they recover."""

from __future__ import annotations

import io
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from apps.core import modelio
from apps.core.services import snapshot
from apps.core.storage import open_artifact, store_file
from apps.serving.choices import DeploymentStatus, RolloutState, ServingPath
from apps.serving.compiler import (
    DEFAULT_TOLERANCE,
    compile_model,
    paths_difference,
    reference_outputs,
    sklearn_path_difference,
)
from apps.serving.models import Deployment
from apps.serving.policy import judge
from apps.serving.predictors import OnnxPredictor, SklearnPredictor, model_input_names
from apps.serving.runtime import bump_routing_stamp
from apps.serving.services._transition import DEPLOYMENT_AUDIT_FIELDS, HEALTH_WINDOW, _lock, _record, _save
from apps.serving.signature import CompiledSignature, InstanceError, SignatureError

logger = logging.getLogger(__name__)

# Enough rows to catch a mismatch, few enough to keep the check quick.
MAX_VERIFICATION_ROWS = 2000
SMOKE_ROUNDS = 3


@dataclass
class HealthResult:
    ok: bool
    health: dict
    serving_path: str = ""
    serving_path_reason: str = ""
    compiled_artifact: str = ""
    compiled_sha256: str = ""
    errors: list = field(default_factory=list)


def json_value(value):
    """A frame cell as a JSON client would send it: numpy scalars as Python
    ones, NaN/NaT as null, timestamps as ISO 8601."""
    import pandas as pd

    if value is None or value is pd.NaT:
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _json_record(record: dict) -> dict:
    """A frame row as the predict path would receive it."""
    return {str(key): json_value(value) for key, value in record.items()}


def verification_rows(version, model, signature: CompiledSignature, task: str):
    """(records, frame, source): the version's test split when its lineage
    has one, else its input example."""
    import pandas as pd

    names = model_input_names(model, signature)
    try:
        from apps.registry.services import evaluation_rows

        frame = evaluation_rows(version)
        frame = frame[names].head(MAX_VERIFICATION_ROWS).reset_index(drop=True)
        source = f"test split of {version.dataset_version} ({len(frame)} rows)"
    except Exception as exc:  # no lineage (an uploaded model) or unreadable data: fall back, and say so
        example = version.input_example or []
        if not example:
            return [], None, f"no test rows ({exc}) and no input example"
        records = [_json_record(r) for r in example]
        columns = signature.columns(records)
        frame = SklearnPredictor(model, signature=signature, task=task).frame(columns, len(records))
        return records, frame, f"input example ({len(records)} rows; no test split: {exc})"
    records = [_json_record(r) for r in frame.to_dict("records")]
    return records, pd.DataFrame(frame), source


def deployment_health_check(*, deployment: Deployment) -> HealthResult:
    """Load, compile, verify and smoke-test ``deployment``'s version. Never
    raises for a bad model: the result says what failed."""
    version = deployment.model_version
    config = deployment.config or {}
    budget = float(config.get("latency_budget_ms", 500))
    health: dict = {"ok": False, "checked_at": timezone.now().isoformat(), "latency_budget_ms": budget,
                    "errors": []}
    result = HealthResult(ok=False, health=health)
    task = (version.signature or {}).get("task") or "classification"

    def fail(message: str) -> HealthResult:
        health["errors"].append(message)
        return result

    started = time.perf_counter()
    try:
        with open_artifact(version.artifact) as handle:
            data = handle.read()
        model = modelio.loads(data, expected_sha256=version.sha256)
    except modelio.ModelFileError as exc:
        return fail(f"model file refused: {exc.message}")
    except OSError as exc:
        return fail(f"model file unreadable: {exc}")
    health["load_ms"] = (time.perf_counter() - started) * 1000
    health["sha256_ok"] = True
    try:
        signature = CompiledSignature(version.signature)
        model_input_names(model, signature)
    except (SignatureError, ValueError) as exc:
        return fail(f"signature: {exc}")

    try:
        records, frame, source = verification_rows(version, model, signature, task)
    except InstanceError as exc:
        return fail(f"the verification rows do not fit the signature: {exc.message}")
    health["verification"] = {"source": source, "rows": len(records)}
    if records:
        try:
            reference = reference_outputs(model, frame, task)
            outcome = compile_model(model=model, signature=version.signature, records=records,
                                    reference=reference, task=task)
            health["sklearn_path_max_abs_diff"] = sklearn_path_difference(
                model=model, signature=version.signature, records=records, reference=reference, task=task)
        except Exception as exc:  # the model cannot even predict its own test rows
            return fail(f"predicting the verification rows failed: {type(exc).__name__}: {exc}"[:500])
    else:
        outcome = compile_model(model=model, signature=version.signature, records=[], reference=None, task=task)
    health["compile"] = outcome.as_dict()

    if outcome.serving_path == ServingPath.ONNX:
        stored = store_file(io.BytesIO(outcome.onnx_bytes), f"serving/deployments/{deployment.pk}/model.onnx")
        result.compiled_artifact, result.compiled_sha256 = stored.name, stored.sha256
        with open_artifact(stored.name) as handle:
            predictor = OnnxPredictor(handle.read())
    else:
        predictor = SklearnPredictor(model, signature=signature, task=task)
    result.serving_path = predictor.serving_path
    result.serving_path_reason = outcome.reason
    health["serving_path"] = predictor.serving_path
    if predictor.serving_path == ServingPath.ONNX:
        # The stored file is what the runtime serves; scikit-learn is what
        # answers if it cannot (and what was approved). They must agree.
        try:
            diff = paths_difference(first=predictor, second=SklearnPredictor(model, signature=signature, task=task),
                                    records=records, signature=signature, task=task)
        except Exception as exc:  # the compiled file cannot answer the rows it was verified on
            return fail(f"the compiled ONNX file failed on the verification rows: {type(exc).__name__}: {exc}"[:500])
        health["onnx_vs_sklearn_max_abs_diff"] = diff
        if not diff <= DEFAULT_TOLERANCE:
            return fail(f"the ONNX and scikit-learn paths disagree on {len(records)} verification rows "
                        f"(max difference {diff:.2e} > {DEFAULT_TOLERANCE:g})")

    smoke = [_json_record(r) for r in (version.input_example or [])] or records[:5]
    if not smoke:
        return fail("no input example to smoke-test with")
    try:
        signature.columns(smoke)
    except InstanceError as exc:
        return fail(f"the input example does not fit the signature: {exc.message}")
    try:
        timings = []
        for _ in range(SMOKE_ROUNDS):
            begin = time.perf_counter()
            predictions, _probabilities = predictor.predict(signature.columns(smoke), len(smoke))
            timings.append((time.perf_counter() - begin) * 1000)
    except Exception as exc:  # a model that raises on its own example is unhealthy, whatever the error
        return fail(f"smoke prediction failed: {type(exc).__name__}: {exc}"[:500])
    # The first call may include lazy initialisation; the best of the rest is the steady cost.
    health["smoke_latency_ms"] = min(timings[1:] or timings)
    health["smoke_rows"] = len(smoke)
    health["smoke_predictions"] = predictions[:5]
    if health["smoke_latency_ms"] > budget:
        return fail(f"smoke predictions took {health['smoke_latency_ms']:.1f} ms, over the {budget:g} ms budget")
    health["ok"] = True
    result.ok = True
    return result



def deployments_check_health(*, window: timedelta = HEALTH_WINDOW, actor=None) -> dict:
    """Mark serving deployments degraded when their live numbers break their
    thresholds over ``window``, and healthy again when they recover
    (``actor`` ``None``: the platform, each minute)."""
    from apps.serving.selectors import deployment_window_stats

    changed = {"degraded": 0, "recovered": 0}
    start = timezone.now() - window
    candidates = Deployment.objects.filter(status__in=(DeploymentStatus.HEALTHY, DeploymentStatus.DEGRADED),
                                           rollout_state=RolloutState.COMPLETED, traffic_weight__gt=0)
    for candidate in candidates.only("pk", "config", "status"):
        stats = deployment_window_stats(deployment_id=candidate.pk, start=start)
        verdict = judge(stats, candidate.config)
        if not verdict.enough:
            continue
        wanted = DeploymentStatus.DEGRADED if verdict.breach else DeploymentStatus.HEALTHY
        if wanted == candidate.status:
            continue
        with transaction.atomic():
            deployment, _others = _lock(candidate.pk)
            if deployment.status not in (DeploymentStatus.HEALTHY, DeploymentStatus.DEGRADED) or \
                    deployment.status == wanted:
                continue
            before = snapshot(deployment, DEPLOYMENT_AUDIT_FIELDS)
            deployment.status = wanted
            deployment.status_reason = verdict.breach or ""
            _save(deployment, "status", "status_reason")
            kind = "degraded" if verdict.breach else "recovered"
            _record(deployment, kind=kind, actor=actor, before=before,
                    message=verdict.breach or "Live numbers are back within the thresholds.",
                    data={"stats": stats.as_dict()})
            transaction.on_commit(bump_routing_stamp)
            changed[kind] += 1
    return changed


__all__ = ["HealthResult", "deployment_health_check", "deployments_check_health", "verification_rows"]
