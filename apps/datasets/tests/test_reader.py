"""dataset_version_read_frame: the stored file as a typed DataFrame."""

import io

import pandas as pd
import pytest
from django.db import transaction

from apps.core.storage import store_file
from apps.datasets.models import Dataset, DatasetVersion
from apps.datasets.selectors import dataset_version_read_frame


def _version(owner, data: bytes, *, name="reader", file_format="csv", schema=None, encoding="utf-8", delimiter=""):
    with transaction.atomic():
        dataset, _ = Dataset.objects.get_or_create(name=name, defaults={"owner": owner})
        stored = store_file(io.BytesIO(data), f"datasets/test/{name}.{file_format}")
        number = dataset.versions.count() + 1
        return DatasetVersion.objects.create(
            dataset=dataset, version=number, file=stored.name, original_filename=f"x.{file_format}",
            file_format=file_format, encoding=encoding, delimiter=delimiter, sha256=stored.sha256,
            size_bytes=stored.size, created_by=owner, schema=schema,
        )


@pytest.mark.django_db
def test_reads_with_schema_dtypes_columns_and_nrows(make_user, reference_csv, reference_profile):
    owner = make_user("Data Scientist")
    _sniffed, result = reference_profile
    version = _version(owner, reference_csv.read_bytes(), schema=result.schema, delimiter=",")
    frame = dataset_version_read_frame(version=version)
    assert len(frame) == result.row_count
    assert frame["qc_pass"].dtype == "int64"
    assert frame["a260_280"].dtype == "float64"
    assert frame["freeze_thaw_cycles"].dtype == "int64"
    assert str(frame["sample_type"].dtype) == "str"
    assert pd.api.types.is_datetime64_any_dtype(frame["submitted_at"])
    kit = next(c for c in result.schema["columns"] if c["name"] == "extraction_kit")
    assert frame["extraction_kit"].isna().sum() == round(kit["null_share"] * len(frame))
    original = pd.read_csv(reference_csv)
    assert (frame["rin"].fillna(-1) == original["rin"].fillna(-1)).all()

    part = dataset_version_read_frame(version=version, columns=["rin", "sample_id"], nrows=10)
    assert list(part.columns) == ["rin", "sample_id"] and len(part) == 10
    assert list(part["sample_id"]) == list(original["sample_id"][:10])


@pytest.mark.django_db
def test_reads_a_version_without_schema_latin1_semicolons_and_booleans(make_user):
    owner = make_user("Data Scientist")
    text = "lab;ok;value;when\nZürich;yes;1,5;2025-01-02\nMálaga;no;2;2025-01-03\nOslo;;3;\n"
    version = _version(owner, text.encode("cp1252"), name="latin", encoding="cp1252")
    frame = dataset_version_read_frame(version=version)
    assert list(frame["lab"]) == ["Zürich", "Málaga", "Oslo"]
    assert frame["ok"].isna().tolist() == [False, False, True]
    assert frame["ok"].tolist()[:2] == [True, False]
    assert str(frame["ok"].dtype) == "boolean"
    assert pd.api.types.is_datetime64_any_dtype(frame["when"])


@pytest.mark.django_db
def test_reads_parquet_and_refuses_unknown_columns(make_user, reference_frame, tmp_path):
    from apps.core.errors import ValidationFailed

    owner = make_user("Data Scientist")
    path = tmp_path / "x.parquet"
    reference_frame.head(50).to_parquet(path, index=False)
    version = _version(owner, path.read_bytes(), name="pq", file_format="parquet", encoding="")
    frame = dataset_version_read_frame(version=version)
    assert len(frame) == 50 and frame["qc_pass"].dtype == "int64"
    with pytest.raises(ValidationFailed, match="no_such"):
        dataset_version_read_frame(version=version, columns=["no_such"])
