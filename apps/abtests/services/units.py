"""Per-unit running aggregates, and the per-arm sums the unit analysis needs.

The unit that was randomised (``PredictionLog.unit_id``: a sample, a
submitting lab) is the unit of analysis: a unit sending many requests is one
observation, not many. Each unit keeps running counts in an ``ABTestUnit``
row (requests, errors, latency, answers, feedback). A metric of a unit is a
pair (x_u, y_u) — e.g. errors and requests — and each arm keeps, per metric,

* Σx_u, Σy_u (the request-level ``sum`` and ``n``), Σx_u², Σy_u², Σx_u·y_u
  and the number of units: the sufficient statistics of the delta-method
  ratio Σx/Σy (Deng, Knoblich & Lu 2018, "Applying the Delta Method in Metric
  Analytics", KDD; gbstats ``RatioStatistic``);
* Σm_u, Σm_u², Σc_u, Σc_u², Σm_u·c_u with m_u = x_u/y_u the unit's mean and
  c_u its metric over the ``PRE_PERIOD`` before the test started (0 when it
  had none): CUPED on the per-unit mean (Deng, Xu, Kohavi & Walker 2013,
  "Improving the Sensitivity of Online Controlled Experiments by Utilizing
  Pre-Experiment Data", WSDM; gbstats ``RegressionAdjustedStatistic``).

When a batch changes a unit from (x, y) to (x', y'), each arm sum moves by
the new unit's term minus the old one, so nothing is ever rescanned. The
caller holds the test row locked, so two updates never interleave.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from django.db import connection
from django.db.models import Count, Q, Sum

from apps.abtests.choices import TestMetric
from apps.abtests.models import ABTest, ABTestUnit
from apps.serving.models import Feedback, PredictionLog

# metric -> (numerator field, denominator field, covariate field or None)
UNIT_METRICS = {
    TestMetric.ERROR_RATE: ("errors", "requests", "pre_error_rate"),
    TestMetric.LATENCY_MS: ("latency_sum", "answered", "pre_latency_ms"),
    TestMetric.POSITIVE_RATE: ("positives", "instances", None),
    TestMetric.CONFIDENCE: ("confidence_sum", "scored", None),
    TestMetric.REVIEW_RATE: ("reviews", "scored", None),
    TestMetric.ACCURACY: ("correct", "labelled", "pre_accuracy"),
    TestMetric.ABS_ERROR: ("abs_error_sum", "graded", None),
}
COUNTERS = ("requests", "errors", "answered", "latency_sum", "instances", "positives", "scored", "confidence_sum",
            "reviews", "labelled", "correct", "graded", "abs_error_sum")
ARM_FIELDS = ("units", "unit_sum_squares", "unit_count_squares", "unit_sum_product", "unit_mean_sum",
              "unit_mean_sum_squares", "covariate_units", "covariate_sum", "covariate_sum_squares",
              "covariate_sum_product")
# How far back a unit's pre-test traffic is read for its CUPED covariate (GrowthBook's default lookback).
PRE_PERIOD = timedelta(days=14)


def unit_key(unit_id: str, log_id: int) -> str:
    """A unit's key in a test: its id, or the request itself when it came without one."""
    return f"u:{unit_id}" if unit_id else f"r:{log_id}"


class UnitDeltas:
    """What one batch of log rows and feedback adds to each unit it touches."""

    def __init__(self):
        self.arm: dict[str, int] = {}
        self.counts: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(COUNTERS, 0))

    def add(self, key: str, arm: int, **counts: float) -> None:
        self.arm.setdefault(key, arm)
        entry = self.counts[key]
        for name, value in counts.items():
            entry[name] += value

    def __len__(self) -> int:
        return len(self.counts)


def _term(values: dict, metric: str) -> tuple | None:
    """One unit's addend to each of ``ARM_FIELDS`` for ``metric``, or None when the unit has no such value."""
    x_field, y_field, c_field = UNIT_METRICS[metric]
    x, y = float(values[x_field]), float(values[y_field])
    if y <= 0:
        return None
    m = x / y
    c = values.get(c_field) if c_field else None
    has_c = c is not None
    c = float(c) if has_c else 0.0
    return (1, x * x, y * y, x * y, m, m * m, 1 if has_c else 0, c, c * c, m * c)


def _pre_period(ab_test: ABTest, unit_ids: list[str]) -> dict[str, dict]:
    """Each unit's error rate, mean latency and accuracy over ``PRE_PERIOD``
    before the test started, from the endpoint's log and joined feedback."""
    if not unit_ids or ab_test.started_at is None:
        return {}
    start = ab_test.started_at
    window = Q(created_at__gte=start - PRE_PERIOD, created_at__lt=start)
    counted = Q(status_code__lt=400) | Q(status_code__gte=500)
    rows = (PredictionLog.objects.filter(window, counted, endpoint_id=ab_test.endpoint_id, unit_id__in=unit_ids)
            .values("unit_id").annotate(requests=Count("id"), errors=Count("id", filter=Q(status_code__gte=500)),
                                        answered=Count("id", filter=Q(status_code__lt=400)),
                                        latency=Sum("latency_ms", filter=Q(status_code__lt=400))).order_by())
    found: dict[str, dict] = defaultdict(dict)
    for row in rows:
        found[row["unit_id"]]["pre_error_rate"] = row["errors"] / row["requests"]
        if row["answered"]:
            found[row["unit_id"]]["pre_latency_ms"] = row["latency"] / row["answered"]
    labelled = (Feedback.objects.filter(endpoint_id=ab_test.endpoint_id, correct__isnull=False,
                                        prediction__unit_id__in=unit_ids, prediction__created_at__lt=start,
                                        prediction__created_at__gte=start - PRE_PERIOD)
                .values("prediction__unit_id").annotate(n=Count("id"), right=Count("id", filter=Q(correct=True)))
                .order_by())
    for row in labelled:
        found[row["prediction__unit_id"]]["pre_accuracy"] = row["right"] / row["n"]
    return found


PRE_FIELDS = ("pre_error_rate", "pre_latency_ms", "pre_accuracy")
_COLUMNS = ("arm_index", "unit_key", *COUNTERS, *PRE_FIELDS)
_TYPES = ("smallint", "text", *("double precision" if name.endswith("_sum") else "bigint" for name in COUNTERS),
          *("double precision",) * len(PRE_FIELDS))
# One statement per batch: the ORM's per-value preparation cost more than the arithmetic.
_UPSERT = (
    f"INSERT INTO abtests_abtestunit (ab_test_id, {', '.join(_COLUMNS)}) "
    f"SELECT %s, * FROM unnest({', '.join(f'%s::{t}[]' for t in _TYPES)}) "
    f"ON CONFLICT (ab_test_id, unit_key) DO UPDATE SET "
    + ", ".join(f"{name} = EXCLUDED.{name}" for name in COUNTERS)
)


def units_fold(ab_test: ABTest, deltas: UnitDeltas) -> dict[tuple[int, str], list[float]]:
    """Add ``deltas`` to the units' rows and return, per (arm index, metric),
    how much each of ``ARM_FIELDS`` moved. Runs inside the caller's
    transaction (the test row locked): rows and arm sums commit together. A
    unit keeps the arm it was first seen in."""
    if not deltas:
        return {}
    keys = list(deltas.counts)
    existing = {row[1]: dict(zip(_COLUMNS, row, strict=True)) for row in
                ABTestUnit.objects.filter(ab_test=ab_test, unit_key__in=keys).values_list(*_COLUMNS)}
    covariates = _pre_period(ab_test, [key[2:] for key in keys if key not in existing and key.startswith("u:")])
    moved: dict[tuple[int, str], list[float]] = defaultdict(lambda: [0.0] * len(ARM_FIELDS))
    columns: list[list] = [[] for _ in _COLUMNS]
    for key in keys:
        old = existing.get(key)
        if old is None:
            new = {"arm_index": deltas.arm[key], "unit_key": key, **dict.fromkeys(COUNTERS, 0),
                   **dict.fromkeys(PRE_FIELDS), **covariates.get(key[2:], {})}
        else:
            new = dict(old)
        for name, value in deltas.counts[key].items():
            new[name] += value
        for metric in UNIT_METRICS:
            after, before = _term(new, metric), _term(old, metric) if old else None
            if after is None and before is None:
                continue
            total = moved[(new["arm_index"], metric)]
            for i in range(len(ARM_FIELDS)):
                total[i] += (after[i] if after else 0.0) - (before[i] if before else 0.0)
        for column, name, kind in zip(columns, _COLUMNS, _TYPES, strict=True):
            value = new[name]
            column.append(float(value) if kind == "double precision" and value is not None else
                          int(value) if kind == "bigint" else value)
    with connection.cursor() as cursor:
        cursor.execute(_UPSERT, [ab_test.pk, *columns])
    return moved


__all__ = ["ARM_FIELDS", "PRE_PERIOD", "UNIT_METRICS", "UnitDeltas", "unit_key", "units_fold"]
