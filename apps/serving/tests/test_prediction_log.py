"""The prediction log viewer of an endpoint: filters, keyset pages, the
joined feedback, escaping, the CSV export and its formula guard, and who may
read it."""

import csv
import io
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from apps.core.permissions import make_private
from apps.registry.choices import Stage
from apps.serving.csvexport import csv_safe
from apps.serving.models import PredictionLog
from apps.serving.services import feedback_record
from apps.serving.tests.factories import deploy, make_endpoint, make_model_version

pytestmark = pytest.mark.django_db

URL = "/serving/qc-log/predictions/"


def browser_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def logged(engineer):
    """Two versions served on one endpoint; 60 answers of v1 (every fifth
    one an error), 5 of v2 for unit S-2, one hostile request, and ground
    truth for the first answer."""
    v1 = make_model_version(owner=engineer, stage=Stage.PRODUCTION)
    v2 = make_model_version(owner=engineer, stage=Stage.STAGING, seed=12)
    endpoint = make_endpoint(owner=engineer, slug="qc-log", environment="staging")
    d1 = deploy(endpoint=endpoint, version=v1, actor=engineer)
    d2 = deploy(endpoint=endpoint, version=v2, actor=engineer)
    start = timezone.now() - timedelta(hours=2)
    rows = []
    for i in range(60):
        error = i % 5 == 4
        rows.append(PredictionLog(
            endpoint=endpoint, deployment=d1, model_version=v1, request_id=f"r{i:03d}", unit_id=f"S-{i % 3}",
            inputs=[{"concentration_ng_ul": i}], predictions=[] if error else [i % 2 == 0],
            probabilities=None if error else [[0.4, 0.6] if i % 2 == 0 else [0.6, 0.4]],
            latency_ms=3.5 + i, status_code=500 if error else 200, error="model failed" if error else "",
            created_at=start + timedelta(minutes=i)))
    for i in range(5):
        rows.append(PredictionLog(
            endpoint=endpoint, deployment=d2, model_version=v2, request_id=f"v2-{i}", unit_id="S-2",
            inputs=[{"concentration_ng_ul": 100 + i}], predictions=[True], latency_ms=2.0, status_code=200,
            created_at=start + timedelta(minutes=61 + i)))
    rows.append(PredictionLog(
        endpoint=endpoint, deployment=d1, model_version=v1, request_id="hostile", unit_id="=HYPERLINK(\"x\")",
        inputs=[{"sample_type": "<script>alert(1)</script>", "note": "=1+2"}], predictions=["@SUM(A1)"],
        latency_ms=1.0, status_code=200, created_at=start - timedelta(minutes=5)))
    PredictionLog.objects.bulk_create(rows)
    feedback_record(endpoint=endpoint, items=[{"request_id": "r000", "index": 0, "label": True}])
    return endpoint, v1, v2, start


def _request_ids(html: str) -> list[str]:
    import re

    return re.findall(r'<tr data-request="([^"]+)"', html)


def test_the_endpoint_page_links_its_prediction_log(engineer, logged):
    html = browser_for(engineer).get("/serving/qc-log/").content.decode()
    assert f'href="{URL}"' in html


def test_pages_are_newest_first_fifty_at_a_time_with_feedback(engineer, logged, django_assert_num_queries):
    client = browser_for(engineer)
    response = client.get(URL)
    assert response.status_code == 200
    first = _request_ids(response.content.decode())
    assert len(first) == 50 and first[0] == "v2-4" and first[5] == "r059"
    older = response.context["older"]
    second = client.get(URL, {"before": older})
    ids = _request_ids(second.content.decode())
    assert ids == [f"r{i:03d}" for i in range(14, -1, -1)] + ["hostile"] and second.context["older"] is None
    assert set(first).isdisjoint(ids)
    html = second.content.decode()
    assert "#0: <code>true</code> ✓" in html  # r000 predicted True, the lab said True
    # Session, user, endpoint, permissions, versions, page anchor, rows, feedback and the page shell
    # (menu role checks, the inbox bell's unread count): the same number of queries for 50 rows as for 16.
    with django_assert_num_queries(14):  # the first page has no anchor to look up
        client.get(URL)
    with django_assert_num_queries(15):
        client.get(URL, {"before": older})


def test_filters_by_version_status_unit_and_time(engineer, logged):
    _endpoint, v1, v2, start = logged
    client = browser_for(engineer)
    assert _request_ids(client.get(URL, {"version": v2.pk}).content.decode()) == [f"v2-{i}" for i in range(4, -1, -1)]
    errors = _request_ids(client.get(URL, {"status": "error"}).content.decode())
    assert errors == [f"r{i:03d}" for i in range(59, 0, -1) if i % 5 == 4]
    ok = _request_ids(client.get(URL, {"status": "ok", "version": v1.pk}).content.decode())
    assert "r004" not in ok and "r003" in ok
    unit = _request_ids(client.get(URL, {"unit": "S-2", "version": v2.pk}).content.decode())
    assert len(unit) == 5
    window = {"since": (start + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M"),
              "until": (start + timedelta(minutes=13)).strftime("%Y-%m-%dT%H:%M")}
    assert _request_ids(client.get(URL, window).content.decode()) == ["r012", "r011", "r010"]


def test_bad_filters_are_a_400_with_the_reason(engineer, logged):
    client = browser_for(engineer)
    assert client.get(URL, {"status": "maybe"}).status_code == 400
    other_endpoint_version = make_model_version(owner=engineer, name="other-model", stage=Stage.STAGING)
    response = client.get(URL, {"version": other_endpoint_version.pk})
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
    backwards = client.get(URL, {"since": "2026-01-02T00:00", "until": "2026-01-01T00:00"})
    assert backwards.status_code == 400 and "Must be later than the start." in backwards.content.decode()
    csv_response = client.get(URL, {"status": "maybe", "format": "csv"})
    assert csv_response.status_code == 400 and csv_response["Content-Type"].startswith("text/plain")


def test_user_content_is_shown_as_text_never_as_markup(engineer, logged):
    html = browser_for(engineer).get(URL, {"unit": '=HYPERLINK("x")'}).content.decode()
    assert _request_ids(html) == ["hostile"]
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_others_get_404_and_viewers_only_read(engineer, viewer, make_user, logged):
    endpoint = logged[0]
    assert browser_for(viewer).get(URL).status_code == 200  # the lab reads shared endpoints
    make_private(endpoint)
    for user in (viewer, make_user("ML Engineer", username="another_engineer")):
        assert browser_for(user).get(URL).status_code == 404
        assert browser_for(user).get(URL, {"format": "csv"}).status_code == 404
    anonymous = Client().get(URL)
    assert anonymous.status_code in (302, 404) and b"r000" not in anonymous.content


def test_csv_export_streams_every_matching_row_with_formulas_defused(engineer, logged):
    response = browser_for(engineer).get(URL, {"format": "csv"})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == 'attachment; filename="qc-log-predictions.csv"'
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 66 and rows[0]["request_id"] == "v2-4"
    hostile = next(r for r in rows if r["request_id"] == "hostile")
    assert hostile["unit_id"] == "'=HYPERLINK(\"x\")"
    assert hostile["inputs"].startswith("[")  # JSON text, a formula only inside a string value
    first = next(r for r in rows if r["request_id"] == "r000")
    assert first["feedback"] == '[{"index":0,"label":true,"correct":true,"abs_error":null}]' and first["status"] == "ok"
    errors = browser_for(engineer).get(URL, {"format": "csv", "status": "error"})
    error_rows = list(csv.DictReader(io.StringIO(b"".join(errors.streaming_content).decode())))
    assert len(error_rows) == 12 and {r["error"] for r in error_rows} == {"model failed"}


@pytest.mark.parametrize("value, shown", [
    ("=1+2", "'=1+2"), ("+1", "'+1"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"), ("\t=1", "'\t=1"),
    ("\r=1", "'\r=1"), ("S-1", "S-1"), ("", ""), (None, ""), (3.5, 3.5), ("a=b", "a=b"),
])
def test_csv_cells_that_start_a_formula_get_an_apostrophe(value, shown):
    assert csv_safe(value) == shown


@pytest.mark.postgres
def test_every_filter_reads_an_index_not_the_whole_log(engineer, logged):
    """With sequential scans priced out, the plan of each filtered page must
    still avoid one: an index exists that starts with the endpoint."""
    from apps.serving.selectors import PredictionLogFilter, prediction_log_list

    endpoint, v1, _v2, start = logged
    cases = [PredictionLogFilter(), PredictionLogFilter(model_version_id=v1.pk), PredictionLogFilter(status="error"),
             PredictionLogFilter(unit_id="S-1"), PredictionLogFilter(since=start, until=start + timedelta(hours=1))]
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE serving_predictionlog")
        cursor.execute("SET LOCAL enable_seqscan = off")
        for filters in cases:
            qs = prediction_log_list(endpoint=endpoint, filters=filters)[:51]
            sql, params = qs.query.sql_with_params()
            cursor.execute(f"EXPLAIN {sql}", params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "Seq Scan on serving_predictionlog" not in plan, (filters, plan)
            assert "serving_predictionlog" in plan
