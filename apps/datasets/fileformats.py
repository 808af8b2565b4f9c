"""Reading lab tables (CSV, TSV, Parquet) safely and in bounded memory.

No Django here. Three jobs:

* **Inspect an upload while it streams** (``UploadInspector``): SHA-256, size
  against the limit, whether the whole byte stream is valid UTF-8 (an
  incremental decoder, so a Latin-1 byte at the end of a 1 GB file is still
  seen), and the first bytes for sniffing.
* **Sniff** the stored file (``sniff``): refuse empty files, binary garbage,
  UTF-16, undecodable text, duplicate or empty column names and files without
  a data row, with a clear ``BadFile`` code and message.
* **Read** it in record batches (``iter_batches``) — every CSV field as a
  string, so that type inference sees what the file really holds — and
  convert columns to the types a schema says (``convert_column``,
  ``read_frame``). Profiling and training read through the same functions,
  so they agree on what a number, a missing value or a date is.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

EXTENSIONS = {".csv": "csv", ".txt": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet"}
# The tokens pandas reads as missing by default, so a file means the same
# thing here as in a notebook.
NA_VALUES = [
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A",
    "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
]
TRUE_VALUES = ("true", "yes")
FALSE_VALUES = ("false", "no")
HEAD_BYTES = 64 * 1024
BLOCK_SIZE = 8 * 1024 * 1024
MAX_COLUMNS = 2000

_NUMBER = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"
_INTEGER = r"^\s*-?\d{1,18}\s*$"
_DATETIME = r"^\s*\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?(Z|[+-]\d{2}:?\d{2})?\s*$"
_TZ_SUFFIX = r"(Z|[+-]\d{2}:?\d{2})\s*$"
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_C1 = re.compile(rb"[\x80-\x9f]")


class BadFile(Exception):
    """The file cannot be used; ``code`` is stable, ``message`` tells the user what to do."""

    def __init__(self, code: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}


class UploadTooLarge(BadFile):
    def __init__(self, limit: int):
        super().__init__("payload_too_large", f"The file is larger than the upload limit of {limit} bytes.",
                         {"limit_bytes": limit})
        self.limit = limit


def format_for_filename(filename: str) -> str:
    """``csv``, ``tsv`` or ``parquet`` from the file name; ``BadFile`` otherwise."""
    ext = os.path.splitext(filename or "")[1].lower()
    if ext not in EXTENSIONS:
        raise BadFile(
            "unsupported_format",
            f"Files ending in {ext or '(no extension)'!r} are not supported; upload .csv, .tsv or .parquet.",
            {"extension": ext, "supported": sorted(EXTENSIONS)},
        )
    return EXTENSIONS[ext]


class UploadInspector:
    """Feed it the upload's chunks in order; it hashes, counts, checks the
    size limit and tracks UTF-8 validity over the whole stream."""

    def __init__(self, *, limit: int | None = None):
        self.limit = limit
        self.size = 0
        self.head = b""
        self._sha = hashlib.sha256()
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self.utf8_valid = True

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.limit is not None and self.size > self.limit:
            raise UploadTooLarge(self.limit)
        self._sha.update(chunk)
        if len(self.head) < HEAD_BYTES:
            self.head += chunk[: HEAD_BYTES - len(self.head)]
        if self.utf8_valid:
            try:
                self._utf8.decode(chunk)
            except UnicodeDecodeError:
                self.utf8_valid = False

    def finish(self) -> None:
        if self.utf8_valid:
            try:
                self._utf8.decode(b"", final=True)
            except UnicodeDecodeError:
                self.utf8_valid = False

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()


def copy_inspecting(source, target, *, limit: int | None, chunk_size: int = 1024 * 1024) -> UploadInspector:
    """Copy a binary stream to ``target`` chunk by chunk, inspecting it;
    raises ``UploadTooLarge`` as soon as the limit is passed."""
    inspector = UploadInspector(limit=limit)
    chunks = source.chunks(chunk_size) if hasattr(source, "chunks") else iter(lambda: source.read(chunk_size), b"")
    for chunk in chunks:
        inspector.feed(chunk)
        target.write(chunk)
    inspector.finish()
    target.flush()
    return inspector


@dataclass
class Sniffed:
    """What the file looks like: format, text encoding, delimiter, header."""

    file_format: str
    encoding: str = ""
    delimiter: str = ""
    columns: list[str] = field(default_factory=list)
    num_rows: int | None = None  # known for Parquet without reading the data


def detect_encoding(head: bytes, *, utf8_valid: bool) -> str:
    """``utf-8``, ``utf-8-sig`` (BOM), or ``cp1252``/``latin-1`` for 8-bit lab
    exports; refuses binary data and UTF-16 with a message saying what to do."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise BadFile("unsupported_encoding", "The file is UTF-16/UTF-32 text; save it as UTF-8 CSV and upload again.")
    if b"\x00" in head or len(_CONTROL.findall(head)) > max(2, len(head) // 1000):
        raise BadFile("binary_file", "The file is binary data, not CSV/TSV text. Upload a .csv, .tsv or .parquet file.")
    if utf8_valid:
        return "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"
    # Not UTF-8. Windows-1252 (the Latin-1 superset Excel writes) has printable
    # characters where Latin-1 has C1 control codes; text with many of those
    # is not an 8-bit Western export but something we would decode wrongly.
    try:
        head.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        pass
    if len(_C1.findall(head)) <= max(2, len(head) // 1000):
        return "latin-1"
    raise BadFile(
        "unsupported_encoding",
        "The file is neither UTF-8 nor Latin-1/Windows-1252 text. Save it as UTF-8 and upload again.",
    )


def _decoded_head(head: bytes, encoding: str, complete: bool) -> str:
    if not complete:
        # Drop a line cut in the middle (and a multi-byte character with it).
        cut = head.rfind(b"\n")
        head = head[: cut + 1] if cut > 0 else head
    return head.decode(encoding, errors="replace")


def _delimiter_for(text: str, file_format: str) -> str:
    if file_format == "tsv":
        return "\t"
    first_lines = "\n".join(text.splitlines()[:50])
    try:
        return csv.Sniffer().sniff(first_lines, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _check_header(columns: list[str]) -> None:
    if not columns or all(not c.strip() for c in columns):
        raise BadFile("no_header", "The first line has no column names.")
    if len(columns) > MAX_COLUMNS:
        raise BadFile("too_many_columns", f"The file has {len(columns)} columns; at most {MAX_COLUMNS} are supported.")
    empty = [i + 1 for i, c in enumerate(columns) if not c.strip()]
    if empty:
        raise BadFile("empty_column_name", f"Column {empty[0]} has no name in the header.",
                      {"positions": empty[:20]})
    seen, duplicates = set(), []
    for name in columns:
        if name in seen and name not in duplicates:
            duplicates.append(name)
        seen.add(name)
    if duplicates:
        raise BadFile("duplicate_columns",
                      f"Column names must be unique; repeated: {', '.join(repr(d) for d in duplicates[:10])}.",
                      {"columns": duplicates})


def sniff(path: str, *, file_format: str, head: bytes, utf8_valid: bool, size: int) -> Sniffed:
    """Check a stored upload before a version is made; raises ``BadFile``."""
    if size == 0:
        raise BadFile("empty_file", "The file is empty.")
    is_parquet_magic = head[:4] == b"PAR1"
    if file_format == "parquet":
        if not is_parquet_magic:
            raise BadFile("not_parquet", "The file ends in .parquet but is not a Parquet file.")
        return _sniff_parquet(path)
    if is_parquet_magic:
        raise BadFile("wrong_extension", "The file is Parquet but its name ends in .csv/.tsv; rename it to .parquet.")
    encoding = detect_encoding(head, utf8_valid=utf8_valid)
    text = _decoded_head(head, encoding, complete=size <= len(head))
    if not text.strip():
        raise BadFile("empty_file", "The file contains only blank lines.")
    delimiter = _delimiter_for(text, file_format)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    columns = [c.strip() for c in next(reader)]
    _check_header(columns)
    has_row = any(any(value.strip() for value in row) for row in reader)
    if not has_row and size <= len(head):
        raise BadFile("no_data_rows", "The file has a header but no data rows.", {"columns": columns})
    if len(columns) == 1 and file_format == "csv" and "\t" in text.splitlines()[0]:
        delimiter = "\t"
        columns = [c.strip() for c in text.splitlines()[0].split("\t")]
        _check_header(columns)
    return Sniffed(file_format=file_format, encoding=encoding, delimiter=delimiter, columns=columns)


def _sniff_parquet(path: str) -> Sniffed:
    try:
        parquet = pq.ParquetFile(path)
        names = list(parquet.schema_arrow.names)
        num_rows = parquet.metadata.num_rows
    except (pa.ArrowException, OSError) as exc:
        raise BadFile("not_parquet", f"The Parquet file cannot be read: {exc}.")
    _check_header(names)
    if num_rows == 0:
        raise BadFile("no_data_rows", "The Parquet file has columns but no rows.", {"columns": names})
    return Sniffed(file_format="parquet", columns=names, num_rows=num_rows)


# --- Reading in batches -----------------------------------------------------------

def record_blocks(raw, *, block_size: int = BLOCK_SIZE) -> Iterator[tuple[bytes, int]]:
    """Split a CSV byte stream into blocks of about ``block_size`` bytes that
    end on a record boundary; yields ``(block, bytes consumed so far)``.

    We cut the file ourselves rather than hand it to Arrow's streaming reader,
    which reads (and parses) ahead without bound, i.e. the whole file. A
    newline ends a record unless it is inside a quoted field: with RFC 4180
    quoting (a literal quote is written twice) that is the case exactly when
    an odd number of quote characters precede it in the block, which starts
    on a record boundary. In UTF-8 and single-byte encodings neither byte can
    be part of another character."""
    pending = b""
    consumed = 0
    while True:
        data = raw.read(block_size)
        consumed += len(data)
        if not data:
            if pending:
                yield pending, consumed
            return
        buffer = pending + data
        end = len(buffer)
        cut = -1
        while True:
            newline = buffer.rfind(b"\n", 0, end)
            if newline < 0:
                break
            if buffer.count(b'"', 0, newline) % 2 == 0:
                cut = newline + 1
                break
            end = newline
        if cut < 0:  # one record longer than the block: keep reading
            pending = buffer
            continue
        pending = buffer[cut:]
        yield buffer[:cut], consumed - len(pending)


@dataclass
class BadRows:
    """Rows whose field count differs from the header's (skipped while reading)."""

    count: int = 0
    examples: list[dict] = field(default_factory=list)

    def handler(self, row) -> str:
        self.count += 1
        if len(self.examples) < 5:
            self.examples.append({"expected": row.expected_columns, "actual": row.actual_columns,
                                  "text": (row.text or "")[:200]})
        return "skip"


def iter_batches(
    fileobj,
    *,
    sniffed: Sniffed,
    columns: list[str] | None = None,
    bad_rows: BadRows | None = None,
    total_bytes: int | None = None,
    block_size: int = BLOCK_SIZE,
) -> Iterator[tuple[pa.RecordBatch, float]]:
    """Yield ``(record batch, fraction of the file read)``. CSV/TSV fields
    stay strings (missing tokens become nulls); Parquet keeps its own types.
    Rows with the wrong number of fields are counted in ``bad_rows`` and
    skipped, or raise ``BadFile`` when no ``bad_rows`` is given."""
    if sniffed.file_format == "parquet":
        parquet = pq.ParquetFile(fileobj)
        total = max(parquet.metadata.num_rows, 1)
        done = 0
        for batch in parquet.iter_batches(batch_size=65536, columns=columns):
            done += batch.num_rows
            yield batch, min(done / total, 1.0)
        return
    wanted = columns or sniffed.columns

    refused: list[BadFile] = []

    def refuse(row):
        # Arrow wraps exceptions raised here; remember why and stop the parse.
        refused.append(BadFile(
            "inconsistent_columns",
            f"A row has {row.actual_columns} fields but the header has {row.expected_columns}: "
            f"{(row.text or '')[:120]!r}."))
        return "error"

    parse_options = pa_csv.ParseOptions(
        delimiter=sniffed.delimiter or ",", newlines_in_values=True,
        invalid_row_handler=bad_rows.handler if bad_rows is not None else refuse,
    )
    convert_options = pa_csv.ConvertOptions(
        column_types={name: pa.string() for name in sniffed.columns},
        include_columns=wanted,
        null_values=NA_VALUES,
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    encoding = sniffed.encoding or "utf-8"
    decoder = None if encoding in ("utf-8", "utf-8-sig") else codecs.getincrementaldecoder(encoding)()
    first = True
    for raw_block, consumed in record_blocks(fileobj, block_size=block_size):
        block = raw_block[len(codecs.BOM_UTF8):] if first and raw_block.startswith(codecs.BOM_UTF8) else raw_block
        if decoder is not None:
            block = decoder.decode(block).encode("utf-8")
        read_options = pa_csv.ReadOptions(column_names=sniffed.columns, skip_rows=1 if first else 0,
                                          block_size=max(block_size, len(block) + 1))
        first = False
        if not block or block.isspace():
            continue
        try:
            table = pa_csv.read_csv(io.BytesIO(block), read_options=read_options, parse_options=parse_options,
                                    convert_options=convert_options)
        except pa.ArrowInvalid as exc:
            if refused:
                raise refused[0]
            raise BadFile("unreadable_csv", f"The file cannot be parsed as CSV: {exc}.")
        fraction = consumed / total_bytes if total_bytes else 0.0
        for batch in table.to_batches():
            yield batch, min(fraction, 1.0)


# --- Column conversions shared by profiling and reading ---------------------------

def number_mask(arr: pa.Array) -> pa.Array:
    """True where a string field is a number (int, decimal or exponent form)."""
    return pc.fill_null(pc.match_substring_regex(arr, _NUMBER), False)


def integer_mask(arr: pa.Array) -> pa.Array:
    return pc.fill_null(pc.match_substring_regex(arr, _INTEGER), False)


def boolean_masks(arr: pa.Array) -> tuple[pa.Array, pa.Array]:
    lowered = pc.utf8_lower(pc.utf8_trim_whitespace(arr))
    true = pc.fill_null(pc.is_in(lowered, value_set=pa.array(TRUE_VALUES)), False)
    false = pc.fill_null(pc.is_in(lowered, value_set=pa.array(FALSE_VALUES)), False)
    return true, false


def datetime_mask(arr: pa.Array) -> pa.Array:
    return pc.fill_null(pc.match_substring_regex(arr, _DATETIME), False)


def _null_where_not(arr: pa.Array, mask: pa.Array) -> pa.Array:
    return pc.if_else(mask, arr, pa.scalar(None, arr.type))


def strings_to_float(arr: pa.Array) -> pa.Array:
    """Numbers as float64; anything else becomes null."""
    if not pa.types.is_string(arr.type) and not pa.types.is_large_string(arr.type):
        return pc.cast(arr, pa.float64())
    try:
        # The common case, a clean number column, in one C++ pass; "inf" is
        # the only spelling this accepts that the pattern below does not,
        # and type inference never gets here with one.
        return pc.cast(arr, pa.float64())
    except pa.ArrowInvalid:
        pass
    trimmed = pc.utf8_trim_whitespace(arr)
    return pc.cast(_null_where_not(trimmed, number_mask(trimmed)), pa.float64())


def strings_to_datetime(arr: pa.Array) -> pa.Array:
    """ISO 8601 dates/times as timestamps (UTC when any value has an offset)."""
    if pa.types.is_timestamp(arr.type):
        return arr
    if pa.types.is_date(arr.type):
        return pc.cast(arr, pa.timestamp("us"))
    trimmed = pc.utf8_trim_whitespace(arr)
    valid = _null_where_not(trimmed, datetime_mask(trimmed))
    has_tz = pc.any(pc.fill_null(pc.match_substring_regex(valid, _TZ_SUFFIX), False)).as_py()
    try:
        return pc.cast(valid, pa.timestamp("us", tz="UTC") if has_tz else pa.timestamp("us"))
    except pa.ArrowInvalid:
        parsed = pd.to_datetime(pd.Series(valid.to_pylist(), dtype=object), format="ISO8601", utc=True,
                                errors="coerce")
        return pa.array(parsed.dt.as_unit("us"), type=pa.timestamp("us", tz="UTC"))


def as_strings(arr: pa.Array) -> pa.Array:
    """Any Arrow column as strings; nested Parquet types (lists, structs)
    that Arrow cannot cast become their Python text form."""
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        return arr
    try:
        return pc.cast(arr, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.array([None if value is None else str(value) for value in arr.to_pylist()], type=pa.string())


def convert_column(arr: pa.Array, column_type: str) -> pd.Series:
    """A column of a batch as the pandas dtype its schema type implies:
    integer → int64 (float64 when values are missing), float → float64,
    boolean → pandas ``boolean``, datetime → datetime64, categorical/text → str."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    is_string = pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)
    if column_type in ("integer", "float"):
        if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type):
            values = arr if column_type == "integer" else pc.cast(arr, pa.float64())
        elif is_string and column_type == "integer":
            trimmed = pc.utf8_trim_whitespace(arr)
            mask = integer_mask(trimmed)
            all_integers = pc.all(pc.or_(mask, pc.is_null(arr))).as_py()
            values = pc.cast(_null_where_not(trimmed, mask), pa.int64()) if all_integers else strings_to_float(arr)
        elif is_string:
            values = strings_to_float(arr)
        else:
            values = pc.cast(arr, pa.float64())
        series = values.to_pandas()
        if column_type == "integer" and not series.isna().any():
            return series.astype("int64")
        return series.astype("float64")
    if column_type == "boolean":
        if pa.types.is_boolean(arr.type):
            values = arr
        else:
            true, false = boolean_masks(arr)
            values = pc.if_else(true, True, pc.if_else(false, False, pa.scalar(None, pa.bool_())))
        return values.to_pandas(types_mapper={pa.bool_(): pd.BooleanDtype()}.get).astype("boolean")
    if column_type == "datetime":
        return strings_to_datetime(arr).to_pandas()
    if not is_string:
        arr = as_strings(arr)
    return arr.to_pandas().astype("str")


def read_frame(
    fileobj,
    *,
    sniffed: Sniffed,
    column_types: dict[str, str],
    columns: list[str] | None = None,
    nrows: int | None = None,
    total_bytes: int | None = None,
    progress: Callable[[float], None] | None = None,
) -> pd.DataFrame:
    """Read (part of) a file into a DataFrame with the dtypes ``column_types``
    implies (see ``convert_column``). Stops after ``nrows`` rows."""
    wanted = list(columns) if columns is not None else list(sniffed.columns)
    unknown = [c for c in wanted if c not in sniffed.columns]
    if unknown:
        raise KeyError(f"Unknown columns: {', '.join(unknown)}")
    pieces: dict[str, list[pd.Series]] = {name: [] for name in wanted}
    remaining = nrows
    for batch, fraction in iter_batches(fileobj, sniffed=sniffed, columns=wanted, bad_rows=BadRows(),
                                        total_bytes=total_bytes):
        if remaining is not None:
            if remaining <= 0:
                break
            part = batch.slice(0, remaining)
            remaining -= part.num_rows
        else:
            part = batch
        for name in wanted:
            pieces[name].append(convert_column(part.column(name), column_types.get(name, "text")))
        if progress is not None:
            progress(fraction)
    data = {}
    for name in wanted:
        parts = pieces[name]
        if not parts:
            data[name] = convert_column(pa.array([], type=pa.string()), column_types.get(name, "text"))
            continue
        series = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)
        if column_types.get(name) == "integer" and series.dtype != np.int64 and not series.isna().any():
            series = series.astype("int64")
        data[name] = series
    return pd.DataFrame(data, columns=wanted)
