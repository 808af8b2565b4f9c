"""End to end with a real worker and broker: the metric series are rolled up
by the monitoring queue's task and outlive the prediction log's prune."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_rollups_written_by_the_worker_survive_the_log_prune(live_worker, make_user):
    from apps.core.permissions import grant_on_create
    from apps.monitoring.models import MetricSeriesPoint
    from apps.monitoring.tasks import metric_series_update
    from apps.registry.models import ModelVersion, RegisteredModel
    from apps.serving.models import Deployment, PredictionLog
    from apps.serving.services import endpoint_create, prediction_logs_prune

    owner = make_user("ML Engineer", username="eng")
    registered = RegisteredModel.objects.create(name="sample-qc", owner=owner)
    grant_on_create(registered, owner=owner)
    version = ModelVersion.objects.create(registered_model=registered, version=1, artifact="t/v1.skops",
                                          sha256="0" * 64, signature={}, created_by=owner)
    endpoint = endpoint_create(actor=owner, slug="sample-qc", name="sample-qc", environment="production")
    deployment = Deployment.objects.create(endpoint=endpoint, model_version=version, traffic_weight=100.0,
                                           status="healthy", rollout_state="completed", created_by=owner)
    old = timezone.now() - timedelta(days=40)
    PredictionLog.objects.bulk_create([
        PredictionLog(endpoint=endpoint, deployment=deployment, model_version=version, request_id=f"r{i}",
                      predictions=[True], probabilities=[{"True": 0.8, "False": 0.2}], latency_ms=4.0 + i % 7,
                      status_code=500 if i % 10 == 0 else 200, created_at=old + timedelta(seconds=30 * i))
        for i in range(120)])
    assert prediction_logs_prune() == 0  # not rolled up yet

    metric_series_update.delay()

    def rolled_up():
        return sum(MetricSeriesPoint.objects.filter(granularity="day").values_list("requests", flat=True)) == 120

    live_worker.wait_for(rolled_up, timeout=120, interval=0.5, what="the series to hold every logged request")
    assert prediction_logs_prune() == 120
    assert not PredictionLog.objects.exists()
    # 40 days old: past the minutes' 14 days (pruned by the same task), within the hours' 400.
    assert not MetricSeriesPoint.objects.filter(granularity="minute").exists()
    hours = MetricSeriesPoint.objects.filter(granularity="hour")
    assert sum(p.requests for p in hours) == 120 and sum(p.errors for p in hours) == 12
