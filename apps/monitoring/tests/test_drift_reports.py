"""Drift reports through the API, the service and the task function."""

from __future__ import annotations

import pytest

from apps.core.models import AuditEvent
from apps.monitoring import services, tasks
from apps.monitoring.drift import frame_drift
from apps.monitoring.models import DriftReport

from .conftest import make_version

URL = "/api/v1/drift-reports/"


def _create(api, ref, cur, **extra):
    return api.post(URL, {"reference_version_id": ref.pk, "current_version_id": cur.pk, **extra}, format="json")


def test_create_queues_a_report_and_the_worker_computes_it(api, reference_version, drifted_version):
    response = _create(api, reference_version, drifted_version)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body == {"id": body["id"], "status": "queued"}
    assert api.get(f"{URL}{body['id']}/").json()["status"] == "queued"

    assert tasks.drift_report_compute(body["id"]) == "done"
    report = api.get(f"{URL}{body['id']}/").json()
    assert report["status"] == "done" and report["drift_share"] == 0.5
    names = {c["name"]: c for c in report["columns"]}
    # Identifier, timestamp and the target are not feature columns; the target is reported apart.
    assert "sample_id" not in names and "submitted_at" not in names and "qc_pass" not in names
    assert report["target"]["name"] == "qc_pass"
    assert {s["name"] for s in report["skipped"]} >= {"sample_id", "submitted_at"}
    # The freezer failure lowers RIN, measured on RNA samples only: ≤ 1000 non-missing reference values → KS.
    rin = names["rin"]
    assert rin["reference_count"] <= 1000 and rin["reference_count"] < reference_version.row_count
    assert rin["kind"] == "numeric" and rin["method"] == "ks" and rin["threshold"] == 0.05
    assert rin["drifted"] and rin["statistic"] == rin["statistics"]["ks_p_value"]
    assert set(rin["statistics"]) == {"ks_statistic", "ks_p_value", "wasserstein_normed", "psi", "js_distance"}
    # A measurement every sample has: > 1000 reference values → normed Wasserstein.
    purity = names["a260_280"]
    assert purity["reference_count"] > 1000 and purity["method"] == "wasserstein" and purity["threshold"] == 0.1
    assert purity["statistic"] == purity["statistics"]["wasserstein_normed"]
    lab = names["submitting_lab"]
    assert lab["kind"] == "categorical" and lab["method"] == "jensenshannon"
    assert {"chi2_p_value", "chi2_gof_p_value", "js_distance", "psi"} <= set(lab["statistics"])
    drifted = sum(c["drifted"] for c in report["columns"])
    assert report["drifted_share"] == drifted / len(report["columns"])
    assert report["dataset_drift"] == (report["drifted_share"] >= 0.5)
    actions = list(AuditEvent.objects.filter(object_id=str(body["id"]), object_type="monitoring.driftreport")
                   .order_by("id").values_list("action", flat=True))
    assert actions == ["drift_report.created", "drift_report.started", "drift_report.done"]


def test_the_report_equals_the_drift_core_on_the_same_frames(scientist, reference_version, drifted_version):
    from apps.datasets.selectors import dataset_version_read_frame

    report = services.drift_report_create(actor=scientist, reference_version_id=reference_version.pk,
                                          current_version_id=drifted_version.pk, columns=["rin", "sample_type"],
                                          methods={"rin": "psi"}, thresholds={"sample_type": 0.01})
    services.drift_report_compute(report_id=report.pk)
    report.refresh_from_db()
    ref = dataset_version_read_frame(version=reference_version, columns=["rin", "sample_type"])
    cur = dataset_version_read_frame(version=drifted_version, columns=["rin", "sample_type"])
    expected = frame_drift(ref, cur, kinds={"rin": "numeric", "sample_type": "categorical"},
                           methods={"rin": "psi"}, thresholds={"sample_type": 0.01})
    columns = {c["name"]: c for c in report.result["columns"]}
    assert list(columns) == ["rin", "sample_type"]
    assert columns["rin"]["method"] == "psi" and columns["sample_type"]["threshold"] == 0.01
    for column in expected.columns:
        assert columns[column.name]["statistics"] == pytest.approx(column.statistics, rel=1e-12)
        assert columns[column.name]["drifted"] == column.drifted


def test_a_retried_task_does_not_redo_or_corrupt_a_finished_report(scientist, reference_version, drifted_version):
    report = services.drift_report_create(actor=scientist, reference_version_id=reference_version.pk,
                                          current_version_id=drifted_version.pk, columns=["rin"])
    assert tasks.drift_report_compute(report.pk) == "done"
    first = DriftReport.objects.get(pk=report.pk)
    assert tasks.drift_report_compute(report.pk) == "skipped"
    again = DriftReport.objects.get(pk=report.pk)
    assert (again.status, again.result, again.finished_at) == (first.status, first.result, first.finished_at)
    assert AuditEvent.objects.filter(object_id=str(report.pk), action="drift_report.done").count() == 1


def test_a_task_redelivered_after_its_worker_died_finishes_the_running_report(scientist, reference_version,
                                                                             drifted_version):
    report = services.drift_report_create(actor=scientist, reference_version_id=reference_version.pk,
                                          current_version_id=drifted_version.pk, columns=["rin"])
    DriftReport.objects.filter(pk=report.pk).update(status="running")  # the first delivery died mid-way
    assert tasks.drift_report_compute(report.pk) == "done"
    assert DriftReport.objects.get(pk=report.pk).result["columns"][0]["name"] == "rin"


@pytest.mark.parametrize(("extra", "status", "code"), [
    ({"columns": ["no_such_column"]}, 400, "unknown_columns"),
    ({"columns": ["sample_id"]}, 400, "untestable_column"),  # identifier text column
    ({"methods": {"rin": "t-test"}}, 400, "validation_failed"),
    ({"methods": {"sample_type": "ks"}}, 400, "invalid_method"),
    ({"methods": {"ghost": "psi"}}, 400, "unknown_columns"),
    ({"thresholds": {"rin": -1}}, 400, "validation_failed"),
    ({"drift_share": 0}, 400, "validation_failed"),
    ({"drift_share": 1.5}, 400, "validation_failed"),
    ({"correction": "holm"}, 400, "validation_failed"),
    ({"reference_version_id": 999999}, 404, "not_found"),
    ({"current_version_id": "abc"}, 400, "validation_failed"),
])
def test_bad_requests_get_the_error_shape_and_create_nothing(  # noqa: PLR0917 - fixtures
        api, reference_version, drifted_version, extra, status, code):
    response = _create(api, reference_version, drifted_version, **extra)
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    assert not DriftReport.objects.exists()


def test_someone_elses_dataset_version_is_not_found(api, make_user, reference_version):
    other = make_user("Data Scientist", username="other")
    hidden = make_version(other, rows=200, seed=3, name="private-submissions")
    _make_private(hidden)
    response = _create(api, reference_version, hidden)
    assert response.status_code == 404
    assert response.json()["error"]["details"]["field"] == "current_version_id"
    assert not DriftReport.objects.exists()


def _make_private(version):
    """Take the lab's view rights off the version's dataset (an owner's private dataset)."""
    from django.contrib.auth.models import Group
    from guardian.shortcuts import remove_perm

    for group in Group.objects.all():
        remove_perm("view_dataset", group, version.dataset)


def test_reports_are_listed_only_for_who_may_see_both_versions(  # noqa: PLR0917 - fixtures
        api, client_for, make_user, scientist, reference_version, drifted_version):
    report = services.drift_report_create(actor=scientist, reference_version_id=reference_version.pk,
                                          current_version_id=drifted_version.pk)
    services.drift_report_create(actor=scientist, reference_version_id=drifted_version.pk,
                                 current_version_id=reference_version.pk)
    viewer = client_for(make_user("Viewer"))
    assert viewer.get(f"{URL}{report.pk}/").status_code == 200  # lab sharing: viewers read
    assert len(api.get(URL).json()["results"]) == 2
    _make_private(reference_version)
    outsider = client_for(make_user("Viewer"))
    assert outsider.get(URL).json()["results"] == []
    response = outsider.get(f"{URL}{report.pk}/")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_list_query_count_does_not_grow_with_reports(api, scientist, reference_version, drifted_version,
                                                     django_assert_max_num_queries):
    def create(n):
        for _ in range(n):
            services.drift_report_create(actor=scientist, reference_version_id=reference_version.pk,
                                         current_version_id=drifted_version.pk, columns=["rin"])

    create(1)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        assert api.get(URL).status_code == 200
    create(4)
    with django_assert_max_num_queries(len(one.captured_queries)):
        assert len(api.get(URL).json()["results"]) == 5


def test_viewers_cannot_create_reports(client_for, make_user, reference_version, drifted_version):
    response = _create(client_for(make_user("Viewer")), reference_version, drifted_version)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_a_column_empty_on_one_side_is_skipped_not_fatal(scientist, reference_version):
    from apps.datasets.generator import generate_submissions

    frame = generate_submissions(rows=300, seed=5)
    frame["rin"] = float("nan")  # no RNA integrity measured this month
    current = make_version(scientist, frame=frame)
    report = services.drift_report_create(actor=scientist, reference_version_id=reference_version.pk,
                                          current_version_id=current.pk, columns=["rin", "a260_280"])
    assert tasks.drift_report_compute(report.pk) == "done"
    report.refresh_from_db()
    assert [c["name"] for c in report.result["columns"]] == ["a260_280"]
    skipped = {s["name"]: s["reason"] for s in report.result["skipped"]}
    assert "no non-missing values" in skipped["rin"]


def test_a_report_with_nothing_testable_fails_with_the_reason(scientist, reference_version):
    from apps.datasets.generator import generate_submissions

    frame = generate_submissions(rows=300, seed=6)
    frame["rin"] = float("nan")
    current = make_version(scientist, frame=frame)
    report = services.drift_report_create(actor=scientist, reference_version_id=reference_version.pk,
                                          current_version_id=current.pk, columns=["rin"])
    assert tasks.drift_report_compute(report.pk) == "failed"
    report.refresh_from_db()
    assert report.result is None and "rin" in report.error and report.finished_at
