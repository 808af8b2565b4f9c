"""The datasets API refusing bad input clearly (a 4xx in the one error shape)
and leaving nothing behind: empty, binary, mislabelled and over-large files,
streams without a length, and a failing database write."""

from __future__ import annotations

import io
import os

import pytest

from apps.datasets import services
from apps.datasets.generator import generate_submissions
from apps.datasets.models import DatasetVersion
from apps.datasets.tests.helpers import stored_files, upload, validated

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("isolated_storage")]


def _assert_refused(response, code: str, status: int = 400):
    body = response.json()
    assert response.status_code == status, body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]


@pytest.mark.parametrize(
    ("name", "content", "code"),
    [
        ("empty.csv", b"", "empty_file"),
        ("blank.csv", b"\n\n  \n", "empty_file"),
        ("header-only.csv", b"sample_id,qc_pass\n", "no_data_rows"),
        ("header-only-crlf.tsv", b"sample_id\tqc_pass\r\n\r\n", "no_data_rows"),
        ("garbage.csv", bytes(range(256)) * 40, "binary_file"),
        ("report.xlsx", b"PK\x03\x04 not a table", "not_xlsx"),
        ("report.xls", b"\xd0\xcf\x11\xe0 old excel", "unsupported_format"),
        ("noextension", b"a,b\n1,2\n", "unsupported_format"),
        ("dupes.csv", b"sample_id,rin,rin\nS1,7.1,7.2\n", "duplicate_columns"),
        ("nameless.csv", b"sample_id,,rin\nS1,x,7.2\n", "empty_column_name"),
        ("utf16.csv", "sample_id,lab\nS1,Zürich\n".encode("utf-16"), "unsupported_encoding"),
        ("fake.parquet", b"sample_id,qc_pass\nS1,1\n", "not_parquet"),
    ],
)
def test_bad_files_are_refused_clearly_and_leave_nothing(api, dataset, name, content, code):
    before = stored_files()
    _assert_refused(upload(api, dataset, name, content), code)
    assert DatasetVersion.objects.count() == 0
    assert stored_files() == before


def test_random_binary_garbage_is_refused(api, dataset):
    garbage = os.urandom(8192)
    response = upload(api, dataset, "instrument-dump.csv", garbage)
    assert response.status_code == 400
    assert response.json()["error"]["code"] in ("binary_file", "unsupported_encoding")
    assert DatasetVersion.objects.count() == 0 and stored_files() == set()


def test_parquet_named_csv_is_refused_with_the_fix(api, dataset, tmp_path):
    path = tmp_path / "x.parquet"
    generate_submissions(rows=10, seed=1).to_parquet(path, index=False)
    response = upload(api, dataset, "export.csv", path.read_bytes())
    _assert_refused(response, "wrong_extension")
    assert ".parquet" in response.json()["error"]["message"]


def test_missing_file_field_is_a_400(api, dataset):
    response = api.post(f"/api/v1/datasets/{dataset.pk}/versions/", {"note": "x"}, format="multipart")
    _assert_refused(response, "validation_failed")


def test_inconsistent_column_counts_make_an_invalid_version_with_the_reason(api, dataset):
    content = b"sample_id,rin,din\nS1,7.1,3\nS2,7.3\nS3,6.9,4,extra\nS4,8.0,5\n"
    body = upload(api, dataset, "ragged.csv", content).json()
    version = validated(body["id"])
    assert version.status == "invalid"
    assert "2 row(s) do not have the 3 fields" in version.status_reason
    assert version.quality_report["bad_rows"]["count"] == 2


def test_latin1_text_is_detected_and_decoded(api, dataset):
    text = "sample_id;submitting_lab;rin\nS1;Zürich Génomique;7,1\nS2;Málaga;6,9\nS3;Tromsø;8,0\n"
    body = upload(api, dataset, "latin1.csv", text.encode("cp1252")).json()
    assert body["encoding"] == "cp1252" and body["delimiter"] == ";"
    version = validated(body["id"])
    assert version.status == "valid", version.status_reason
    labs = next(c for c in version.schema["columns"] if c["name"] == "submitting_lab")
    assert set(labs["stats"]["counts"]) == {"Zürich Génomique", "Málaga", "Tromsø"}


def test_mostly_numbers_with_some_text_is_reported_as_mixed_types(api, dataset, scientist):
    rows = [f"S{i},{5 + (i % 40) / 10:.1f}" for i in range(200)]
    rows[17] = "S17,n.d."
    rows[99] = "S99,<0.5"
    content = ("sample_id,concentration_ng_ul\n" + "\n".join(rows) + "\n").encode()
    version = validated(upload(api, dataset, "typos.csv", content).json()["id"])
    assert version.status == "invalid"
    assert "concentration_ng_ul" in version.status_reason and "mixed types" in version.status_reason
    mixed = version.quality_report["mixed_types"][0]
    assert mixed["column"] == "concentration_ng_ul" and mixed["text_count"] == 2
    assert set(mixed["examples"]) == {"n.d.", "<0.5"}
    assert mixed["numeric_share"] == pytest.approx(0.99)
    # Declaring the column as text accepts it as it is.
    services.expectation_create(dataset=dataset, actor=scientist, kind="column_type",
                                column="concentration_ng_ul", params={"type": "text"})
    services.dataset_version_revalidate(version=version, actor=scientist)
    assert validated(version.pk).status == "valid"


def test_upload_over_the_limit_is_a_413_and_stores_nothing(api, dataset, settings, lab_csv):
    settings.DATASET_MAX_UPLOAD_SIZE = 1000
    _assert_refused(upload(api, dataset, "big.csv", lab_csv), "payload_too_large", 413)
    assert DatasetVersion.objects.count() == 0 and stored_files() == set()


def test_a_stream_without_length_is_cut_off_at_the_limit(dataset, scientist, settings):
    """What the service does with a body of unknown length (chunked upload):
    it stops copying at the limit and leaves no file or row."""
    settings.DATASET_MAX_UPLOAD_SIZE = 64 * 1024

    class Endless(io.RawIOBase):
        def readable(self):
            return True

        def readinto(self, buffer):
            line = b"S1,7.1,3\n" * (len(buffer) // 9)
            buffer[: len(line)] = line
            return len(line)

    from apps.core.errors import PayloadTooLarge

    with pytest.raises(PayloadTooLarge):
        services.dataset_version_upload(dataset=dataset, actor=scientist, file=io.BufferedReader(Endless()),
                                        filename="stream.csv")
    assert DatasetVersion.objects.count() == 0 and stored_files() == set()


def test_the_upload_handler_stops_a_body_at_the_limit():
    from django.test import RequestFactory

    from apps.core.errors import PayloadTooLarge
    from apps.datasets.uploadhandlers import LimitedTemporaryFileUploadHandler

    handler = LimitedTemporaryFileUploadHandler(RequestFactory().post("/"), limit=10_000)
    handler.new_file("file", "x.csv", "text/csv", None)
    handler.receive_data_chunk(b"a" * 8000, 0)
    temp_path = handler.file.temporary_file_path()
    with pytest.raises(PayloadTooLarge):
        handler.receive_data_chunk(b"a" * 8000, 8000)
    assert not os.path.exists(temp_path), "the partial spool file is removed"


def test_a_failing_database_write_leaves_no_orphan_file(dataset, scientist, lab_csv, monkeypatch):
    def boom(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr("apps.datasets.services.versions.audit_record", boom)
    with pytest.raises(RuntimeError):
        services.dataset_version_upload(dataset=dataset, actor=scientist, file=io.BytesIO(lab_csv),
                                        filename="s.csv")
    assert DatasetVersion.objects.count() == 0
    assert stored_files() == set()
