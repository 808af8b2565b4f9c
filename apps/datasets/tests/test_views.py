"""Browser pages through Django's test client: what a signed-in user sees
and what the forms do."""

import json

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from apps.datasets import services
from apps.datasets.generator import generate_submissions
from apps.datasets.models import Dataset, DatasetVersion
from apps.datasets.tasks import dataset_version_validate

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("isolated_storage")]


@pytest.fixture
def browser(scientist):
    client = Client()
    client.force_login(scientist)
    return client


@pytest.fixture
def valid_version(scientist):
    dataset = services.dataset_create(actor=scientist, name="submissions", target_column="qc_pass",
                                      task_hint="classification")
    content = generate_submissions(rows=250, seed=5).to_csv(index=False).encode()
    outcome = services.dataset_version_upload(dataset=dataset, actor=scientist,
                                              file=SimpleUploadedFile("s.csv", content), filename="s.csv")
    dataset_version_validate.run(outcome.version.pk)
    return DatasetVersion.objects.get(pk=outcome.version.pk)


def test_list_page_and_create_form(browser):
    page = browser.get("/datasets/")
    assert page.status_code == 200 and b"New dataset" in page.content
    response = browser.post("/datasets/", {"name": "plates", "task_hint": "regression", "target_column": ""})
    dataset = Dataset.objects.get(name="plates")
    assert response.status_code == 302 and response["Location"] == f"/datasets/{dataset.pk}/"
    assert b"plates" in browser.get("/datasets/").content


def test_dataset_page_shows_versions_expectations_and_spec_editor(browser, valid_version):
    page = browser.get(f"/datasets/{valid_version.dataset_id}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'class="badge valid"' in html
    assert 'id="upload-form"' in html
    assert f'data-api-url="/api/v1/datasets/{valid_version.dataset_id}/versions/"' in html
    assert 'id="expectation-form"' in html
    assert 'name="kind__sample_type"' in html and 'name="kind__qc_pass"' not in html


def test_expectation_and_spec_forms_call_the_services(browser, valid_version):
    dataset_id = valid_version.dataset_id
    response = browser.post(f"/datasets/{dataset_id}/expectations/", {
        "kind": "value_range", "column": "rin", "severity": "warning", "minimum": "1", "maximum": "10"})
    assert response.status_code == 302
    expectation = Dataset.objects.get(pk=dataset_id).expectations.get()
    assert expectation.params == {"min": 1, "max": 10} and expectation.severity == "warning"

    refused = browser.post(f"/datasets/{dataset_id}/expectations/", {"kind": "value_range", "column": "rin",
                                                                      "severity": "error"}, follow=True)
    assert b"give min, max or both" in refused.content

    added = browser.post(f"/datasets/{dataset_id}/expectations/from-schema/", follow=True).content.decode()
    assert "Added 33 expectations to submissions from the schema of v1." in added
    assert Dataset.objects.get(pk=dataset_id).expectations.filter(kind="column_type").count() == 20

    response = browser.post(f"/datasets/{dataset_id}/feature-spec/", {
        "numeric_imputation": "mean", "numeric_scaling": "minmax", "max_categories": "10",
        "kind__turnaround_hours": "drop", "kind__sample_type": "categorical", "spec_json": ""})
    assert response.status_code == 302
    assert "Feature spec of submissions saved." in browser.get(f"/datasets/{dataset_id}/").content.decode()
    spec = Dataset.objects.get(pk=dataset_id).feature_spec
    assert spec["numeric"] == {"imputation": "mean", "scaling": "minmax"}
    assert spec["columns"] == {"turnaround_hours": {"kind": "drop"}}, "default choices stay implicit"

    bad_json = browser.post(f"/datasets/{dataset_id}/feature-spec/", {
        "numeric_imputation": "mean", "numeric_scaling": "minmax", "max_categories": "10",
        "spec_json": json.dumps({"columns": {"sample_type": {"kind": "numeric"}}})}, follow=True)
    assert b"cannot be numeric" in bad_json.content


def test_upload_form_without_javascript(browser, valid_version):
    content = generate_submissions(rows=60, seed=9).to_csv(index=False).encode()
    response = browser.post(f"/datasets/{valid_version.dataset_id}/upload/",
                            {"file": SimpleUploadedFile("more.csv", content), "note": "more",
                             "parent": str(valid_version.pk)})
    new = DatasetVersion.objects.exclude(pk=valid_version.pk).get()
    assert response.status_code == 302 and response["Location"] == f"/datasets/versions/{new.pk}/"
    assert new.parent_id == valid_version.pk
    assert "Uploaded submissions v2; validation is running." in browser.get(response["Location"]).content.decode()
    refused = browser.post(f"/datasets/{valid_version.dataset_id}/upload/",
                           {"file": SimpleUploadedFile("x.xls", b"PK..")}, follow=True)
    assert b"not supported" in refused.content


def test_version_page_has_schema_quality_charts_and_lineage(browser, valid_version):
    page = browser.get(f"/datasets/versions/{valid_version.pk}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'id="schema-table"' in html and "sample_type" in html
    assert "score = 100" in html
    assert html.count('data-plotly="dist-') == 19  # every column but the datetime
    assert 'data-plotly="fig-missing"' in html and 'data-plotly="fig-correlation"' in html
    assert 'id="lineage"' in html


def test_busy_and_invalid_versions_show_progress_and_reasons(browser, scientist, valid_version):
    DatasetVersion.objects.filter(pk=valid_version.pk).update(status="validating", progress=0.5)
    html = browser.get(f"/datasets/versions/{valid_version.pk}/").content.decode()
    assert f'data-progress-url="/api/v1/dataset-versions/{valid_version.pk}/status/"' in html
    DatasetVersion.objects.filter(pk=valid_version.pk).update(status="invalid", status_reason="Column 'x' is odd.")
    html = browser.get(f"/datasets/versions/{valid_version.pk}/").content.decode()
    assert "Why this version is invalid" in html and "Column &#x27;x&#x27; is odd." in html


def test_pages_of_hidden_datasets_are_404(make_user, valid_version):
    from django.db import transaction

    from apps.core.permissions import make_private

    with transaction.atomic():
        make_private(valid_version.dataset)
    outsider = Client()
    outsider.force_login(make_user("Data Scientist", username="outsider"))
    assert outsider.get(f"/datasets/{valid_version.dataset_id}/").status_code == 404
    assert outsider.get(f"/datasets/versions/{valid_version.pk}/").status_code == 404
    assert b"submissions" not in outsider.get("/datasets/").content


def test_upload_form_read_options_are_stored_and_pages_show_them(browser, valid_version):
    frame = generate_submissions(rows=250, seed=6)
    rng = np.random.default_rng(1)
    frame["qc_review_minutes"] = frame["qc_pass"].map({1: 5.0, 0: 45.0}) + rng.normal(0, 2, len(frame))
    content = frame.to_csv(index=False, sep=";", decimal=",").encode("cp1252")
    response = browser.post(f"/datasets/{valid_version.dataset_id}/upload/", {
        "file": SimpleUploadedFile("de.csv", content), "decimal": ",", "thousands": "none",
        "column_types": json.dumps({"priority": "text"})})
    new = DatasetVersion.objects.exclude(pk=valid_version.pk).get()
    assert response.status_code == 302
    assert new.read_options["decimal"] == "," and new.read_options["thousands"] == ""
    assert new.read_options["column_types"] == {"priority": "text"}
    assert sorted(new.read_options["overridden"]) == ["column_types", "decimal", "thousands"]
    dataset_version_validate.run(new.pk)
    page = browser.get(f"/datasets/versions/{new.pk}/").content.decode()
    assert 'id="read-options"' in page and "decimal commas in" in page
    assert 'id="leakage"' in page and "qc_review_minutes" in page
    detail = browser.get(f"/datasets/{valid_version.dataset_id}/").content.decode()
    assert "possible leak: consider dropping" in detail
    assert f'data-preview-url="/api/v1/datasets/{valid_version.dataset_id}/preview/"' in detail
    assert "<script>" not in detail and "onclick" not in detail
    bad = browser.post(f"/datasets/{valid_version.dataset_id}/upload/", {
        "file": SimpleUploadedFile("x.csv", content + b"\n"), "encoding": "klingon-8"}, follow=True)
    assert b"unknown encoding" in bad.content
    assert DatasetVersion.objects.count() == 2
