"""The prediction log's bulk writer: every value comes back as it was sent,
whatever the backend (COPY on PostgreSQL, bulk_create elsewhere), and a
failed write puts the rows back for the next flush."""

from datetime import UTC, datetime

import pytest

from apps.registry.choices import Stage
from apps.serving import logbuffer
from apps.serving.models import PredictionLog
from apps.serving.tests.factories import deploy, make_endpoint, make_model_version

pytestmark = pytest.mark.django_db

AWKWARD = "tab\there, newline\nthere, back\\slash, quote \" ' , NUL-free ünïcødé ✓, \\N"


@pytest.fixture
def deployment(engineer):
    version = make_model_version(owner=engineer, stage=Stage.PRODUCTION)
    return deploy(endpoint=make_endpoint(owner=engineer), version=version, actor=engineer)


def _row(deployment, request_id, **overrides):
    row = dict(endpoint_id=deployment.endpoint_id, deployment_id=deployment.pk,
               model_version_id=deployment.model_version_id, request_id=request_id, unit_id=AWKWARD,
               n_instances=2, inputs=[{"sample_type": AWKWARD, "rin": None, "volume": 1.5e-300},
                                      {"nested": {"list": [1, 2.5, True, None]}}],
               predictions=[1, 0], probabilities=[{"0": 0.25, "1": 0.75}, {"0": 0.9, "1": 0.1}],
               latency_ms=1.234567, status_code=200, error="", serving_path="onnx",
               created_at=datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC))
    row.update(overrides)
    return row


def test_every_value_is_written_as_it_was_logged(deployment):
    logbuffer.buffer.clear()
    sent = [_row(deployment, "r-1"),
            _row(deployment, "r-2", probabilities=None, predictions=[], status_code=400, error=AWKWARD,
                 serving_path="")]
    for row in sent:
        logbuffer.log_prediction(**row)
    assert logbuffer.flush() == 2
    assert logbuffer.flush() == 0
    stored = {log.request_id: log for log in PredictionLog.objects.all()}
    for row in sent:
        log = stored[row["request_id"]]
        for field, value in row.items():
            assert getattr(log, field) == value, field
    assert PredictionLog.objects.filter(probabilities__isnull=True).count() == 1  # SQL NULL, not JSON null


def test_a_failed_write_keeps_the_rows_for_the_next_flush(deployment, monkeypatch):
    logbuffer.buffer.clear()
    logbuffer.log_prediction(**_row(deployment, "r-kept"))

    def broken(rows):
        raise RuntimeError("database unavailable")

    monkeypatch.setattr(logbuffer, "_write", broken)
    with pytest.raises(RuntimeError):
        logbuffer.flush()
    assert logbuffer.buffer.pending() == 1 and not PredictionLog.objects.exists()
    monkeypatch.undo()
    assert logbuffer.flush() == 1
    assert PredictionLog.objects.get().request_id == "r-kept"
