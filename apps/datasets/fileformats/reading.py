"""Reading CSV/TSV/Parquet in record batches of bounded size."""

from __future__ import annotations

import codecs
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from apps.datasets.fileformats.columns import NA_VALUES, convert_column
from apps.datasets.fileformats.options import normalise_numbers
from apps.datasets.fileformats.sniffing import BadFile, Sniffed

BLOCK_SIZE = 8 * 1024 * 1024


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
    if sniffed.file_format == "xlsx":
        from apps.datasets.fileformats.excel import iter_xlsx_batches

        for batch, fraction in iter_xlsx_batches(fileobj, sniffed=sniffed, columns=columns):
            yield _normalised(batch, sniffed), fraction
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
        read_options = pa_csv.ReadOptions(column_names=sniffed.columns,
                                          skip_rows=(sniffed.header_row or 1) if first else 0,
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
            yield _normalised(batch, sniffed), min(fraction, 1.0)


def _normalised(batch: pa.RecordBatch, sniffed: Sniffed) -> pa.RecordBatch:
    """Numbers in the file's spelling (``1.234,5``) rewritten as ``1234.5``,
    except in columns the user declared text or categorical."""
    own = sniffed.decimal_by_column
    if sniffed.decimal == "." and not sniffed.thousands and "," not in own.values():
        return batch
    keep_text = {name for name, kind in sniffed.column_types.items() if kind in ("text", "categorical")}
    arrays = [
        column if name in keep_text
        else normalise_numbers(column, decimal=own.get(name, sniffed.decimal),
                               thousands="" if name in own else sniffed.thousands)
        for name, column in zip(batch.schema.names, batch.columns, strict=True)
    ]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


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
