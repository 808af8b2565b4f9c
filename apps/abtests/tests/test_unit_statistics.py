"""Per-unit analysis of a running test: units that repeat are aggregated
first, ratio metrics go through the delta method, CUPED uses the units'
pre-test traffic, feedback counts for the arm and unit of its prediction,
and a retried or crashed update never counts a row twice. Every number is
checked against numpy on the raw per-unit rows."""

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from apps.abtests import selectors, services
from apps.abtests.models import ABTest, ABTestArmStatistic, ABTestUnit
from apps.abtests.services import statistics as stats_service
from apps.registry.choices import Stage
from apps.serving.models import Deployment, Feedback, PredictionLog
from apps.serving.tests.factories import deploy, make_endpoint, make_model_version

pytestmark = pytest.mark.django_db
TOLERANCE = 1e-9


@pytest.fixture
def running(make_user):
    engineer = make_user("ML Engineer", username="engineer_u")
    versions = (make_model_version(owner=engineer, stage=Stage.PRODUCTION),
                make_model_version(owner=engineer, stage=Stage.STAGING, seed=12))
    endpoint = make_endpoint(owner=engineer, slug="qc", environment="staging")
    deploy(endpoint=endpoint, version=versions[0], actor=engineer)
    test = services.ab_test_create(endpoint=endpoint, name="units", actor=engineer, engine="frequentist",
                                   correction="none", primary_metric="error_rate",
                                   secondary_metrics=["accuracy", "latency_ms"],
                                   arms=[{"model_version": versions[0], "weight": 50},
                                         {"model_version": versions[1], "weight": 50}])
    return services.ab_test_start(ab_test=test, actor=engineer)


def _log(test, rng, *, units=60, per_unit=(1, 9), error_rate=(0.1, 0.25), label=True, level=lambda u: 0.0):
    """Log rows for ``units`` units (each in one arm, several requests each),
    with feedback on some answers; returns the raw rows for numpy."""
    deployment = Deployment.objects.filter(endpoint_id=test.endpoint_id).first()
    raw, logs = [], []
    for u in range(units):
        arm = u % 2
        for _ in range(rng.integers(*per_unit)):
            failed = rng.random() < error_rate[arm]
            latency = float(rng.gamma(4.0, 10.0 + 3 * arm)) + level(u)
            logs.append(PredictionLog(endpoint_id=test.endpoint_id, deployment=deployment,
                                      model_version_id=deployment.model_version_id, request_id=f"r{len(logs)}",
                                      unit_id=f"S-{u}", latency_ms=latency, status_code=500 if failed else 200,
                                      predictions=[] if failed else [1], split_id=test.split_id, split_arm=arm))
            raw.append({"unit": f"S-{u}", "arm": arm, "failed": failed, "latency": latency})
    logs = PredictionLog.objects.bulk_create(logs)
    now = timezone.now()
    feedback = []
    for log, row in zip(logs, raw, strict=True):
        if label and not row["failed"] and rng.random() < 0.7:
            row["correct"] = bool(rng.random() < 0.8 - 0.1 * row["arm"])
            feedback.append(Feedback(endpoint_id=test.endpoint_id, request_id=log.request_id, label=1,
                                     prediction=log, correct=row["correct"], joined_at=now))
    Feedback.objects.bulk_create(feedback)
    return raw


def _update_all(test):
    while services.ab_test_stats_update(ab_test_id=test.pk).get("more"):
        pass


def _per_unit(raw, arm, x, y):
    units = sorted({r["unit"] for r in raw if r["arm"] == arm})
    xs = np.array([sum(x(r) for r in raw if r["unit"] == u) for u in units], dtype=float)
    ys = np.array([sum(y(r) for r in raw if r["unit"] == u) for u in units], dtype=float)
    keep = ys > 0
    return xs[keep], ys[keep]


def _delta_ratio(xs, ys):
    """Mean and per-unit variance of sum(x)/sum(y), written out from Deng et al. (2018)."""
    mx, my = xs.mean(), ys.mean()
    cov = np.cov(xs, ys, ddof=1)
    variance = cov[0, 0] / my**2 - 2 * cov[0, 1] * mx / my**3 + mx**2 * cov[1, 1] / my**4
    return xs.sum() / ys.sum(), variance, len(xs)


def _relative(a, b):
    (ra, va, na), (rb, vb, nb) = a, b
    return rb / ra - 1, np.sqrt(vb / (ra**2 * nb) + va * rb**2 / (ra**4 * na))


def test_repeating_units_are_analysed_per_unit_with_the_delta_method(running, monkeypatch):
    rng = np.random.default_rng(5)
    raw = _log(running, rng)
    monkeypatch.setattr(stats_service, "BATCH_SIZE", 37)  # units spread across many batches
    _update_all(running)
    results = selectors.ab_test_results(ab_test=running)
    checks = {"error_rate": (lambda r: r["failed"], lambda r: 1),
              "accuracy": (lambda r: r.get("correct", False), lambda r: "correct" in r)}
    for metric, (x, y) in checks.items():
        result = results["primary"] if metric == "error_rate" else results["secondary"][0]
        assert result["metric"] == metric and result["analysis"] == "unit_ratio"
        expected = [_delta_ratio(*_per_unit(raw, arm, x, y)) for arm in (0, 1)]
        assert [a["units"] for a in result["arms"]] == [e[2] for e in expected]
        assert [a["mean"] for a in result["arms"]] == pytest.approx([e[0] for e in expected], abs=TOLERANCE)
        estimate, stddev = _relative(*expected)
        comparison = result["comparisons"][0]
        assert comparison["estimate"] == pytest.approx(estimate, abs=TOLERANCE)
        assert comparison["stddev"] == pytest.approx(stddev, abs=TOLERANCE)
    # Σx², Σy², Σxy as numpy sums them on the raw per-unit rows.
    row = ABTestArmStatistic.objects.get(arm__ab_test=running, arm__index=1, metric="error_rate")
    xs, ys = _per_unit(raw, 1, checks["error_rate"][0], checks["error_rate"][1])
    assert (row.units, row.n, row.sum) == (len(xs), ys.sum(), xs.sum())
    assert [row.unit_sum_squares, row.unit_count_squares, row.unit_sum_product] == pytest.approx(
        [(xs**2).sum(), (ys**2).sum(), (xs * ys).sum()], rel=1e-12)
    assert ABTestUnit.objects.filter(ab_test=running).count() == len({r["unit"] for r in raw})


def test_cuped_uses_each_units_traffic_before_the_test(running):
    rng = np.random.default_rng(9)
    deployment = Deployment.objects.filter(endpoint_id=running.endpoint_id).first()
    before = running.started_at - timedelta(days=2)
    pre = {}
    for u in range(80):
        if u % 5 == 4:  # some units are new: covariate 0
            continue
        latencies = rng.gamma(4.0, 10.0, size=3) + 8 * (u % 7)
        pre[f"S-{u}"] = latencies.mean()
        PredictionLog.objects.bulk_create(
            PredictionLog(endpoint_id=running.endpoint_id, deployment=deployment,
                          model_version_id=deployment.model_version_id, request_id=f"p{u}-{i}", unit_id=f"S-{u}",
                          latency_ms=float(v), created_at=before) for i, v in enumerate(latencies))
    # A unit's latency carries the level it had before the test.
    raw = _log(running, rng, units=80, label=False, level=lambda u: 8.0 * (u % 7))
    _update_all(running)
    result = selectors.ab_test_results(ab_test=running)["secondary"][1]
    assert result["metric"] == "latency_ms" and result["analysis"] == "unit_cuped"

    def arm_arrays(arm):
        units = sorted({r["unit"] for r in raw if r["arm"] == arm and not r["failed"]})
        m = np.array([np.mean([r["latency"] for r in raw if r["unit"] == u and not r["failed"]]) for u in units])
        c = np.array([pre.get(u, 0.0) for u in units])
        return m, c

    (ma, ca), (mb, cb) = arm_arrays(0), arm_arrays(1)
    m_all, c_all = np.concatenate([ma, mb]), np.concatenate([ca, cb])
    theta = np.cov(m_all, c_all, ddof=1)[0, 1] / np.var(c_all, ddof=1)  # Deng et al. (2013), pooled

    def adjusted(m, c):
        cov = np.cov(m, c, ddof=1)
        return m.mean() - theta * c.mean(), cov[0, 0] + theta**2 * cov[1, 1] - 2 * theta * cov[0, 1], m.mean(), len(m)

    (adj_a, var_a, raw_a, na), (adj_b, var_b, raw_b, nb) = adjusted(ma, ca), adjusted(mb, cb)
    comparison = result["comparisons"][0]
    assert comparison["estimate"] == pytest.approx((adj_b - adj_a) / raw_a, abs=TOLERANCE)
    stddev = np.sqrt(var_b / (raw_a**2 * nb) + var_a * raw_b**2 / (raw_a**4 * na))
    assert comparison["stddev"] == pytest.approx(stddev, abs=TOLERANCE)
    assert np.var(ma, ddof=1) / na + np.var(mb, ddof=1) / nb > (var_a / na + var_b / nb)  # CUPED narrowed it


def test_a_retried_update_or_a_crash_mid_update_never_counts_a_row_twice(running, monkeypatch):
    raw = _log(running, np.random.default_rng(3), units=30)
    assert raw

    def crash(*args, **kwargs):
        raise RuntimeError("worker lost")

    monkeypatch.setattr(stats_service, "_write_arm_statistics", crash)
    with pytest.raises(RuntimeError):  # after the unit rows were written, before the arm sums and cursors
        services.ab_test_stats_update(ab_test_id=running.pk)
    assert not ABTestUnit.objects.filter(ab_test=running).exists()
    assert ABTest.objects.get(pk=running.pk).stats_prediction_cursor == 0
    monkeypatch.undo()
    _update_all(running)
    _update_all(running)  # a redelivered task finds nothing new
    fields = ["n", "sum", "sum_squares", "units", "unit_sum_squares", "unit_count_squares", "unit_sum_product"]
    got = {(s.arm.index, s.metric): [getattr(s, f) for f in fields]
           for s in ABTestArmStatistic.objects.filter(arm__ab_test=running).select_related("arm")}
    errors = [sum(r["failed"] for r in raw if r["arm"] == arm) for arm in (0, 1)]
    requests = [sum(1 for r in raw if r["arm"] == arm) for arm in (0, 1)]
    assert [got[(arm, "error_rate")][:2] for arm in (0, 1)] == [[requests[a], errors[a]] for a in (0, 1)]
    assert sum(u.requests for u in ABTestUnit.objects.filter(ab_test=running)) == len(raw)
