"""Read options: how a text table spells its numbers and where its header is.

Lab exports from a German or Scandinavian Excel are separated by ``;`` and
write ``1,53`` (and ``1.234,5`` with a thousands separator). Read as they
are, those columns are text and a model one-hot encodes the numbers. We
detect the decimal mark per file from the first rows, let the user override
every choice, and rewrite matching number fields to ``1.53`` while reading,
so profiling, preview and training all see the same numbers.
"""

from __future__ import annotations

import codecs
import re

import pyarrow as pa
import pyarrow.compute as pc

COLUMN_TYPES = ("integer", "float", "boolean", "categorical", "text", "datetime")
DELIMITERS = (",", ";", "\t", "|")
DECIMALS = (".", ",")
THOUSANDS = ("", ".", ",", " ", "'", "\u00a0")
MAX_HEADER_ROW = 100
OPTION_NAMES = ("delimiter", "decimal", "thousands", "encoding", "header_row", "sheet", "column_types")


class OptionError(ValueError):
    """A read option the user gave is malformed; ``fields`` maps option → problem."""

    def __init__(self, fields: dict[str, str]):
        where, what = next(iter(fields.items()))
        super().__init__(f"Invalid read option {where}: {what}")
        self.fields = fields


def _ascii_compatible(encoding: str) -> bool:
    # Blocks are cut at newline bytes and parsed as single-byte text; only
    # encodings that write ASCII as ASCII can be read that way.
    sample = "a,;|\t\"0.9\n"
    try:
        return sample.encode(encoding) == sample.encode("ascii")
    except (UnicodeError, LookupError):
        return False


def clean_options(raw: dict | None) -> dict:
    """User overrides, checked; empty values mean "detect". Raises ``OptionError``."""
    raw = raw or {}
    unknown = sorted(set(raw) - set(OPTION_NAMES))
    if unknown:
        raise OptionError({unknown[0]: "unknown option"})
    options: dict = {}
    errors: dict[str, str] = {}
    delimiter = raw.get("delimiter")
    if delimiter not in (None, ""):
        delimiter = {"\\t": "\t", "tab": "\t"}.get(delimiter, delimiter)
        if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in "\"\r\n" or delimiter.isalnum():
            errors["delimiter"] = "must be one character (e.g. , ; | or tab), not a quote, letter or digit"
        else:
            options["delimiter"] = delimiter
    decimal = raw.get("decimal")
    if decimal not in (None, ""):
        if decimal not in DECIMALS:
            errors["decimal"] = "must be '.' or ','"
        else:
            options["decimal"] = decimal
    thousands = raw.get("thousands")
    if thousands not in (None, ""):  # "none" says there is none; blank means detect
        thousands = {"none": "", "space": " "}.get(thousands, thousands)
        if thousands not in THOUSANDS:
            errors["thousands"] = "must be empty, '.', ',', a space or an apostrophe"
        else:
            options["thousands"] = thousands
    encoding = raw.get("encoding")
    if encoding not in (None, ""):
        try:
            name = codecs.lookup(str(encoding)).name
        except LookupError:
            errors["encoding"] = f"unknown encoding {str(encoding)[:40]!r}"
        else:
            if not _ascii_compatible(name):
                errors["encoding"] = f"{name} is not supported; use UTF-8, Windows-1252 or Latin-1"
            else:
                options["encoding"] = "utf-8-sig" if name == "utf-8-sig" else name
    header_row = raw.get("header_row")
    if header_row not in (None, ""):
        try:
            header_row = int(header_row)
        except (TypeError, ValueError):
            header_row = 0
        if not 1 <= header_row <= MAX_HEADER_ROW:
            errors["header_row"] = f"must be a line number from 1 to {MAX_HEADER_ROW}"
        else:
            options["header_row"] = header_row
    sheet = raw.get("sheet")
    if sheet not in (None, ""):
        if not isinstance(sheet, str) or len(sheet) > 100:
            errors["sheet"] = "must be a sheet name"
        else:
            options["sheet"] = sheet
    column_types = raw.get("column_types")
    if column_types not in (None, "", {}):
        if not isinstance(column_types, dict) or not all(isinstance(k, str) for k in column_types):
            errors["column_types"] = "must be an object of column name → type"
        else:
            bad = [k for k, v in column_types.items() if v not in COLUMN_TYPES]
            if bad:
                errors["column_types"] = f"{bad[0]!r}: the type must be one of {', '.join(COLUMN_TYPES)}"
            else:
                options["column_types"] = dict(column_types)
    if errors:
        raise OptionError(errors)
    if options.get("decimal") and options.get("decimal") == options.get("thousands"):
        raise OptionError({"thousands": "must differ from the decimal mark"})
    if options.get("delimiter") and options.get("delimiter") == options.get("decimal"):
        raise OptionError({"decimal": "must differ from the delimiter"})
    return options


# --- Detecting the number format --------------------------------------------------------

_COMMA_DECIMAL = re.compile(r"^[-+]?\d+,\d+$")  # 1,53 (or 1,234: ambiguous)
_DOT_DECIMAL = re.compile(r"^[-+]?\d*\.\d+$")  # 1.53 (or 1.234: ambiguous)
_DOT_GROUPS_COMMA = re.compile(r"^[-+]?\d{1,3}(\.\d{3})+,\d+$")  # 1.234,5
_COMMA_GROUPS_DOT = re.compile(r"^[-+]?\d{1,3}(,\d{3})+\.\d+$")  # 1,234.5
_DOT_GROUPS = re.compile(r"^[-+]?\d{1,3}(\.\d{3}){2,}$")  # 1.234.567
_COMMA_GROUPS = re.compile(r"^[-+]?\d{1,3}(,\d{3}){2,}$")  # 1,234,567
_THREE_AFTER = re.compile(r"^[-+]?\d{1,3}[.,]\d{3}$")


def detect_number_format(rows: list[list[str]], columns: list[str], *, delimiter: str) -> dict:
    """``{"decimal", "thousands", "decimal_columns"}`` from sample rows.

    Unambiguous spellings decide (``1,53``, ``1.234,5``, ``1.53``,
    ``1,234.5``); ``1,234`` alone could be either and only counts for a
    decimal comma in a ``;``-separated file, which is how such exports look."""
    votes = {",": 0, ".": 0}
    thousands_seen = {".": 0, ",": 0}
    comma_columns = []
    column_marks: dict[str, str] = {}
    for index, name in enumerate(columns):
        values = [row[index].strip() for row in rows if index < len(row) and row[index].strip()]
        comma, dot = 0, 0
        for value in values:
            if _DOT_GROUPS_COMMA.match(value):
                comma += 1
                thousands_seen["."] += 1
            elif _COMMA_GROUPS_DOT.match(value):
                dot += 1
                thousands_seen[","] += 1
            elif _COMMA_DECIMAL.match(value):
                if not _THREE_AFTER.match(value) or delimiter == ";":
                    comma += 1
                else:
                    thousands_seen[","] += 1
            elif _DOT_DECIMAL.match(value):
                if not _THREE_AFTER.match(value) or delimiter != ";":
                    dot += 1
                else:
                    thousands_seen["."] += 1
            elif _DOT_GROUPS.match(value):
                thousands_seen["."] += 1
            elif _COMMA_GROUPS.match(value):
                thousands_seen[","] += 1
        if comma > dot:
            votes[","] += 1
            comma_columns.append(name)
            column_marks[name] = ","
        elif dot:
            votes["."] += 1
            column_marks[name] = "."
    decimal = "," if votes[","] > votes["."] else "."
    other = "." if decimal == "," else ","
    thousands = other if thousands_seen[other] else ""
    # A column that clearly spells its numbers the other way (a pasted-in
    # instrument column with points in a decimal-comma export) keeps its own mark.
    by_column = {name: mark for name, mark in column_marks.items() if mark != decimal}
    return {"decimal": decimal, "thousands": thousands, "decimal_columns": comma_columns if decimal == "," else [],
            "decimal_by_column": by_column}


# --- Rewriting numbers while reading ----------------------------------------------------------

def _number_pattern(decimal: str, thousands: str) -> str:
    d = re.escape(decimal)
    integer = rf"(\d{{1,3}}({re.escape(thousands)}\d{{3}})+|\d+)" if thousands else r"\d+"
    return rf"^\s*[-+]?{integer}({d}\d*)?([eE][-+]?\d+)?\s*$"


def normalise_numbers(arr: pa.Array, *, decimal: str, thousands: str) -> pa.Array:
    """Fields that are numbers in the file's spelling, rewritten as ``1234.5``;
    every other field (text, dates) is left exactly as it was."""
    if decimal == "." and not thousands:
        return arr
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        return arr
    mask = pc.fill_null(pc.match_substring_regex(arr, _number_pattern(decimal, thousands)), False)
    if not pc.any(mask).as_py():
        return arr
    rewritten = arr
    if thousands:
        rewritten = pc.replace_substring(rewritten, thousands, "")
    if decimal != ".":
        rewritten = pc.replace_substring(rewritten, decimal, ".")
    return pc.if_else(mask, rewritten, arr)
