"""Reading lab tables (CSV, TSV, Excel .xlsx, Parquet) safely and in bounded memory.

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

from apps.datasets.fileformats.columns import (
    FALSE_VALUES,
    NA_VALUES,
    TRUE_VALUES,
    as_strings,
    boolean_masks,
    convert_column,
    datetime_mask,
    integer_mask,
    number_mask,
    strings_to_datetime,
    strings_to_float,
)
from apps.datasets.fileformats.options import (
    COLUMN_TYPES,
    OPTION_NAMES,
    OptionError,
    clean_options,
    detect_number_format,
    normalise_numbers,
)
from apps.datasets.fileformats.reading import BLOCK_SIZE, BadRows, iter_batches, read_frame, record_blocks
from apps.datasets.fileformats.sniffing import (
    EXTENSIONS,
    HEAD_BYTES,
    MAX_COLUMNS,
    BadFile,
    Sniffed,
    UploadInspector,
    UploadTooLarge,
    copy_inspecting,
    detect_encoding,
    format_for_filename,
    sniff,
)

__all__ = [
    "BLOCK_SIZE",
    "COLUMN_TYPES",
    "EXTENSIONS",
    "FALSE_VALUES",
    "HEAD_BYTES",
    "MAX_COLUMNS",
    "NA_VALUES",
    "OPTION_NAMES",
    "TRUE_VALUES",
    "BadFile",
    "BadRows",
    "OptionError",
    "Sniffed",
    "UploadInspector",
    "UploadTooLarge",
    "as_strings",
    "boolean_masks",
    "clean_options",
    "convert_column",
    "copy_inspecting",
    "datetime_mask",
    "detect_encoding",
    "detect_number_format",
    "format_for_filename",
    "integer_mask",
    "iter_batches",
    "normalise_numbers",
    "number_mask",
    "read_frame",
    "record_blocks",
    "sniff",
    "strings_to_datetime",
    "strings_to_float",
]
