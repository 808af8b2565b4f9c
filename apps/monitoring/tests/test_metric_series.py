"""Metric series: rolled up from the prediction log once per row, merged
percentiles, late feedback, retention, the log prune guard and the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.test import override_settings
from django.utils import timezone

from apps.monitoring import selectors, services
from apps.monitoring.models import MetricSeriesPoint, MetricSeriesWatermark
from apps.monitoring.series import buckets, rollup

# Whole hours, so the log below spans exactly two hours of one day.
T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
LATER = T0 + timedelta(hours=3)


@pytest.fixture
def engineer(make_user):
    return make_user("ML Engineer", username="eng")


def _version(owner, number):
    from apps.core.permissions import grant_on_create
    from apps.registry.models import ModelVersion, RegisteredModel

    registered, created = RegisteredModel.objects.get_or_create(name="sample-qc", defaults={"owner": owner})
    if created:
        grant_on_create(registered, owner=owner)
    return ModelVersion.objects.create(registered_model=registered, version=number, artifact=f"t/v{number}.skops",
                                       sha256="0" * 64, signature={}, created_by=owner)


@pytest.fixture
def served(engineer):
    from apps.serving.models import Deployment
    from apps.serving.services import endpoint_create

    endpoint = endpoint_create(actor=engineer, slug="sample-qc", name="sample-qc", environment="production")
    deployments = [Deployment.objects.create(endpoint=endpoint, model_version=_version(engineer, n),
                                             traffic_weight=50.0, status="healthy", rollout_state="completed",
                                             created_by=engineer)
                   for n in (1, 2)]
    return endpoint, deployments


def _log(deployments, *, n=3000, seed=3, start=T0, span_minutes=120):
    """``n`` requests spread over ``span_minutes``: lognormal latencies, 5 %
    invalid, 3 % errors, classifier answers with probabilities."""
    from apps.serving.models import PredictionLog

    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        status = int(rng.choice([200, 422, 500], p=[0.92, 0.05, 0.03]))
        p = float(rng.uniform(0.5, 1.0))
        label = bool(rng.random() < 0.7)
        rows.append(PredictionLog(
            endpoint=deployments[0].endpoint, deployment=deployments[i % 2],
            model_version_id=deployments[i % 2].model_version_id, request_id=f"r{seed}-{i}", n_instances=1,
            predictions=[label] if status == 200 else [],
            probabilities=[{"True": p if label else 1 - p, "False": 1 - p if label else p}] if status == 200 else None,
            latency_ms=float(rng.lognormal(2.5, 0.6)), status_code=status,
            created_at=start + timedelta(seconds=float(rng.uniform(0, span_minutes * 60)))))
    return PredictionLog.objects.bulk_create(rows)


def _sum(field, **filters):
    return sum(getattr(p, field) for p in MetricSeriesPoint.objects.filter(**filters))


def _counts_per_deployment(rows):
    out = {}
    for row in rows:
        c = out.setdefault(row.deployment_id, {"requests": 0, "successes": 0, "invalid": 0, "errors": 0})
        c["requests"] += 1
        key = "errors" if row.status_code >= 500 else "invalid" if row.status_code >= 400 else "successes"
        c[key] += 1
    return out


@pytest.mark.django_db
def test_counts_equal_the_raw_log_at_every_granularity(served):
    _endpoint, deployments = served
    rows = _log(deployments)
    services.metric_series_update(now=LATER)
    expected = _counts_per_deployment(rows)
    for granularity in ("minute", "hour", "day"):
        for deployment_id, counts in expected.items():
            for field, value in counts.items():
                assert _sum(field, granularity=granularity, deployment_id=deployment_id) == value
    assert MetricSeriesPoint.objects.filter(granularity="hour").count() == 4  # 2 hours x 2 deployments
    answered = [r for r in rows if r.status_code == 200]
    assert _sum("instances", granularity="day") == len(answered)
    conf = sum(max(r.probabilities[0].values()) for r in answered)
    assert _sum("confidence_sum", granularity="hour") == pytest.approx(conf)
    classes = {}
    for point in MetricSeriesPoint.objects.filter(granularity="minute"):
        for key, count in point.class_counts.items():
            classes[key] = classes.get(key, 0) + count
    assert classes == {"True": sum(r.predictions[0] for r in answered),
                       "False": sum(not r.predictions[0] for r in answered)}


def _bucket_width(value):
    lower, upper = buckets.bucket_bounds(buckets.LATENCY_EDGES_MS,
                                         buckets.bucket_index(buckets.LATENCY_EDGES_MS, value))
    return upper - lower


@pytest.mark.django_db
def test_percentiles_of_merged_buckets_match_numpy_within_one_bucket(served, engineer):
    _endpoint, deployments = served
    rows = _log(deployments)
    services.metric_series_update(now=LATER)
    # A minute holds a dozen requests: its p95/p99 fall between the top two,
    # which may be buckets apart; the median and the hours' tails do not.
    for granularity, quantiles in (("minute", (50,)), ("hour", (50, 95, 99))):
        series = selectors.metric_series_get(user=engineer, endpoint="sample-qc", granularity=granularity,
                                             since=T0.isoformat(), until=LATER.isoformat())
        step = rollup.bucket_start  # the points' starts, truncated like the rows
        for point in series["points"][:5] + series["points"][-3:]:
            raw = [r.latency_ms for r in rows if r.status_code == 200 and step(r.created_at, granularity)
                   == point["start"]]
            for q in quantiles:
                exact = float(np.percentile(raw, q))
                tolerance = max(_bucket_width(exact), _bucket_width(point[f"latency_p{q}"]))
                assert abs(point[f"latency_p{q}"] - exact) <= tolerance, (granularity, q)
    # Over the whole window, across both deployments and every minute merged.
    raw = [r.latency_ms for r in rows if r.status_code == 200]
    for q in (50, 95, 99):
        value = selectors.metric_value(endpoint=deployments[0].endpoint, metric=f"latency_p{q}",
                                       window_seconds=3 * 3600, now=LATER)
        exact = float(np.percentile(raw, q))
        assert abs(value - exact) <= max(_bucket_width(exact), _bucket_width(value))


@pytest.mark.django_db
def test_a_second_run_and_a_crashed_run_count_nothing_twice(served, monkeypatch):
    _endpoint, deployments = served
    rows = _log(deployments, n=400)
    real_write = rollup._Batch.write

    def write_then_die(self):
        real_write(self)
        raise RuntimeError("worker lost between the writes and the commit")

    monkeypatch.setattr(rollup._Batch, "write", write_then_die)
    with pytest.raises(RuntimeError):
        services.metric_series_update(now=LATER)
    assert not MetricSeriesPoint.objects.exists()
    assert not MetricSeriesWatermark.objects.filter(prediction_id__gt=0).exists()
    monkeypatch.setattr(rollup._Batch, "write", real_write)
    services.metric_series_update(now=LATER)
    services.metric_series_update(now=LATER)
    assert _sum("requests", granularity="day") == len(rows)
    assert MetricSeriesWatermark.objects.get().prediction_id == rows[-1].pk


@pytest.mark.django_db
def test_batches_and_unsettled_gaps(served):
    from apps.serving.models import PredictionLog

    _endpoint, deployments = served
    now = timezone.now()
    rows = _log(deployments, n=50, start=now - timedelta(seconds=20), span_minutes=0)
    PredictionLog.objects.filter(pk=rows[20].pk).delete()  # a gap: maybe a commit still on its way
    services.metric_series_update(now=now, batch_size=7)
    assert _sum("requests", granularity="minute") == 20
    services.metric_series_update(now=now + timedelta(minutes=2), batch_size=7)
    assert _sum("requests", granularity="minute") == 49


@pytest.mark.django_db
def test_late_feedback_lands_in_the_minute_of_its_prediction(served, engineer):
    from apps.serving.models import Feedback

    endpoint, deployments = served
    rows = [r for r in _log(deployments, n=200) if r.status_code == 200]
    services.metric_series_update(now=LATER)
    joined = LATER + timedelta(days=2)
    for row in rows[:40]:
        Feedback.objects.create(endpoint=endpoint, request_id=row.request_id, label=True, prediction=row,
                                deployment=row.deployment, predicted=row.predictions[0],
                                correct=row.predictions[0] is True, joined_at=joined)
    services.metric_series_update(now=joined + timedelta(minutes=2))
    services.metric_series_update(now=joined + timedelta(minutes=3))  # read once
    first = rows[0]
    minute = MetricSeriesPoint.objects.get(granularity="minute", deployment=first.deployment,
                                           bucket_start=rollup.bucket_start(first.created_at, "minute"))
    assert minute.judged >= 1
    assert _sum("judged", granularity="hour") == 40
    assert _sum("correct", granularity="day") == sum(r.predictions[0] is True for r in rows[:40])
    accuracy = selectors.metric_value(endpoint=endpoint, metric="accuracy", window_seconds=3 * 3600, now=LATER)
    assert accuracy == pytest.approx(sum(r.predictions[0] is True for r in rows[:40]) / 40)


@pytest.mark.django_db
def test_retention_prunes_minutes_after_14_days_and_hours_after_400(served):
    _endpoint, deployments = served
    _log(deployments, n=50)
    services.metric_series_update(now=LATER)
    services.metric_series_prune(now=T0 + timedelta(days=15))
    assert not MetricSeriesPoint.objects.filter(granularity="minute").exists()
    assert MetricSeriesPoint.objects.filter(granularity="hour").exists()
    services.metric_series_prune(now=T0 + timedelta(days=401))
    assert not MetricSeriesPoint.objects.filter(granularity="hour").exists()
    assert _sum("requests", granularity="day") == 50  # days are kept for good


@pytest.mark.django_db
def test_the_log_prune_keeps_rows_not_rolled_up_and_the_series_survive_it(served):
    from apps.serving.models import Feedback, PredictionLog
    from apps.serving.services import prediction_logs_prune

    endpoint, deployments = served
    old = timezone.now() - timedelta(days=40)
    rows = _log(deployments, n=100, start=old, span_minutes=60)
    assert prediction_logs_prune() == 0  # nothing read yet: everything stays
    services.metric_series_update()
    answered = next(r for r in rows if r.status_code == 200)
    Feedback.objects.create(endpoint=endpoint, request_id=answered.request_id, label=True, prediction=answered,
                            correct=True, joined_at=timezone.now())
    assert prediction_logs_prune() == answered.pk - rows[0].pk  # its feedback is not read yet
    services.metric_series_update(now=timezone.now() + timedelta(minutes=2))
    prediction_logs_prune()
    assert not PredictionLog.objects.exists()
    assert _sum("requests", granularity="hour") == 100
    assert _sum("judged", granularity="day") == 1


@pytest.mark.django_db
def test_api_series_errors_and_permissions(served, engineer, make_user, client_for):
    from apps.core.permissions import make_private

    endpoint, deployments = served
    _log(deployments, n=300)
    services.metric_series_update(now=LATER)
    api = client_for(engineer)
    url = "/api/v1/endpoints/sample-qc/series/"
    window = {"since": T0.isoformat(), "until": LATER.isoformat()}
    body = api.get(url, {"granularity": "hour", **window}).json()
    assert [p["start"][:16] for p in body["points"]] == ["2026-11-02T10:00", "2026-11-02T11:00"]
    assert sum(p["requests"] for p in body["points"]) == 300
    assert body["points"][0]["latency_p95"] >= body["points"][0]["latency_p50"] > 0
    one = api.get(url, {"granularity": "day", "deployment": deployments[1].pk, **window}).json()
    assert one["points"][0]["requests"] == 150
    bad = api.get(url, {"granularity": "week"})
    assert bad.status_code == 400 and bad.json()["error"]["details"] == {"field": "granularity"}
    assert api.get(url, {"since": "yesterday"}).json()["error"]["code"] == "validation_failed"
    assert api.get(url, {"deployment": 999999}).status_code == 404
    assert api.get("/api/v1/endpoints/nope/series/").status_code == 404
    outsider = client_for(make_user("ML Engineer", username="outsider"))
    assert outsider.get(url, window).status_code == 200
    make_private(endpoint)
    hidden = outsider.get(url, window)
    assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "not_found"


@pytest.mark.django_db
def test_metric_value_names(served):
    endpoint, deployments = served
    rows = _log(deployments, n=600)
    services.metric_series_update(now=LATER)
    window = 3 * 3600
    mine = [r for r in rows if r.deployment_id == deployments[0].pk]

    def value(metric, deployment=None):
        return selectors.metric_value(endpoint=endpoint, deployment=deployment, metric=metric,
                                      window_seconds=window, now=LATER)

    assert value("request_rate") == pytest.approx(600 / window)
    counts = _counts_per_deployment(rows)[deployments[0].pk]
    assert value("error_rate", deployments[0]) == pytest.approx(counts["errors"] / (counts["requests"]
                                                                                    - counts["invalid"]))
    assert value("invalid_rate", deployments[0].pk) == pytest.approx(counts["invalid"] / len(mine))
    assert value("accuracy") is None and value("abs_error") is None
    assert 0.5 <= value("mean_confidence") <= 1.0
    assert value("request_rate", deployments[0]) == pytest.approx(len(mine) / window)
    with pytest.raises(ValueError):
        value("throughput")


def test_quantiles_of_merged_histograms_match_numpy():
    rng = np.random.default_rng(1)
    parts = [rng.lognormal(3, 1, size=500) for _ in range(6)]
    total = buckets.empty_counts(buckets.LATENCY_EDGES_MS)
    for part in parts:
        counts = buckets.empty_counts(buckets.LATENCY_EDGES_MS)
        for value in part:
            counts[buckets.bucket_index(buckets.LATENCY_EDGES_MS, value)] += 1
        total = buckets.merge_counts(total, counts)
    values = np.concatenate(parts)
    for q in (0.5, 0.9, 0.95, 0.99):
        estimate, exact = buckets.quantile(total, q), float(np.quantile(values, q))
        assert abs(estimate - exact) <= max(_bucket_width(exact), _bucket_width(estimate))
    assert buckets.quantile(buckets.empty_counts(buckets.LATENCY_EDGES_MS), 0.5) is None


def _samples(body: str) -> dict:
    """``{(name, frozenset of label pairs): value}`` of a Prometheus text body."""
    from prometheus_client.parser import text_string_to_metric_families

    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(body) for sample in family.samples}


@pytest.mark.django_db
def test_prometheus_metrics_come_from_the_series(served, client):
    _endpoint, deployments = served
    rows = _log(deployments, n=200)
    services.metric_series_update(now=LATER)
    # Without a token /metrics is open to anyone: endpoint and model names stay out of it.
    assert "sample-qc" not in client.get("/metrics").content.decode()
    with override_settings(METRICS_TOKEN="s3cret"):
        samples = _samples(client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret").content.decode())
    counts = _counts_per_deployment(rows)[deployments[1].pk]
    labels = {("endpoint", "sample-qc"), ("model", "sample-qc"), ("version", "2")}
    for outcome, field in (("success", "successes"), ("invalid", "invalid"), ("error", "errors")):
        assert samples["mlops_endpoint_requests_total", frozenset(labels | {("outcome", outcome)})] == counts[field]
    assert samples["mlops_endpoint_latency_seconds_count", frozenset(labels)] == counts["successes"]
    fast = sum(1 for r in rows if r.deployment_id == deployments[1].pk and r.status_code == 200
               and r.latency_ms <= 12.8)
    assert samples["mlops_endpoint_latency_seconds_bucket", frozenset(labels | {("le", "0.0128")})] == fast
