"""The datasets API with real files: uploads, deduplication, validation
results, expectations, feature specs, permissions (bad input:
test_api_bad_input.py; lineage across the apps: tests/test_lineage_api.py)."""

from __future__ import annotations

import pytest
from django.db import transaction

from apps.core.permissions import make_private
from apps.core.storage import artifact_storage
from apps.datasets import services
from apps.datasets.generator import generate_submissions
from apps.datasets.models import Dataset, DatasetVersion
from apps.datasets.tasks import dataset_version_validate
from apps.datasets.tests.helpers import stored_files, upload, validated

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("isolated_storage")]


# --- Datasets ------------------------------------------------------------------------

def test_create_list_and_read_a_dataset(api):
    response = api.post("/api/v1/datasets/", {"name": "qc", "task_hint": "classification",
                                              "target_column": "qc_pass"})
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["owner"] == "sci" and body["version_count"] == 0
    assert api.get("/api/v1/datasets/").json()["results"][0]["name"] == "qc"
    assert api.get(f"/api/v1/datasets/{body['id']}/").json()["target_column"] == "qc_pass"
    again = api.post("/api/v1/datasets/", {"name": "qc"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"


def _queries(api, url) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        assert api.get(url).status_code == 200
    return len(captured)


def test_list_endpoints_use_a_fixed_number_of_queries(api, scientist, lab_csv):
    for i in range(2):
        services.dataset_create(actor=scientist, name=f"set-{i}")
    dataset = services.dataset_create(actor=scientist, name="with-versions")
    upload(api, dataset, "a.csv", lab_csv)
    upload(api, dataset, "b.csv", lab_csv.replace(b"\n", b"\r\n"))
    urls = ["/api/v1/datasets/", "/api/v1/dataset-versions/", f"/api/v1/datasets/{dataset.pk}/versions/",
            f"/api/v1/datasets/{dataset.pk}/expectations/"]
    services.expectation_create(dataset=dataset, actor=scientist, kind="unique", column="sample_id")
    for url in urls:
        _queries(api, url)  # warm the per-process permission and content-type caches
    before = {url: _queries(api, url) for url in urls}
    for i in range(2, 6):
        services.dataset_create(actor=scientist, name=f"set-{i}")
    upload(api, dataset, "c.csv", lab_csv.replace(b"S", b"T"))
    upload(api, dataset, "d.csv", lab_csv.replace(b"S", b"U"))
    services.expectation_create(dataset=dataset, actor=scientist, kind="column_exists", column="rin")
    after = {url: _queries(api, url) for url in urls}
    assert after == before
    assert max(after.values()) <= 12


# --- Upload and deduplication ---------------------------------------------------------

def test_upload_streams_to_storage_queues_validation_and_deduplicates(api, dataset, lab_csv,
                                                                       django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = upload(api, dataset, "submissions.csv", lab_csv, note="first batch")
    assert first.status_code == 201, first.json()
    body = first.json()
    assert body["created"] is True and body["status"] == "pending" and body["version"] == 1
    assert body["encoding"] == "utf-8" and body["delimiter"] == "," and body["column_count"] == 20
    assert any(getattr(cb, "func", None) == dataset_version_validate.delay for cb in callbacks), \
        "validation is queued after commit"
    files_after_first = stored_files()
    assert len(files_after_first) == 1

    second = upload(api, dataset, "renamed-copy.csv", lab_csv)
    assert second.status_code == 200
    assert second.json()["created"] is False and second.json()["id"] == body["id"]
    assert DatasetVersion.objects.filter(dataset=dataset).count() == 1
    assert stored_files() == files_after_first, "no second copy of the same content"

    version = DatasetVersion.objects.get(pk=body["id"])
    with artifact_storage().open(version.file) as handle:
        assert handle.read() == lab_csv


def test_validation_writes_schema_quality_report_and_expectation_results(api, dataset, lab_csv, scientist):
    services.expectation_create(dataset=dataset, actor=scientist, kind="unique", column="sample_id")
    services.expectation_create(dataset=dataset, actor=scientist, kind="value_range", column="a260_280",
                                params={"min": 1.7}, severity="warning")
    version_id = upload(api, dataset, "s.csv", lab_csv).json()["id"]
    version = validated(version_id)
    assert version.status == "valid", version.status_reason
    detail = api.get(f"/api/v1/dataset-versions/{version_id}/").json()
    assert detail["row_count"] == 300 and detail["progress"] == 1.0
    columns = {c["name"]: c for c in detail["schema"]["columns"]}
    assert columns["qc_pass"]["role"] == "target"
    assert columns["sample_id"]["role"] == "identifier"
    assert columns["submitted_at"]["type"] == "datetime"
    assert columns["sample_type"]["type"] == "categorical"
    assert columns["a260_280"]["type"] == "float"
    report = detail["quality_report"]
    assert 0 < report["score"] <= 100 and "score_formula" in report
    assert report["class_balance"]["target"] == "qc_pass"
    results = {r["kind"]: r for r in detail["expectation_results"]}
    assert results["unique"]["passed"] is True
    assert results["value_range"]["passed"] is False and results["value_range"]["severity"] == "warning"
    assert results["value_range"]["observed"]["below"] > 0
    status = api.get(f"/api/v1/dataset-versions/{version_id}/status/").json()
    assert status["status"] == "valid" and status["progress"] == 1.0


def test_validation_is_idempotent_and_publishes_one_event(api, dataset, lab_csv, django_capture_on_commit_callbacks):
    from apps.core import events

    seen = []
    events.subscribe(services.VALIDATED_EVENT, lambda name, payload: seen.append(payload))
    version_id = upload(api, dataset, "s.csv", lab_csv).json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        validated(version_id)
    with django_capture_on_commit_callbacks(execute=True):
        assert dataset_version_validate.run(version_id) == "valid"
    assert seen == [{"dataset_version_id": version_id, "dataset_id": dataset.pk, "status": "valid"}]


def test_a_version_stuck_in_validating_can_be_revalidated(api, dataset, lab_csv):
    version_id = upload(api, dataset, "s.csv", lab_csv).json()["id"]
    # A worker died half-way: the row says "validating" and no task will finish it.
    DatasetVersion.objects.filter(pk=version_id).update(status="validating", progress=0.4)
    response = api.post(f"/api/v1/dataset-versions/{version_id}/revalidate/")
    assert response.status_code == 202 and response.json()["status"] == "pending"
    assert validated(version_id).status == "valid"
    # Redelivered after a crash while validating: the task finishes the job too.
    DatasetVersion.objects.filter(pk=version_id).update(status="validating")
    assert dataset_version_validate.run(version_id) == "valid"


def test_download_returns_the_file_as_uploaded(api, dataset, lab_csv):
    version_id = upload(api, dataset, "original name.csv", lab_csv).json()["id"]
    response = api.get(f"/api/v1/dataset-versions/{version_id}/download/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == lab_csv
    assert 'filename="original name.csv"' in response["Content-Disposition"]


@pytest.mark.parametrize("query", ["", "?inline=1"])
def test_download_is_never_active_content_on_the_platform_origin(api, dataset, query):
    # A "CSV" whose bytes are a page with a script: it must stay a download.
    content = b"a,b\n<script>fetch('/api/v1/transition-requests/1/approve/',{method:'POST'})</script>,1\n"
    version_id = upload(api, dataset, "samples.csv", content).json()["id"]
    response = api.get(f"/api/v1/dataset-versions/{version_id}/download/{query}")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment")
    assert response["Content-Type"] == "application/octet-stream"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]


def test_tsv_and_parquet_uploads_are_read_natively(api, dataset, tmp_path):
    frame = generate_submissions(rows=120, seed=3)
    parquet = tmp_path / "x.parquet"
    frame.to_parquet(parquet, index=False)
    for name, content in (("x.tsv", frame.to_csv(index=False, sep="\t").encode()), ("x.parquet",
                                                                                   parquet.read_bytes())):
        body = upload(api, dataset, name, content).json()
        version = validated(body["id"])
        assert version.status == "valid", version.status_reason
        assert version.row_count == 120 and version.column_count == 20
        types = {c["name"]: c["type"] for c in version.schema["columns"]}
        assert types["qc_pass"] == "integer" and types["sample_type"] == "categorical"


def test_parent_must_belong_to_the_dataset(api, dataset, scientist, lab_csv):
    other = services.dataset_create(actor=scientist, name="other")
    foreign = upload(api, other, "a.csv", lab_csv).json()["id"]
    response = upload(api, dataset, "b.csv", lab_csv, parent=foreign)
    assert response.status_code == 400 and "parent" in response.json()["error"]["message"]
    own = upload(api, dataset, "c.csv", lab_csv).json()["id"]
    child = upload(api, dataset, "d.csv", lab_csv.replace(b"\n", b"\r\n"), parent=own)
    assert child.status_code == 201 and child.json()["parent"] == own


# --- Expectations ---------------------------------------------------------------------

def test_expectations_crud_and_a_hard_failure_makes_the_version_invalid(api, dataset, lab_csv):
    url = f"/api/v1/datasets/{dataset.pk}/expectations/"
    created = api.post(url, {"kind": "value_range", "column": "a260_280", "params": {"min": 1.0, "max": 1.9}},
                       format="json")
    assert created.status_code == 201, created.json()
    expectation_id = created.json()["id"]
    assert created.json()["description"] == "a260_280 between 1.0 and 1.9"
    api.post(url, {"kind": "column_exists", "column": "operator_initials"}, format="json")
    assert len(api.get(url).json()) == 2

    version = validated(upload(api, dataset, "s.csv", lab_csv).json()["id"])
    assert version.status == "invalid"
    assert "a260_280 between 1.0 and 1.9" in version.status_reason
    assert "operator_initials" in version.status_reason
    failed = [r for r in version.expectation_results if not r["passed"]]
    assert {r["kind"] for r in failed} == {"value_range", "column_exists"}

    patched = api.patch(f"{url}{expectation_id}/", {"params": {"min": 1.0, "max": 2.6}}, format="json")
    assert patched.status_code == 200
    missing_column = next(r for r in failed if r["kind"] == "column_exists")
    deleted = api.delete(f"{url}{missing_column['expectation_id']}/")
    assert deleted.status_code == 204
    api.post(f"/api/v1/dataset-versions/{version.pk}/revalidate/")
    assert validated(version.pk).status == "valid"


@pytest.mark.parametrize(
    "payload",
    [
        {"kind": "value_range", "column": "rin", "params": {}},
        {"kind": "value_range", "column": "rin", "params": {"min": 5, "max": 1}},
        {"kind": "column_type", "column": "rin", "params": {"type": "decimal"}},
        {"kind": "allowed_categories", "column": "sample_type", "params": {"values": []}},
        {"kind": "not_null", "column": "", "params": {}},
        {"kind": "row_count", "column": "rin", "params": {"min": 1}},
        {"kind": "unique", "column": "x", "params": {"surprise": 1}},
        {"kind": "telepathy", "column": "x"},
    ],
)
def test_invalid_expectations_are_refused(api, dataset, payload):
    response = api.post(f"/api/v1/datasets/{dataset.pk}/expectations/", payload, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_failed"


# --- Feature spec ---------------------------------------------------------------------

def test_feature_spec_get_and_put(api, dataset, lab_csv):
    url = f"/api/v1/datasets/{dataset.pk}/feature-spec/"
    before = api.get(url).json()
    assert before["spec"] == {} and before["error"]
    validated(upload(api, dataset, "s.csv", lab_csv).json()["id"])
    summary = api.get(url).json()
    assert summary["error"] == ""
    assert "sample_id" not in summary["feature_columns"]
    assert summary["signature"]["target"] == "qc_pass"
    assert summary["effective"]["columns"]["sample_id"] == {"kind": "drop"}

    bad = api.put(url, {"spec": {"columns": {"sample_type": {"kind": "numeric"}}}}, format="json")
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid_feature_spec"
    assert "columns.sample_type.kind" in bad.json()["error"]["details"]["fields"]

    good = api.put(url, {"spec": {"columns": {"turnaround_hours": {"kind": "drop"}},
                                  "numeric": {"scaling": "robust"}}}, format="json")
    assert good.status_code == 200, good.json()
    assert "turnaround_hours" not in good.json()["feature_columns"]
    assert Dataset.objects.get(pk=dataset.pk).feature_spec["numeric"] == {"scaling": "robust"}


# --- Permissions ----------------------------------------------------------------------

def test_users_without_access_cannot_list_read_or_upload(make_user, client_for, api, dataset, lab_csv):
    version_id = upload(api, dataset, "s.csv", lab_csv).json()["id"]
    with transaction.atomic():
        make_private(dataset)
    outsider = client_for(make_user("Data Scientist", username="outsider"))
    assert outsider.get("/api/v1/datasets/").json()["count"] == 0
    assert outsider.get("/api/v1/dataset-versions/").json()["count"] == 0
    for url in (f"/api/v1/datasets/{dataset.pk}/", f"/api/v1/datasets/{dataset.pk}/versions/",
                f"/api/v1/dataset-versions/{version_id}/", f"/api/v1/dataset-versions/{version_id}/download/",
                f"/api/v1/dataset-versions/{version_id}/lineage/", f"/api/v1/datasets/{dataset.pk}/expectations/"):
        response = outsider.get(url)
        assert response.status_code == 404, url
        assert response.json()["error"]["code"] == "not_found"
    before = stored_files()
    response = upload(outsider, dataset, "new.csv", lab_csv.replace(b"S", b"T"))
    assert response.status_code == 404
    assert stored_files() == before and DatasetVersion.objects.count() == 1
    # The owner still sees everything.
    assert api.get(f"/api/v1/dataset-versions/{version_id}/").status_code == 200


def test_viewers_may_read_but_not_upload_or_edit(make_user, client_for, dataset, api, lab_csv):
    upload(api, dataset, "s.csv", lab_csv)
    viewer = client_for(make_user("Viewer", username="v"))
    assert viewer.get("/api/v1/datasets/").json()["count"] == 1
    response = upload(viewer, dataset, "t.csv", lab_csv.replace(b"S", b"T"))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert viewer.post("/api/v1/datasets/", {"name": "mine"}).status_code == 403
    assert viewer.post(f"/api/v1/datasets/{dataset.pk}/expectations/",
                       {"kind": "unique", "column": "sample_id"}, format="json").status_code == 403
    assert viewer.put(f"/api/v1/datasets/{dataset.pk}/feature-spec/", {"spec": {}}, format="json").status_code == 403
    assert DatasetVersion.objects.count() == 1


def test_anonymous_requests_are_refused(api_client, dataset):
    response = api_client.get("/api/v1/datasets/")
    assert response.status_code == 401
    assert api_client.post(f"/api/v1/datasets/{dataset.pk}/versions/", {}).status_code == 401


# --- Overview card and schema ---------------------------------------------------------

def test_overview_card(scientist, dataset, make_user):
    from apps.datasets.selectors import overview_card

    card = overview_card(user=scientist)
    assert card["title"] == "Datasets" and card["url"] == "/datasets/"
    assert dict(card["stats"])["Datasets"] == 1
    assert overview_card(user=make_user(username="norole")) is None
