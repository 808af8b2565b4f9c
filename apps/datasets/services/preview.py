"""The upload preview: how a file will be read, before anything is stored."""

from __future__ import annotations

import math
import os
import tempfile

import pandas as pd
import pyarrow as pa
from django.conf import settings

from apps.core.errors import PayloadTooLarge, ValidationFailed
from apps.core.permissions import require_perm
from apps.datasets import fileformats
from apps.datasets.models import Dataset
from apps.datasets.profiling import Profiler
from apps.datasets.services.versions import read_options_clean

PREVIEW_ROWS = 20
TYPE_SAMPLE_ROWS = 2000


def _json_value(value):
    if value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return _json_value(value.item())
    if pd.isna(value):
        return None
    return value


def dataset_version_preview(*, dataset: Dataset, actor, file, filename: str, options: dict | None = None) -> dict:
    """The read options (detected, with the user's overrides), the type
    inferred per column from the first rows and the first rows as they will
    be read. Writes nothing: the upload is spooled to a temporary file that
    is gone when this returns."""
    require_perm(actor, "datasets.view_dataset", dataset)
    require_perm(actor, "datasets.change_dataset", dataset)
    options = read_options_clean(options)
    filename = os.path.basename((filename or "").replace("\\", "/"))[:255]
    try:
        file_format = fileformats.format_for_filename(filename)
    except fileformats.BadFile as exc:
        raise ValidationFailed(exc.message, code=exc.code, details=exc.details)
    extension = os.path.splitext(filename)[1].lower()
    with tempfile.NamedTemporaryFile(prefix="dataset-preview-", suffix=extension,
                                     dir=settings.FILE_UPLOAD_TEMP_DIR) as spool:
        try:
            inspector = fileformats.copy_inspecting(file, spool, limit=settings.DATASET_MAX_UPLOAD_SIZE)
        except fileformats.UploadTooLarge as exc:
            raise PayloadTooLarge(exc.message, details=exc.details)
        try:
            sniffed = fileformats.sniff(spool.name, file_format=file_format, head=inspector.head,
                                        utf8_valid=inspector.utf8_valid, size=inspector.size, options=options)
            batches, rows = [], 0
            with open(spool.name, "rb") as handle:
                for batch, _ in fileformats.iter_batches(handle, sniffed=sniffed, bad_rows=fileformats.BadRows()):
                    batches.append(batch.slice(0, TYPE_SAMPLE_ROWS - rows))
                    rows += batches[-1].num_rows
                    if rows >= TYPE_SAMPLE_ROWS:
                        break
        except fileformats.BadFile as exc:
            raise ValidationFailed(exc.message, code=exc.code, details=exc.details)
    profiler = Profiler(sniffed.columns, block_rows=10**9)
    for batch in batches:
        profiler.add_batch(batch)
    types = profiler.infer_types(sniffed.column_types)
    head = pa.Table.from_batches(batches).slice(0, PREVIEW_ROWS) if batches else None
    columns = {name: ([] if head is None else fileformats.convert_column(head.column(name), types[name]).tolist())
               for name in sniffed.columns}
    count = 0 if head is None else head.num_rows
    return {
        "read_options": sniffed.read_options(),
        "columns": [{"name": name, "type": types[name]} for name in sniffed.columns],
        "rows": [{name: _json_value(columns[name][i]) for name in sniffed.columns} for i in range(count)],
    }
