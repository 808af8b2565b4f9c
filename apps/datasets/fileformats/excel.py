"""Excel workbooks (.xlsx): the first sheet, or a named one.

An .xlsx is a zip of XML parts, so two things are checked before openpyxl
sees it: the declared uncompressed size of all parts (a zip bomb expands a
few kilobytes into gigabytes; Python's zip reader never inflates a member
beyond its declared size, so the declared sizes bound the work), and the
compression ratio. Cells are read with ``data_only=True``: a formula cell
gives the value Excel cached when the file was saved, nothing is evaluated.
``read_only=True`` streams rows instead of building the whole workbook.
With defusedxml installed (requirements/base.txt), openpyxl refuses XML with
entity declarations (billion laughs, external entities).
"""

from __future__ import annotations

import datetime as dt
import zipfile
from collections.abc import Iterator

import pyarrow as pa

from apps.datasets.fileformats.columns import NA_VALUES
from apps.datasets.fileformats.sniffing import BadFile, Sniffed, _check_header

XLSX_MAX_UNCOMPRESSED = 256 * 1024 * 1024
XLSX_MAX_RATIO = 200
BATCH_ROWS = 65536
_NA = frozenset(NA_VALUES)


def check_zip(source) -> None:
    """Refuse archives that are not zips or would inflate beyond the limits."""
    try:
        with zipfile.ZipFile(source) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise BadFile("not_xlsx", f"The file ends in .xlsx but is not an Excel workbook ({exc}).")
    total = sum(m.file_size for m in members)
    if total > XLSX_MAX_UNCOMPRESSED:
        raise BadFile("xlsx_too_large",
                      f"The workbook unpacks to {total:,} bytes; at most {XLSX_MAX_UNCOMPRESSED:,} are read. "
                      "Export the sheet as CSV instead.", {"uncompressed_bytes": total})
    for member in members:
        if member.file_size > 1024 * 1024 and member.file_size > XLSX_MAX_RATIO * max(member.compress_size, 1):
            raise BadFile("xlsx_too_large", "The workbook is compressed suspiciously well (a zip bomb?); "
                                            "export the sheet as CSV instead.", {"member": member.filename})


def _open_sheet(source, sheet: str):
    import openpyxl

    if hasattr(source, "seek"):
        source.seek(0)
    check_zip(source)
    if hasattr(source, "seek"):
        source.seek(0)
    try:
        workbook = openpyxl.load_workbook(source, read_only=True, data_only=True, keep_links=False)
    except Exception as exc:  # openpyxl raises many types for a broken workbook
        raise BadFile("not_xlsx", f"The workbook cannot be read: {type(exc).__name__}: {exc}.")
    if sheet:
        if sheet not in workbook.sheetnames:
            workbook.close()
            raise BadFile("unknown_sheet", f"The workbook has no sheet {sheet!r}; it has "
                                           f"{', '.join(repr(n) for n in workbook.sheetnames[:20])}.",
                          {"fields": {"sheet": "no such sheet"}, "sheets": workbook.sheetnames[:100]})
        return workbook, workbook[sheet]
    return workbook, workbook.worksheets[0]


def cell_text(value) -> str | None:
    """A cell as the text a CSV export would hold (so one type inference serves both)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    text = str(value)
    return None if text.strip() in _NA else text


def _rows(worksheet, header_row: int) -> Iterator[list[str | None]]:
    # Read-only sheets parse their XML lazily, so a malformed part (or one
    # defusedxml refuses: entity declarations) surfaces here, not on open.
    try:
        for row in worksheet.iter_rows(min_row=header_row, values_only=True):
            yield [cell_text(v) for v in row]
    except BadFile:
        raise
    except Exception as exc:
        raise BadFile("not_xlsx", f"The sheet cannot be read: {type(exc).__name__}.")


def sniff_xlsx(path, *, head: bytes, sheet: str = "", header_row: int = 1) -> Sniffed:
    if head[:4] != b"PK\x03\x04":
        raise BadFile("not_xlsx", "The file ends in .xlsx but is not an Excel workbook.")
    workbook, worksheet = _open_sheet(path, sheet)
    try:
        rows = _rows(worksheet, header_row)
        header = next(rows, None)
        if header is None:
            raise BadFile("empty_file", "The sheet is empty.")
        while header and header[-1] is None:
            header.pop()
        columns = [(c or "").strip() for c in header]
        _check_header(columns)
        has_row = any(any(v not in (None, "") for v in row[: len(columns)]) for row, _ in zip(rows, range(50),
                                                                                                  strict=False))
        if not has_row:
            raise BadFile("no_data_rows", "The sheet has a header but no data rows.", {"columns": columns})
    finally:
        workbook.close()
    return Sniffed(file_format="xlsx", columns=columns, header_row=header_row, sheet=sheet)


def iter_xlsx_batches(fileobj, *, sniffed: Sniffed, columns: list[str] | None = None
                      ) -> Iterator[tuple[pa.RecordBatch, float]]:
    """Record batches of strings (like CSV), skipping blank rows."""
    wanted = columns or sniffed.columns
    positions = [sniffed.columns.index(name) for name in wanted]
    width = len(sniffed.columns)
    workbook, worksheet = _open_sheet(fileobj, sniffed.sheet)
    try:
        total = max((worksheet.max_row or 1) - sniffed.header_row, 1)
        rows = _rows(worksheet, sniffed.header_row)
        next(rows, None)
        buffer: list[list[str | None]] = []
        done = 0
        for raw in rows:
            row = (raw + [None] * width)[:width]
            if all(v is None or v == "" for v in row):
                continue
            buffer.append(row)
            if len(buffer) >= BATCH_ROWS:
                done += len(buffer)
                yield _batch(buffer, positions, wanted), min(done / total, 1.0)
                buffer = []
        if buffer:
            done += len(buffer)
            yield _batch(buffer, positions, wanted), 1.0
    finally:
        workbook.close()


def _batch(rows: list[list[str | None]], positions: list[int], names: list[str]) -> pa.RecordBatch:
    arrays = [pa.array([row[p] for row in rows], type=pa.string()) for p in positions]
    return pa.RecordBatch.from_arrays(arrays, names=names)
