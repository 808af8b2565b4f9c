"""The prediction log as CSV, streamed row by row, safe to open in a
spreadsheet: a cell that a spreadsheet would read as a formula gets a
leading apostrophe (OWASP, "CSV Injection")."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator

# The characters that start a formula in Excel, LibreOffice and Google Sheets
# (= + - @), and tab and carriage return, which some of them skip before one.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

HEADER = ["time", "request_id", "model", "version", "deployment_id", "unit_id", "status", "status_code",
          "latency_ms", "n_instances", "inputs", "predictions", "probabilities", "error", "feedback"]


def csv_safe(value):
    """``value`` as a spreadsheet will show it and never evaluate it."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _json(value) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def feedback_items(log) -> list[dict]:
    return [{"index": f.index, "label": f.label, "correct": f.correct, "abs_error": f.abs_error}
            for f in getattr(log, "feedback_list", [])]


def prediction_row(log) -> list:
    version = log.model_version
    return [log.created_at.isoformat(), log.request_id, version.registered_model.name, version.version,
            log.deployment_id, log.unit_id, "error" if log.is_error else "ok", log.status_code,
            round(log.latency_ms, 3), log.n_instances, _json(log.inputs), _json(log.predictions),
            _json(log.probabilities), log.error, _json(feedback_items(log))]


class _Line:
    """A file-like object whose ``write`` returns the line instead of storing it."""

    def write(self, value: str) -> str:
        return value


def stream_csv(logs: Iterable) -> Iterator[str]:
    """The header, then one CSV line per log row, every cell guarded."""
    writer = csv.writer(_Line())
    yield writer.writerow(HEADER)
    for log in logs:
        yield writer.writerow([csv_safe(cell) for cell in prediction_row(log)])
