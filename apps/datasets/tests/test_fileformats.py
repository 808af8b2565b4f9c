"""Reading files in bounded blocks, sniffing, and column conversion."""

import io

import pyarrow as pa
import pytest

from apps.datasets import fileformats
from apps.datasets.fileformats import BadFile, Sniffed, detect_encoding, iter_batches, record_blocks

QUOTED = (
    'sample_id,comment,rin\n'
    'S1,"plain",7.1\n'
    'S2,"two\nlines, and a comma",6.0\n'
    'S3,"a ""quoted"" word\nand\nthree lines",5.5\n'
    'S4,,8.0\n'
)


@pytest.mark.parametrize("block_size", [7, 16, 64, 1 << 20])
def test_blocks_end_on_record_boundaries_even_inside_quotes(block_size):
    blocks = [block for block, _ in record_blocks(io.BytesIO(QUOTED.encode()), block_size=block_size)]
    assert b"".join(blocks) == QUOTED.encode()
    for block in blocks:
        assert block.count(b'"') % 2 == 0, "no block cuts a quoted field"
    sniffed = Sniffed(file_format="csv", encoding="utf-8", delimiter=",", columns=["sample_id", "comment", "rin"])
    rows = []
    for batch, _ in iter_batches(io.BytesIO(QUOTED.encode()), sniffed=sniffed, block_size=block_size):
        rows += batch.to_pylist()
    assert [r["sample_id"] for r in rows] == ["S1", "S2", "S3", "S4"]
    assert rows[1]["comment"] == "two\nlines, and a comma"
    assert rows[2]["comment"] == 'a "quoted" word\nand\nthree lines'
    assert rows[3]["comment"] is None


def test_progress_is_the_share_of_bytes_consumed():
    data = ("a,b\n" + "".join(f"{i},{i * 2}\n" for i in range(5000))).encode()
    sniffed = Sniffed(file_format="csv", encoding="utf-8", delimiter=",", columns=["a", "b"])
    fractions = [f for _, f in iter_batches(io.BytesIO(data), sniffed=sniffed, total_bytes=len(data),
                                            block_size=4096)]
    assert len(fractions) > 5
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and fractions[0] < 0.2


def test_latin1_blocks_are_decoded_and_bad_rows_counted():
    data = "lab;rin\nZürich;7\nMálaga;6;extra\nTromsø\nÅrhus;8\n".encode("cp1252")
    sniffed = Sniffed(file_format="csv", encoding="cp1252", delimiter=";", columns=["lab", "rin"])
    bad = fileformats.BadRows()
    rows = [r for batch, _ in iter_batches(io.BytesIO(data), sniffed=sniffed, bad_rows=bad, block_size=8)
            for r in batch.to_pylist()]
    assert [r["lab"] for r in rows] == ["Zürich", "Århus"]
    assert bad.count == 2
    with pytest.raises(BadFile) as info:
        list(iter_batches(io.BytesIO(data), sniffed=sniffed))
    assert info.value.code == "inconsistent_columns"


@pytest.mark.parametrize(
    ("head", "utf8_valid", "expected"),
    [
        (b"a,b\n1,2\n", True, "utf-8"),
        (b"\xef\xbb\xbfa,b\n1,2\n", True, "utf-8-sig"),
        ("lab\nZürich\n".encode("cp1252"), False, "cp1252"),
        (b"lab\nZ\xfcrich \x81\n", False, "latin-1"),  # 0x81 is undefined in cp1252
    ],
)
def test_encoding_detection(head, utf8_valid, expected):
    assert detect_encoding(head, utf8_valid=utf8_valid) == expected


@pytest.mark.parametrize(
    ("head", "code"),
    [
        ("a,b\n".encode("utf-16"), "unsupported_encoding"),
        (b"a,b\n\x00\x01\x02", "binary_file"),
        (bytes(range(128, 160)) * 50, "unsupported_encoding"),
    ],
)
def test_encodings_we_refuse(head, code):
    with pytest.raises(BadFile) as info:
        detect_encoding(head, utf8_valid=False)
    assert info.value.code == code


def test_sniff_finds_semicolons_and_tabs_in_a_csv():
    text = b"sample_id;rin\nS1;7,1\nS2;6,9\n"
    sniffed = fileformats.sniff("", file_format="csv", head=text, utf8_valid=True, size=len(text))
    assert sniffed.delimiter == ";" and sniffed.columns == ["sample_id", "rin"]
    text = b"sample_id\trin\nS1\t7.1\n"
    assert fileformats.sniff("", file_format="csv", head=text, utf8_valid=True, size=len(text)).delimiter == "\t"


def test_convert_column_types():
    strings = pa.array([" 12", "7", None, "-3"])
    assert fileformats.convert_column(strings, "integer").tolist()[:2] == [12.0, 7.0]
    assert str(fileformats.convert_column(pa.array(["1", "2"]), "integer").dtype) == "int64"
    booleans = fileformats.convert_column(pa.array(["Yes", "no", None, "TRUE"]), "boolean")
    assert str(booleans.dtype) == "boolean" and booleans.isna().tolist() == [False, False, True, False]
    dates = fileformats.convert_column(pa.array(["2025-01-06", "2025-01-06T08:00:00Z", None]), "datetime")
    assert str(dates.dt.tz) == "UTC" and dates.isna().tolist() == [False, False, True]
    assert fileformats.convert_column(pa.array(["a", None]), "categorical").isna().tolist() == [False, True]


def test_nested_parquet_columns_are_profiled_and_read_as_text(tmp_path):
    import pyarrow.parquet as pq

    from apps.datasets.tests.conftest import profile_path

    path = tmp_path / "nested.parquet"
    pq.write_table(pa.table({"sample_id": ["a", "b", "c"], "wells": [[1, 2], [3], None], "n": [1, 2, 3]}), path)
    sniffed, result = profile_path(path, target="n")
    types = {c["name"]: c["type"] for c in result.schema["columns"]}
    assert result.problems == [] and types["n"] == "integer" and types["wells"] in ("categorical", "text")
    with open(path, "rb") as handle:
        frame = fileformats.read_frame(handle, sniffed=sniffed, column_types=types)
    assert frame["wells"].tolist()[:2] == ["[1, 2]", "[3]"] and frame["wells"].isna().tolist()[2]
