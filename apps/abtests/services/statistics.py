"""Per-arm sufficient statistics, kept up to date incrementally.

``ab_test_stats_update`` reads the prediction log rows and joined feedback a
test has not read yet (by id, past its two cursors), adds their counts, sums
and sums of squares to each arm's ``ABTestArmStatistic`` rows and moves the
cursors, in one transaction with the test row locked, so two workers never
count a row twice. Results then cost a handful of rows, never a log scan.

What is counted, per arm (the arm that answered, ``PredictionLog.split_arm``):

* ``error_rate``: per request answered or failed by the model (status 200 or
  5xx; a 4xx is the caller's error); its ``n`` is also the SRM count;
* ``latency_ms``: per answered request;
* ``positive_rate``, ``confidence``, ``review_rate``: per answered instance
  (positive: the class 1/true; confidence: the top class probability;
  review: a confidence below ``AB_TEST_REVIEW_CONFIDENCE``, default 0.6);
* ``accuracy`` and ``abs_error``: per joined feedback, attributed to the arm
  of the prediction it labels.

The same pass folds each row into its unit's running aggregates
(``services/units.py``) and moves the arms' per-unit sums (units, Σx², Σy²,
Σxy, and the CUPED sums) in the same transaction, so results can analyse
per unit. Feedback is attributed to the arm and unit of the prediction it
labels; feedback replaced after it was counted keeps its first label.

Retries and crashes: the rows read, the unit rows, the arm sums and both
cursors are written in one transaction under the test row's lock. A task
that dies before the commit leaves nothing; one that runs again after it
starts past the moved cursors; so no row is ever counted twice.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.abtests.choices import TestMetric, TestStatus
from apps.abtests.models import ABTest, ABTestArmStatistic
from apps.abtests.services.units import ARM_FIELDS, UnitDeltas, unit_key, units_fold
from apps.serving.models import Feedback, PredictionLog

BATCH_SIZE = 5000
# Feedback that may still be joined to its prediction (serving retries the join this long).
FEEDBACK_JOIN_HORIZON = timedelta(days=1)


def _review_threshold() -> float:
    return float(getattr(settings, "AB_TEST_REVIEW_CONFIDENCE", 0.6))


def _is_positive(value) -> bool:
    if isinstance(value, bool):
        return value
    try:
        return float(value) == 1.0
    except (TypeError, ValueError):
        return str(value).lower() in ("1", "true", "yes", "pass")


class _Sums:
    def __init__(self):
        self.values = defaultdict(lambda: [0, 0.0, 0.0])

    def add(self, arm: int, metric: str, value: float) -> None:
        entry = self.values[(arm, metric)]
        entry[0] += 1
        entry[1] += value
        entry[2] += value * value


def _add_predictions(sums: _Sums, units: UnitDeltas, rows, threshold: float) -> None:
    for pk, arm, unit_id, status_code, latency, predictions, probabilities in rows:
        if arm is None or 400 <= status_code < 500:
            continue
        failed = status_code >= 500
        sums.add(arm, TestMetric.ERROR_RATE, 1.0 if failed else 0.0)
        key = unit_key(unit_id, pk)
        if failed:
            units.add(key, arm, requests=1, errors=1)
            continue
        sums.add(arm, TestMetric.LATENCY_MS, float(latency))
        positives = scored = reviews = 0
        confidence_sum = 0.0
        for i, predicted in enumerate(predictions or []):
            positive = 1.0 if _is_positive(predicted) else 0.0
            positives += positive
            sums.add(arm, TestMetric.POSITIVE_RATE, positive)
            if probabilities and i < len(probabilities) and probabilities[i]:
                confidence = max(float(p) for p in probabilities[i].values())
                review = 1.0 if confidence < threshold else 0.0
                sums.add(arm, TestMetric.CONFIDENCE, confidence)
                sums.add(arm, TestMetric.REVIEW_RATE, review)
                scored, confidence_sum, reviews = scored + 1, confidence_sum + confidence, reviews + review
        units.add(key, arm, requests=1, answered=1, latency_sum=float(latency), instances=len(predictions or []),
                  positives=positives, scored=scored, confidence_sum=confidence_sum, reviews=reviews)


def _feedback_rows(ab_test: ABTest):
    """Joined feedback past the cursor, and the cursor to move to: it stops
    before feedback young enough to still be joined later."""
    horizon = timezone.now() - FEEDBACK_JOIN_HORIZON
    rows = (Feedback.objects.filter(endpoint_id=ab_test.endpoint_id, pk__gt=ab_test.stats_feedback_cursor)
            .order_by("pk").values_list("pk", "joined_at", "received_at", "prediction__split_id",
                                        "prediction__split_arm", "prediction_id", "prediction__unit_id", "correct",
                                        "abs_error")[:BATCH_SIZE])
    taken, cursor = [], ab_test.stats_feedback_cursor
    for pk, joined_at, received_at, split_id, arm, prediction_id, unit_id, correct, abs_error in rows:
        if joined_at is None and received_at >= horizon:
            break
        cursor = pk
        if joined_at is not None and split_id == ab_test.split_id and arm is not None:
            taken.append((arm, unit_key(unit_id, prediction_id), correct, abs_error))
    return taken, cursor


def _add_feedback(sums: _Sums, units: UnitDeltas, feedback) -> None:
    for arm, key, correct, abs_error in feedback:
        if correct is not None:
            sums.add(arm, TestMetric.ACCURACY, 1.0 if correct else 0.0)
            units.add(key, arm, labelled=1, correct=1 if correct else 0)
        if abs_error is not None:
            sums.add(arm, TestMetric.ABS_ERROR, float(abs_error))
            units.add(key, arm, graded=1, abs_error_sum=float(abs_error))


def _write_arm_statistics(arms: dict, sums: _Sums, moved: dict) -> None:
    now = timezone.now()
    for index, metric in set(sums.values) | set(moved):
        arm = arms.get(index)
        if arm is None:
            continue
        n, total, squares = sums.values.get((index, metric), (0, 0.0, 0.0))
        unit_sums = moved.get((index, metric), [0.0] * len(ARM_FIELDS))
        statistic, _ = ABTestArmStatistic.objects.get_or_create(arm=arm, metric=metric)
        ABTestArmStatistic.objects.filter(pk=statistic.pk).update(
            n=F("n") + n, sum=F("sum") + total, sum_squares=F("sum_squares") + squares, updated_at=now,
            **{field: F(field) + value for field, value in zip(ARM_FIELDS, unit_sums, strict=True)})


def ab_test_stats_update(*, ab_test_id: int) -> dict:
    """Add what was logged since the last update to the units' and arms' statistics."""
    with transaction.atomic():
        ab_test = ABTest.objects.select_for_update().filter(pk=ab_test_id).first()
        if ab_test is None or ab_test.split_id is None or ab_test.status not in (TestStatus.RUNNING,
                                                                                   TestStatus.STOPPED):
            return {"predictions": 0, "feedback": 0}
        arms = {arm.index: arm for arm in ab_test.arms.all()}
        sums, units = _Sums(), UnitDeltas()
        rows = list(PredictionLog.objects.filter(split_id=ab_test.split_id, pk__gt=ab_test.stats_prediction_cursor)
                    .order_by("pk").values_list("pk", "split_arm", "unit_id", "status_code", "latency_ms",
                                                "predictions", "probabilities")[:BATCH_SIZE])
        _add_predictions(sums, units, rows, _review_threshold())
        feedback, feedback_cursor = _feedback_rows(ab_test)
        _add_feedback(sums, units, feedback)
        # A unit of an arm index the test does not have (none in practice) is left out of both.
        for key in [key for key, index in units.arm.items() if index not in arms]:
            del units.counts[key]
        _write_arm_statistics(arms, sums, units_fold(ab_test, units))
        if rows:
            ab_test.stats_prediction_cursor = rows[-1][0]
        ab_test.stats_feedback_cursor = feedback_cursor
        ab_test.save(update_fields=["stats_prediction_cursor", "stats_feedback_cursor"])
    return {"predictions": len(rows), "feedback": len(feedback), "more": len(rows) == BATCH_SIZE}


def ab_tests_stats_update() -> int:
    """Update every test that is running (or stopped but may still have rows to read); the beat entry."""
    from apps.abtests.tasks import ab_test_stats_update as task

    # A stopped test may still have log rows on their way (the buffers flush every second).
    recently = timezone.now() - timedelta(hours=1)
    ids = list(ABTest.objects.filter(Q(status=TestStatus.RUNNING) | Q(status=TestStatus.STOPPED,
                                                                      stopped_at__gte=recently))
               .values_list("pk", flat=True))
    for pk in ids:
        task.delay(pk)
    return len(ids)


__all__ = ["ab_test_stats_update", "ab_tests_stats_update"]
