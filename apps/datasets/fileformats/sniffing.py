"""Checks on an upload: hash, size and UTF-8 validity while it streams, then
format, encoding, delimiter and header of the stored copy."""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import os
import re
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq

from apps.datasets.fileformats.options import detect_number_format

EXTENSIONS = {".csv": "csv", ".txt": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet",
              ".xlsx": "xlsx"}
SAMPLE_ROWS = 1000
HEAD_BYTES = 64 * 1024
MAX_COLUMNS = 2000
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
            f"Files ending in {ext or '(no extension)'!r} are not supported; upload .csv, .tsv, .xlsx or .parquet"
            + (" (save old .xls workbooks as .xlsx)." if ext == ".xls" else "."),
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
    """What the file looks like and how to read it: format, text encoding,
    delimiter, number format, header line, sheet and type overrides."""

    file_format: str
    encoding: str = ""
    delimiter: str = ""
    columns: list[str] = field(default_factory=list)
    num_rows: int | None = None  # known for Parquet without reading the data
    decimal: str = "."
    thousands: str = ""
    header_row: int = 1
    sheet: str = ""
    column_types: dict[str, str] = field(default_factory=dict)
    decimal_columns: list[str] = field(default_factory=list)
    # Columns whose decimal mark differs from the file's (detected only).
    decimal_by_column: dict[str, str] = field(default_factory=dict)
    overridden: list[str] = field(default_factory=list)

    def read_options(self) -> dict:
        """What is stored on the version, so every later read (revalidation,
        training) reads the file the same way."""
        options = {"decimal": self.decimal, "thousands": self.thousands, "header_row": self.header_row,
                   "column_types": dict(self.column_types)}
        if self.file_format in ("csv", "tsv"):
            options |= {"delimiter": self.delimiter, "encoding": self.encoding,
                        "decimal_columns": list(self.decimal_columns),
                        "decimal_by_column": dict(self.decimal_by_column)}
        if self.file_format == "xlsx":
            options["sheet"] = self.sheet
        options["overridden"] = list(self.overridden)
        return options

    @classmethod
    def from_read_options(cls, *, file_format: str, columns: list[str], options: dict) -> Sniffed:
        return cls(file_format=file_format, columns=list(columns), encoding=options.get("encoding", ""),
                   delimiter=options.get("delimiter", ""), decimal=options.get("decimal", "."),
                   thousands=options.get("thousands", ""), header_row=int(options.get("header_row", 1)),
                   sheet=options.get("sheet", ""), column_types=dict(options.get("column_types") or {}),
                   decimal_columns=list(options.get("decimal_columns") or []),
                   decimal_by_column=dict(options.get("decimal_by_column") or {}),
                   overridden=list(options.get("overridden") or []))


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


def sniff(path: str, *, file_format: str, head: bytes, utf8_valid: bool, size: int,
          options: dict | None = None) -> Sniffed:
    """Check a stored upload before a version is made; raises ``BadFile``.
    ``options`` are the user's overrides (already checked by ``clean_options``)."""
    options = options or {}
    if size == 0:
        raise BadFile("empty_file", "The file is empty.")
    is_parquet_magic = head[:4] == b"PAR1"
    if file_format == "parquet":
        if not is_parquet_magic:
            raise BadFile("not_parquet", "The file ends in .parquet but is not a Parquet file.")
        sniffed = _sniff_parquet(path)
    elif file_format == "xlsx":
        from apps.datasets.fileformats.excel import sniff_xlsx

        sniffed = sniff_xlsx(path, head=head, sheet=options.get("sheet", ""),
                             header_row=options.get("header_row", 1))
    else:
        if is_parquet_magic:
            raise BadFile("wrong_extension",
                          "The file is Parquet but its name ends in .csv/.tsv; rename it to .parquet.")
        sniffed = _sniff_text(head, file_format=file_format, utf8_valid=utf8_valid, size=size, options=options)
    sniffed.column_types = {k: v for k, v in (options.get("column_types") or {}).items() if k in sniffed.columns}
    sniffed.overridden = sorted(k for k in options if k != "column_types" or sniffed.column_types)
    return sniffed


def _sniff_text(head: bytes, *, file_format: str, utf8_valid: bool, size: int, options: dict) -> Sniffed:
    if options.get("encoding"):
        encoding = options["encoding"]
        detect_encoding(head, utf8_valid=True)  # still refuses binary data and UTF-16
        if encoding in ("utf-8", "utf-8-sig") and not utf8_valid:
            raise BadFile("wrong_encoding", "The file is not valid UTF-8; choose its real encoding "
                                            "(e.g. cp1252 or latin-1) or leave the encoding to detection.",
                          {"fields": {"encoding": "the file does not decode as UTF-8"}})
        cut = head.rfind(b"\n") if size > len(head) else len(head)
        try:
            head[: cut if cut > 0 else len(head)].decode(encoding)
        except UnicodeDecodeError:
            raise BadFile("wrong_encoding", f"The file does not decode as {encoding}.",
                          {"fields": {"encoding": f"the file does not decode as {encoding}"}})
    else:
        encoding = detect_encoding(head, utf8_valid=utf8_valid)
    text = _decoded_head(head, encoding, complete=size <= len(head))
    if text.startswith("\ufeff"):
        text = text[1:]
    header_row = options.get("header_row", 1)
    lines = text.splitlines(keepends=True)
    text = "".join(lines[header_row - 1:])
    if not text.strip():
        raise BadFile("empty_file", "The file contains only blank lines." if header_row == 1
                      else f"The file has nothing from line {header_row} on.")
    delimiter = options.get("delimiter") or _delimiter_for(text, file_format)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    columns = [c.strip() for c in next(reader)]
    _check_header(columns)
    rows = []
    for row in reader:
        if len(rows) >= SAMPLE_ROWS:
            break
        if any(value.strip() for value in row):
            rows.append(row)
    if not rows and size <= len(head):
        raise BadFile("no_data_rows", "The file has a header but no data rows.", {"columns": columns})
    if (not options.get("delimiter") and len(columns) == 1 and file_format == "csv"
            and "\t" in text.splitlines()[0]):
        delimiter = "\t"
        columns = [c.strip() for c in text.splitlines()[0].split("\t")]
        _check_header(columns)
        rows = [line.split("\t") for line in text.splitlines()[1:SAMPLE_ROWS]]
    detected = detect_number_format(rows, columns, delimiter=delimiter)
    decimal = options.get("decimal") or detected["decimal"]
    thousands = options["thousands"] if "thousands" in options else (
        detected["thousands"] if decimal == detected["decimal"] else "")
    if decimal == thousands:
        thousands = ""
    if decimal == delimiter:
        raise BadFile("invalid_read_options", "The decimal mark cannot be the delimiter.",
                      {"fields": {"decimal": "must differ from the delimiter"}})
    return Sniffed(file_format=file_format, encoding=encoding, delimiter=delimiter, columns=columns,
                   decimal=decimal, thousands=thousands, header_row=header_row,
                   decimal_columns=detected["decimal_columns"] if decimal == "," else [],
                   decimal_by_column={} if options.get("decimal") else detected["decimal_by_column"])


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
