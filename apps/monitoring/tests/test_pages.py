"""The drift report pages: list with the form, a queued report, a finished one."""

from __future__ import annotations

import json
import re

from apps.monitoring import services
from apps.monitoring.models import DriftReport


def _login(client, user):
    client.force_login(user)
    return client


def test_list_page_offers_the_form_and_creates_a_report(client, scientist, reference_version, drifted_version):
    _login(client, scientist)
    page = client.get(f"/monitoring/drift-reports/?reference_version={reference_version.pk}")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="new-drift-report"' in html
    assert re.search(rf'<option value="{reference_version.pk}" selected>', html)
    response = client.post("/monitoring/drift-reports/new/", {
        "reference_version": reference_version.pk, "current_version": drifted_version.pk,
        "columns": "rin, sample_type", "drift_share": "0.5", "correction": "none",
    })
    report = DriftReport.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/monitoring/drift-reports/{report.pk}/"
    assert report.columns == ["rin", "sample_type"] and report.status == "queued"
    queued = client.get(response["Location"]).content.decode()
    assert 'id="report-progress"' in queued and f'/api/v1/drift-reports/{report.pk}/' in queued


def test_report_page_shows_each_column_and_the_chart(client, scientist, reference_version, drifted_version):
    report = services.drift_report_create(actor=scientist, reference_version_id=reference_version.pk,
                                          current_version_id=drifted_version.pk)
    services.drift_report_compute(report_id=report.pk)
    report.refresh_from_db()
    html = _login(client, scientist).get(f"/monitoring/drift-reports/{report.pk}/").content.decode()
    for column in report.result["columns"]:
        assert f"<td>{column['name']}</td>" in html
    assert html.count('<span class="badge failed">drift</span>') >= sum(c["drifted"] for c in report.result["columns"])
    figure = json.loads(re.search(r'<script id="drift-fig" type="application/json">(.*?)</script>', html, re.S)[1])
    bars = [t for t in figure["data"] if t["type"] == "bar"]
    assert sum(len(t["x"]) for t in bars) == len(report.result["columns"])
    assert 'id="target-drift"' in html and "qc_pass" in html
    # No inline script without the nonce: the figure is data, drawn by static/js/charts.js.
    assert not re.search(r"<script(?![^>]*(nonce=|type=\"application/json\"|src=))", html)


def test_a_report_on_hidden_versions_is_a_404_page(client, make_user, scientist, reference_version, drifted_version):
    from django.contrib.auth.models import Group
    from guardian.shortcuts import remove_perm

    report = services.drift_report_create(actor=scientist, reference_version_id=reference_version.pk,
                                          current_version_id=drifted_version.pk)
    for group in Group.objects.all():
        remove_perm("view_dataset", group, drifted_version.dataset)
    outsider = make_user("Viewer")
    assert _login(client, outsider).get(f"/monitoring/drift-reports/{report.pk}/").status_code == 404
    assert f"/monitoring/drift-reports/{report.pk}/" not in client.get("/monitoring/drift-reports/").content.decode()


def test_dataset_version_page_links_to_a_drift_check(client, scientist, reference_version):
    html = _login(client, scientist).get(f"/datasets/versions/{reference_version.pk}/").content.decode()
    assert f"/monitoring/drift-reports/?reference_version={reference_version.pk}" in html


def test_column_names_are_text_in_the_chart_not_markup():
    from apps.monitoring.charts import drift_statistic_figure

    column = {"name": '<a href="https://example.org">x</a>', "method": "psi", "statistic": 0.3, "threshold": 0.1,
              "drifted": True}
    figure = drift_statistic_figure([column])
    labels = [x for trace in figure["data"] for x in trace["x"]]
    assert labels and all("<a" not in label and "&lt;a" in label for label in labels)
