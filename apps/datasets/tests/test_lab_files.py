"""Messy lab exports read right or refused with a reason: decimal commas,
Windows encodings, thousands separators, Excel workbooks, read options at
upload, the preview, schema consistency between versions and leaky columns."""

from __future__ import annotations

import io
import os
import zipfile

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.storage import artifact_storage
from apps.datasets import services
from apps.datasets.generator import generate_submissions
from apps.datasets.models import Dataset, DatasetVersion
from apps.datasets.tasks import dataset_version_validate

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("isolated_storage")]

FLOAT_COLUMNS = ["concentration_ng_ul", "volume_ul", "a260_280", "a260_230", "rin", "din", "storage_temp_c"]


@pytest.fixture
def dataset(scientist):
    dataset = services.dataset_create(actor=scientist, name="lab-sample-submissions", task_hint="classification",
                                      target_column="qc_pass")
    return services.dataset_feature_spec_set(dataset=dataset, actor=scientist,
                                             spec={"columns": {"turnaround_hours": {"kind": "drop"}}})


def european_export(rows: int = 300, seed: int = 7, *, thousands: bool = False) -> bytes:
    """What a German Excel writes: ``;``-separated, decimal commas, Windows-1252."""
    frame = generate_submissions(rows=rows, seed=seed)
    frame["submitting_lab"] = frame["submitting_lab"].str.replace("Uppsala Biobank", "Universität µ-Labor")
    if thousands:
        frame["fragment_size_bp"] = frame["fragment_size_bp"].map(lambda v: f"{v:,}".replace(",", "."))
    return frame.to_csv(index=False, sep=";", decimal=",").encode("cp1252")


def upload(api, dataset, name: str, content: bytes, **extra):
    return api.post(f"/api/v1/datasets/{dataset.pk}/versions/",
                    {"file": SimpleUploadedFile(name, content), **extra}, format="multipart")


def validated(version_id: int) -> DatasetVersion:
    assert dataset_version_validate.run(version_id) in ("valid", "invalid")
    return DatasetVersion.objects.get(pk=version_id)


def types_of(version: DatasetVersion) -> dict[str, str]:
    return {c["name"]: c["type"] for c in version.schema["columns"]}


def stored_files() -> set[str]:
    root = artifact_storage().location
    found = set()
    for folder, _, files in os.walk(os.path.join(root, "datasets")):
        found.update(os.path.relpath(os.path.join(folder, name), root) for name in files)
    return found


# --- Decimal commas, encodings, thousands ------------------------------------------------

def test_a_decimal_comma_latin1_export_is_read_and_trained_as_numbers(api, dataset, scientist):
    response = upload(api, dataset, "submissions-de.csv", european_export())
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["read_options"]["decimal"] == "," and body["read_options"]["delimiter"] == ";"
    assert body["encoding"] == "cp1252"
    version = validated(body["id"])
    assert version.status == "valid", version.status_reason
    types = types_of(version)
    assert all(types[name] == "float" for name in FLOAT_COLUMNS), types
    counts = next(c for c in version.schema["columns"] if c["name"] == "submitting_lab")["stats"]["counts"]
    assert "Universität µ-Labor" in counts
    rin = next(c for c in version.schema["columns"] if c["name"] == "rin")["stats"]
    assert 1.0 <= rin["min"] < rin["max"] <= 10.0
    detail = api.get(f"/api/v1/dataset-versions/{version.pk}/").json()
    assert set(FLOAT_COLUMNS) <= set(detail["read_options"]["decimal_columns"])

    from apps.core.modelio import loads
    from apps.core.storage import open_artifact
    from apps.experiments import tasks
    from apps.experiments.models import Artifact
    from apps.experiments.services import experiment_create, training_job_create

    experiment = experiment_create(actor=scientist, name="qc-de", description="")
    job = training_job_create(actor=scientist, experiment=experiment, dataset_version=version,
                              estimator="logistic_regression", hyperparameters={})
    assert tasks.training_job_run.run(job.pk) == "finished"
    with open_artifact(Artifact.objects.get(run=job.run, path="model/model.skops").file) as handle:
        pipeline = loads(handle.read())
    transformer = pipeline.named_steps["preprocess"]
    numeric = {c for name, _, cols in transformer.transformers_ if name.startswith("numeric") for c in cols}
    one_hot = {c for name, _, cols in transformer.transformers_ if name == "categorical" for c in cols}
    assert set(FLOAT_COLUMNS) <= numeric
    assert not set(FLOAT_COLUMNS) & one_hot


def test_thousands_separators_are_read_as_numbers(api, dataset):
    content = european_export(thousands=True)
    assert b"1.2" in content and b";" in content
    body = upload(api, dataset, "with-thousands.csv", content).json()
    assert body["read_options"]["thousands"] == "."
    version = validated(body["id"])
    stats = next(c for c in version.schema["columns"] if c["name"] == "fragment_size_bp")
    assert stats["type"] == "integer" and stats["stats"]["max"] > 1000


def test_a_column_with_decimal_points_in_a_decimal_comma_export_keeps_its_mark(api, dataset):
    frame = generate_submissions(rows=120, seed=14)
    content = frame.to_csv(index=False, sep=";", decimal=",")
    # An instrument column pasted in with points, some with three decimals ("1.234").
    od = [f"{v:.3f}" if i % 2 else f"{v:.2f}" for i, v in enumerate(np.linspace(0.5, 2.5, len(frame)))]
    lines = content.splitlines()
    content = "\n".join([lines[0] + ";od_ratio"] + [f"{line};{value}" for line, value in zip(lines[1:], od,
                                                                                                strict=True)])
    body = upload(api, dataset, "mixed.csv", content.encode()).json()
    assert body["read_options"]["decimal"] == "," and body["read_options"]["decimal_by_column"] == {"od_ratio": "."}
    version = validated(body["id"])
    columns = {c["name"]: c for c in version.schema["columns"]}
    assert columns["od_ratio"]["type"] == "float" and columns["od_ratio"]["stats"]["max"] <= 2.5
    assert columns["rin"]["type"] == "float"


def test_an_excel_utf8_csv_with_bom_and_decimal_commas_is_read(api, dataset):
    # Excel's "CSV UTF-8" in a German locale: BOM, semicolons, decimal commas.
    frame = generate_submissions(rows=80, seed=3)
    content = frame.to_csv(index=False, sep=";", decimal=",", encoding="utf-8-sig").encode("utf-8-sig")
    version = validated(upload(api, dataset, "bom.csv", content).json()["id"])
    assert version.status == "valid", version.status_reason
    assert version.schema["columns"][0]["name"] == "sample_id"
    assert version.encoding == "utf-8-sig" and types_of(version)["a260_230"] == "float"


# --- Read options at upload ----------------------------------------------------------------

def test_overrides_at_upload_change_the_result_and_survive_revalidation(api, dataset, scientist):
    frame = generate_submissions(rows=120, seed=5)
    # A LIMS export with a title line above the header.
    content = ("LIMS export 2026-01-05\n" + frame.to_csv(index=False, sep="|")).encode()
    body = upload(api, dataset, "lims.csv", content, header_row="2", delimiter="|",
                  column_types='{"freeze_thaw_cycles": "categorical"}').json()
    assert body["read_options"]["header_row"] == 2 and body["read_options"]["delimiter"] == "|"
    version = validated(body["id"])
    assert version.status == "valid", version.status_reason
    types = types_of(version)
    assert version.schema["columns"][0]["name"] == "sample_id"
    assert types["freeze_thaw_cycles"] == "categorical" and types["fragment_size_bp"] == "integer"
    services.dataset_version_revalidate(version=version, actor=scientist)
    again = validated(version.pk)
    assert types_of(again) == types and again.status == "valid"


def test_a_type_chosen_for_a_parquet_column_survives_revalidation(api, dataset, scientist):
    buffer = io.BytesIO()
    generate_submissions(rows=80, seed=8).to_parquet(buffer, index=False)
    body = upload(api, dataset, "lab.parquet", buffer.getvalue(),
                  column_types='{"freeze_thaw_cycles": "categorical"}').json()
    version = validated(body["id"])
    assert types_of(version)["freeze_thaw_cycles"] == "categorical"
    services.dataset_version_revalidate(version=version, actor=scientist)
    assert types_of(validated(version.pk))["freeze_thaw_cycles"] == "categorical"


def test_a_decimal_override_reads_what_detection_would_not(api, dataset):
    # A tab file whose numbers all have three digits after a comma is
    # ambiguous ("1,250" may be 1250); detection leaves it to the user.
    frame = generate_submissions(rows=60, seed=9)[["sample_id", "qc_pass"]]
    frame["mass_g"] = [f"{v:.3f}".replace(".", ",") for v in np.linspace(1, 9, len(frame))]
    content = frame.to_csv(index=False, sep="\t").encode()
    detected = validated(upload(api, dataset, "a.tsv", content).json()["id"])
    assert types_of(detected)["mass_g"] != "float"
    overridden = validated(upload(api, dataset, "b.tsv", content + b"\n", decimal=",").json()["id"])
    assert types_of(overridden)["mass_g"] == "float"


@pytest.mark.parametrize(("field", "value"), [("encoding", "klingon-8"), ("delimiter", ";;;"),
                                              ("decimal", "x"), ("header_row", "0"),
                                              ("column_types", '{"rin": "complex"}')])
def test_malformed_read_options_are_400_and_store_nothing(api, dataset, field, value):
    response = upload(api, dataset, "s.csv", european_export(rows=40), **{field: value})
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "invalid_read_options" and field in error["details"]["fields"]
    assert DatasetVersion.objects.count() == 0 and stored_files() == set()


def test_a_wrong_encoding_override_is_refused(api, dataset):
    response = upload(api, dataset, "s.csv", european_export(rows=40), encoding="utf-8")
    assert response.status_code == 400 and response.json()["error"]["code"] == "wrong_encoding"


# --- Excel ------------------------------------------------------------------------------------

def workbook(frames: dict) -> bytes:
    buffer = io.BytesIO()
    import pandas as pd

    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        for name, frame in frames.items():
            frame.to_excel(writer, sheet_name=name, index=False)
    return buffer.getvalue()


def test_an_xlsx_upload_reads_the_first_or_a_named_sheet(api, dataset):
    first = generate_submissions(rows=100, seed=1)
    second = generate_submissions(rows=70, seed=2)
    content = workbook({"Q1": first, "Q2": second})
    version = validated(upload(api, dataset, "lab.xlsx", content).json()["id"])
    assert version.status == "valid", version.status_reason
    assert version.row_count == 100 and types_of(version)["rin"] == "float"
    assert types_of(version)["submitted_at"] == "datetime"
    named = upload(api, dataset, "lab-q2.xlsx", content + b"", sheet="Q2")
    # Same bytes are the same version: a sheet is chosen on a different file.
    assert named.status_code == 200
    other = workbook({"Q1": first.head(10), "Q2": second})
    response = upload(api, dataset, "lab-q2.xlsx", other, sheet="Q2")
    assert response.status_code == 201, response.json()
    assert response.json()["read_options"]["sheet"] == "Q2"
    assert validated(response.json()["id"]).row_count == 70
    missing = upload(api, dataset, "lab-q3.xlsx", other + b"", sheet="Q3")
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "unknown_sheet"


def test_formulas_are_not_evaluated_and_zip_bombs_are_refused(api, dataset):
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["sample_id", "qc_pass", "mass"])
    for i in range(60):
        sheet.append([f"S{i}", i % 2, f"=1+{i}"])  # no cached value: never computed here
    buffer = io.BytesIO()
    book.save(buffer)
    version = validated(upload(api, dataset, "formulas.xlsx", buffer.getvalue()).json()["id"])
    mass = next(c for c in version.schema["columns"] if c["name"] == "mass")
    assert mass["null_share"] == 1.0

    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"0" * (300 * 1024 * 1024))
    response = upload(api, dataset, "bomb.xlsx", bomb.getvalue())
    assert response.status_code == 400 and response.json()["error"]["code"] == "xlsx_too_large"
    assert DatasetVersion.objects.filter(original_filename="bomb.xlsx").count() == 0


def test_a_workbook_with_xml_entities_is_refused(api, dataset):
    source = zipfile.ZipFile(io.BytesIO(workbook({"Q1": generate_submissions(rows=20, seed=1)})))
    laughs = ('<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">'
              + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8))
              + ']><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
              '<row r="1"><c r="A1" t="inlineStr"><is><t>&i;</t></is></c></row></sheetData></worksheet>')
    bad = io.BytesIO()
    with zipfile.ZipFile(bad, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for item in source.infolist():
            data = laughs.encode() if item.filename == "xl/worksheets/sheet1.xml" else source.read(item.filename)
            archive.writestr(item.filename, data)
    response = upload(api, dataset, "laughs.xlsx", bad.getvalue())
    assert response.status_code == 400 and response.json()["error"]["code"] == "not_xlsx"
    assert DatasetVersion.objects.count() == 0 and stored_files() == set()


# --- Preview ------------------------------------------------------------------------------------

def test_the_preview_shows_types_and_rows_and_writes_nothing(api, dataset):
    response = api.post(f"/api/v1/datasets/{dataset.pk}/preview/",
                        {"file": SimpleUploadedFile("de.csv", european_export(rows=50)),
                         "column_types": '{"priority": "text"}'}, format="multipart")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["read_options"]["decimal"] == "," and body["read_options"]["encoding"] == "cp1252"
    types = {c["name"]: c["type"] for c in body["columns"]}
    assert types["rin"] == "float" and types["priority"] == "text"
    assert len(body["rows"]) == 20 and isinstance(body["rows"][0]["a260_280"], float)
    assert DatasetVersion.objects.count() == 0 and stored_files() == set()
    bad = api.post(f"/api/v1/datasets/{dataset.pk}/preview/",
                   {"file": SimpleUploadedFile("de.csv", b"a;b\n1;2\n"), "delimiter": "abc"}, format="multipart")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_read_options"


# --- Schema consistency ----------------------------------------------------------------------------

@pytest.fixture
def reference_version(api, dataset):
    content = generate_submissions(rows=300, seed=11).to_csv(index=False).encode()
    version = validated(upload(api, dataset, "reference.csv", content).json()["id"])
    assert version.status == "valid", version.status_reason
    return version


def test_free_text_notes_uploaded_to_a_submissions_dataset_are_invalid(api, dataset, reference_version):
    notes = b"Called the Bergen lab about the late samples.\nThey will resend on Monday.\nTwo tubes cracked.\n"
    version = validated(upload(api, dataset, "notes.txt", notes).json()["id"])
    assert version.status == "invalid"
    assert "Schema check failed" in version.status_reason
    assert "'qc_pass' is missing" in version.status_reason


def test_a_renamed_column_is_reported_as_such(api, dataset, reference_version):
    frame = generate_submissions(rows=300, seed=12).rename(columns={"a260_280": "a260_280_ratio"})
    version = validated(upload(api, dataset, "renamed.csv", frame.to_csv(index=False).encode()).json()["id"])
    assert version.status == "invalid"
    failed = [r for r in version.expectation_results if r["kind"] == "schema_consistency"]
    assert [r["observed"] for r in failed] == [{"missing": "a260_280", "renamed_to": "a260_280_ratio"}]
    assert "was it renamed?" in version.status_reason


def test_a_type_change_fails_and_the_severity_and_pin_are_configurable(api, dataset, reference_version):
    frame = generate_submissions(rows=300, seed=13)
    frame["rin"] = frame["rin"].map(lambda v: "n.d." if np.isnan(v) else f"RIN {v}")
    version = validated(upload(api, dataset, "text-rin.csv", frame.to_csv(index=False).encode()).json()["id"])
    assert version.status == "invalid" and "'rin' was float" in version.status_reason
    response = api.patch(f"/api/v1/datasets/{dataset.pk}/", {"schema_check_severity": "warning",
                                                            "schema_version": reference_version.pk},
                         format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["schema_version"] == reference_version.pk
    services.dataset_version_revalidate(version=version, actor=Dataset.objects.get().owner)
    again = validated(version.pk)
    assert again.status == "valid", again.status_reason
    assert any(r["kind"] == "schema_consistency" and r["severity"] == "warning" for r in again.expectation_results)


# --- Leakage --------------------------------------------------------------------------------------------

def test_a_column_recorded_after_the_outcome_is_flagged(api, dataset):
    frame = generate_submissions(rows=400, seed=21)
    rng = np.random.default_rng(0)
    frame["qc_review_minutes"] = np.where(frame["qc_pass"] == 1, 5.0, 45.0) + rng.normal(0, 2, len(frame))
    version = validated(upload(api, dataset, "leaky.csv", frame.to_csv(index=False).encode()).json()["id"])
    assert version.status == "valid", version.status_reason
    leaks = version.quality_report["leakage"]
    assert [leak["column"] for leak in leaks] == ["qc_review_minutes"]
    assert leaks[0]["value"] >= 0.98


# --- Who may preview or pin ------------------------------------------------------------------------

def test_only_users_who_may_upload_preview_and_pin(make_user, client_for, api, dataset, reference_version):
    from django.db import transaction

    from apps.core.permissions import make_private

    content = european_export(rows=40)
    viewer = client_for(make_user("Viewer", username="v"))
    preview = viewer.post(f"/api/v1/datasets/{dataset.pk}/preview/",
                          {"file": SimpleUploadedFile("de.csv", content)}, format="multipart")
    assert preview.status_code == 403 and preview.json()["error"]["code"] == "permission_denied"
    pin = viewer.patch(f"/api/v1/datasets/{dataset.pk}/", {"schema_check_severity": "warning"}, format="json")
    assert pin.status_code == 403
    with transaction.atomic():
        make_private(dataset)
    outsider = client_for(make_user("Data Scientist", username="outsider"))
    hidden = outsider.post(f"/api/v1/datasets/{dataset.pk}/preview/",
                           {"file": SimpleUploadedFile("de.csv", content)}, format="multipart")
    assert hidden.status_code == 404
    other = services.dataset_create(actor=Dataset.objects.get().owner, name="other", target_column="qc_pass")
    foreign = api.patch(f"/api/v1/datasets/{other.pk}/", {"schema_version": reference_version.pk}, format="json")
    assert foreign.status_code == 400 and "schema_version" in foreign.json()["error"]["details"]["fields"]
    assert Dataset.objects.get(pk=dataset.pk).schema_check_severity == "error"
