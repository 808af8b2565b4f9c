"""Answering predictions (the hot path) and joining feedback to them.

``predict`` is what the predict view and the demo traffic both call: it
validates the request against the routed version's signature, predicts, and
hands the log row to the background buffer. It reads only the per-process
routing table (``apps.serving.runtime``): no database query.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core.errors import ApplicationError, PermissionDenied, ValidationFailed
from apps.core.permissions import has_perm
from apps.serving import logbuffer, retention
from apps.serving.models import Endpoint, Feedback, PredictionLog
from apps.serving.runtime import EndpointRoute
from apps.serving.signature import InstanceError

MAX_UNIT_ID_LENGTH = 200
MAX_FEEDBACK_ITEMS = 10_000
# Feedback that arrived before its prediction's log row is retried this long.
FEEDBACK_JOIN_HORIZON = timedelta(days=1)


class ServiceUnavailable(ApplicationError):
    status_code = 503
    code = "no_healthy_deployment"


class PredictionFailed(ApplicationError):
    """The model raised (a server-side error, counted in the error rate)."""

    status_code = 500
    code = "prediction_failed"


def _now() -> datetime:
    return datetime.now(UTC)


def predict(*, route: EndpointRoute, payload, request_id: str | None = None, started: float | None = None,
            user_id: int | None = None, api_key_id: int | None = None) -> dict:
    """Answer one predict request body (already JSON-decoded) on ``route``.
    ``user_id`` and ``api_key_id`` name who asked (logged: feedback for the
    answer is accepted from them).

    Returns the response body; raises ``ValidationFailed`` (400, naming the
    instance and field), ``ServiceUnavailable`` (503) or ``PredictionFailed``
    (500). Requests that reach a deployment are logged, answered or not."""
    started = time.perf_counter() if started is None else started
    if type(payload) is not dict:
        raise ValidationFailed('The body must be a JSON object: {"instances": [{...}], "unit_id": "optional"}.',
                               code="malformed_request")
    instances = payload.get("instances")
    if type(instances) is not list or not instances:
        raise ValidationFailed('"instances" must be a non-empty list of objects.',
                               details={"field": "instances"})
    n = len(instances)
    if n > route.max_batch_size:
        raise ValidationFailed(f"{n} instances is more than this endpoint's maximum batch of "
                               f"{route.max_batch_size}.", code="too_many_instances",
                               details={"field": "instances", "max_batch_size": route.max_batch_size,
                                        "instances": n})
    unit_id = payload.get("unit_id")
    if unit_id is not None:
        if type(unit_id) is int:
            unit_id = str(unit_id)
        if type(unit_id) is not str or len(unit_id) > MAX_UNIT_ID_LENGTH:
            raise ValidationFailed(f'"unit_id" must be a string of at most {MAX_UNIT_ID_LENGTH} characters.',
                                   details={"field": "unit_id"})
    elif route.unit_field:
        # The endpoint names an input field as the unit (e.g. the submitting
        # lab); a batch goes to one arm, the one of its first instance.
        first = instances[0]
        value = first.get(route.unit_field) if type(first) is dict else None
        if type(value) in (str, int) and value != "":
            unit_id = str(value)[:MAX_UNIT_ID_LENGTH]
    try:
        deployment_id = route.router.choose(unit_id)
    except LookupError:
        detail = {"endpoint": route.slug}
        if route.unavailable:
            detail["unavailable"] = {str(k): v for k, v in route.unavailable.items()}
        raise ServiceUnavailable(f"Endpoint {route.slug} has no healthy deployment to answer.", details=detail)
    variant = route.variants[deployment_id]
    request_id = request_id or uuid.uuid4().hex
    created_at = _now()
    inputs = instances if route.log_inputs else []

    def log(predictions, probabilities, status_code: int, error: str) -> None:
        logbuffer.log_prediction(
            endpoint_id=route.id, deployment_id=deployment_id, model_version_id=variant.model_version_id,
            request_id=request_id, unit_id=unit_id or "", n_instances=n, inputs=inputs, predictions=predictions,
            probabilities=probabilities, latency_ms=(time.perf_counter() - started) * 1000.0,
            status_code=status_code, error=error, serving_path=variant.serving_path, created_at=created_at,
            principal_user_id=user_id, principal_api_key_id=api_key_id, split_id=route.split_id,
            split_arm=route.split_arms.get(deployment_id))

    try:
        columns = variant.signature.columns(instances)
    except InstanceError as exc:
        log([], None, 400, f"{exc.code}: {exc.message}")
        raise ValidationFailed(exc.message, code=exc.code, details={"instance": exc.index, "field": exc.field})
    try:
        predictions, probabilities = variant.predictor.predict(columns, n)
    except Exception as exc:  # whatever the model raises is this deployment's failure, logged as an error
        log([], None, 500, f"{type(exc).__name__}: {exc}"[:2000])
        raise PredictionFailed(f"{variant.model_name} v{variant.version} failed to predict: "
                               f"{type(exc).__name__}.", details={"deployment_id": deployment_id})
    log(predictions, probabilities, 200, "")
    body = {
        "request_id": request_id,
        "model": variant.model_name,
        "version": variant.version,
        "deployment_id": deployment_id,
        "predictions": predictions,
    }
    if probabilities is not None:
        body["probabilities"] = probabilities
    body["serving_path"] = variant.serving_path
    if route.split_id is not None:
        body["split"] = {"id": route.split_id, "arm": route.split_arms.get(deployment_id)}
    return body


# --- Feedback ------------------------------------------------------------------------

def _same_class(predicted, label) -> bool:
    """Class equality across JSON spellings: 1, 1.0, true and "1" are one class."""
    if isinstance(label, bool):
        label = int(label)
    if isinstance(predicted, bool):
        predicted = int(predicted)
    try:
        return float(predicted) == float(label)
    except (TypeError, ValueError):
        return str(predicted) == str(label)


def _join_values(feedback: Feedback, prediction: PredictionLog) -> bool:
    """Copy the predicted value at ``feedback.index`` and score it. False when
    the prediction has no answer at that index."""
    predictions = prediction.predictions or []
    if feedback.index >= len(predictions):
        return False
    predicted = predictions[feedback.index]
    feedback.prediction = prediction
    feedback.deployment_id = prediction.deployment_id
    feedback.predicted = predicted
    feedback.joined_at = timezone.now()
    label = feedback.label
    if prediction.probabilities is not None:
        feedback.correct = _same_class(predicted, label) if label is not None else None
        feedback.abs_error = None
    else:
        try:
            feedback.abs_error = abs(float(predicted) - float(label))
        except (TypeError, ValueError):
            feedback.abs_error = None
        feedback.correct = None
    return True


def _clean_feedback(items) -> list[tuple[str, int, object]]:
    if type(items) is not list or not items:
        raise ValidationFailed('"feedback" must be a non-empty list of {"request_id", "index"?, "label"}.',
                               details={"field": "feedback"})
    if len(items) > MAX_FEEDBACK_ITEMS:
        raise ValidationFailed(f"At most {MAX_FEEDBACK_ITEMS} feedback items per request.",
                               details={"field": "feedback"})
    cleaned = []
    for i, item in enumerate(items):
        if type(item) is not dict:
            raise ValidationFailed(f"feedback[{i}] must be an object.", details={"item": i, "field": None})
        request_id = item.get("request_id")
        if type(request_id) is not str or not request_id or len(request_id) > 64:
            raise ValidationFailed(f"feedback[{i}].request_id must be the request id of a prediction.",
                                   details={"item": i, "field": "request_id"})
        index = item.get("index", 0)
        if type(index) is not int or not 0 <= index < 2**31:
            raise ValidationFailed(f"feedback[{i}].index must be a whole number >= 0.",
                                   details={"item": i, "field": "index"})
        if "label" not in item or isinstance(item["label"], (dict, list)):
            raise ValidationFailed(f"feedback[{i}].label must be the true value (a number, string or boolean).",
                                   details={"item": i, "field": "label"})
        cleaned.append((request_id, index, item["label"]))
    return cleaned


def _sent_by_predictor(*, user_id, api_key_id, prediction_user_id, prediction_api_key_id) -> bool:
    """An API key speaks for the predictions made with it; a user without a
    key (session, token) for every prediction of theirs, their keys' too."""
    if api_key_id is not None:
        return prediction_api_key_id == api_key_id
    return user_id is not None and prediction_user_id == user_id


def feedback_record(*, endpoint: Endpoint, items, actor=None, api_key=None) -> dict:
    """Store ground truth and join it to logged predictions by (request id,
    index). Sending the same (request id, index) again replaces the label.
    Returns counts: ``received``, ``joined`` and ``unknown`` (no such
    prediction yet: kept, and joined later if its log row shows up within a
    day, since prediction logs are written up to a second after the answer).

    ``actor`` (with ``api_key`` when one authenticated the request) may label
    only the predictions it made, unless it holds ``send_feedback_endpoint``:
    otherwise anyone allowed to predict could rewrite the ground truth that
    live accuracy, alerts and retraining rest on. A request that touches a
    prediction it may not label is refused whole (403), nothing written.
    Without an actor the platform itself is sending (the demo traffic)."""
    cleaned = _clean_feedback(items)
    labels_any = actor is None or has_perm(actor, "serving.send_feedback_endpoint", endpoint)
    user_id = getattr(actor, "pk", None)
    api_key_id = api_key.pk if api_key is not None else None

    def may_label(prediction: PredictionLog) -> bool:
        return labels_any or _sent_by_predictor(
            user_id=user_id, api_key_id=api_key_id, prediction_user_id=prediction.principal_user_id,
            prediction_api_key_id=prediction.principal_api_key_id)

    # Predictions answered by this process may still sit in its log buffer.
    logbuffer.flush()
    request_ids = {request_id for request_id, _, _ in cleaned}
    predictions, others = {}, set()
    for prediction in (PredictionLog.objects.filter(endpoint=endpoint, request_id__in=request_ids, status_code=200)
                       .order_by("created_at", "id")):
        if may_label(prediction):
            predictions[prediction.request_id] = prediction  # the latest wins when a caller reused an id
        else:
            others.add(prediction.request_id)
    if refused := sorted(others - set(predictions)):
        raise PermissionDenied(
            "Feedback for predictions made by another client needs the send-feedback right on this endpoint.",
            details={"permission": "serving.send_feedback_endpoint", "request_ids": refused[:20]})
    joined = unknown = 0
    with transaction.atomic():
        existing = {(f.request_id, f.index): f for f in Feedback.objects.select_for_update().filter(
            endpoint=endpoint, request_id__in=request_ids)}
        # Early feedback (its prediction not logged yet) is replaced only by
        # whoever sent it, or by a send_feedback holder.
        taken = sorted({request_id for request_id, index, _ in cleaned
                        if not labels_any and request_id not in predictions
                        and (f := existing.get((request_id, index))) is not None
                        and not _sent_by_predictor(user_id=user_id, api_key_id=api_key_id,
                                                   prediction_user_id=f.sender_user_id,
                                                   prediction_api_key_id=f.sender_api_key_id)})
        if taken:
            raise PermissionDenied(
                "Another client already sent feedback for these requests; replacing it needs the send-feedback "
                "right on this endpoint.",
                details={"permission": "serving.send_feedback_endpoint", "request_ids": taken[:20]})
        for request_id, index, label in cleaned:
            feedback = existing.get((request_id, index)) or Feedback(endpoint=endpoint, request_id=request_id,
                                                                     index=index)
            feedback.label = label
            feedback.received_at = timezone.now()
            feedback.sender_user_id, feedback.sender_api_key_id = user_id, api_key_id
            feedback.sender_labels_any = labels_any
            prediction = predictions.get(request_id)
            if prediction is not None and _join_values(feedback, prediction):
                joined += 1
            else:
                feedback.prediction = None
                feedback.deployment = None
                feedback.predicted = feedback.correct = feedback.abs_error = feedback.joined_at = None
                unknown += 1
            try:
                with transaction.atomic():
                    feedback.save()
            except IntegrityError:
                # Sent twice in this very request: the later item wins.
                Feedback.objects.filter(endpoint=endpoint, request_id=request_id, index=index).update(
                    label=label, received_at=feedback.received_at, sender_user_id=user_id,
                    sender_api_key_id=api_key_id, sender_labels_any=labels_any)
            existing[(request_id, index)] = feedback
    return {"received": len(cleaned), "joined": joined, "unknown": unknown}


def feedback_join_pending(*, horizon: timedelta = FEEDBACK_JOIN_HORIZON, actor=None) -> int:
    """Join feedback that arrived before its prediction's log row did
    (``actor`` is ``None``: the platform, each minute)."""
    since = timezone.now() - horizon
    pending = list(Feedback.objects.filter(joined_at__isnull=True, received_at__gte=since)[:5000])
    if not pending:
        return 0
    candidates = PredictionLog.objects.filter(request_id__in={f.request_id for f in pending},
                                              endpoint_id__in={f.endpoint_id for f in pending}, status_code=200)
    by_request = {}
    for prediction in candidates.order_by("created_at", "id"):
        by_request.setdefault((prediction.endpoint_id, prediction.request_id), []).append(prediction)
    joined = 0
    for feedback in pending:
        # The same rule as when the feedback arrived: its sender's own
        # predictions only, unless it held send_feedback_endpoint then.
        allowed = [p for p in by_request.get((feedback.endpoint_id, feedback.request_id), [])
                   if feedback.sender_labels_any or _sent_by_predictor(
                       user_id=feedback.sender_user_id, api_key_id=feedback.sender_api_key_id,
                       prediction_user_id=p.principal_user_id, prediction_api_key_id=p.principal_api_key_id)]
        prediction = allowed[-1] if allowed else None
        if prediction is not None and _join_values(feedback, prediction):
            feedback.save(update_fields=["prediction", "deployment", "predicted", "correct", "abs_error",
                                         "joined_at"])
            joined += 1
    return joined


def prediction_logs_prune(*, days: int | None = None, actor=None) -> int:
    """Delete prediction logs older than ``days`` (``SERVING_LOG_RETENTION_DAYS``,
    30), except the rows a registered prune guard still needs
    (``apps.serving.retention``). Retention housekeeping by the platform (``actor`` ``None``): the rows
    are the log itself, so no audit event is written for them."""
    days = days or settings.SERVING_LOG_RETENTION_DAYS
    rows = PredictionLog.objects.filter(created_at__lt=timezone.now() - timedelta(days=days))
    # Rows an app above still has to read (monitoring's rollups) stay.
    if (limit := retention.prune_limit()) is not None:
        rows = rows.filter(pk__lt=limit)
    deleted, _ = rows.delete()
    return deleted


__all__ = ["PredictionFailed", "ServiceUnavailable", "feedback_join_pending", "feedback_record", "predict",
           "prediction_logs_prune"]
