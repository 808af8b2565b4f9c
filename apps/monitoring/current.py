"""The current data of an endpoint drift check: the window, the model
version whose training data is the reference, and the window's logged
inputs as a frame typed like the reference.

Logged inputs are JSON as the clients sent them, invalid requests included,
so each value is taken only when it has the reference column's type (a
number for integer and float columns, true/false for boolean ones, a string
for categorical ones) and counts as missing otherwise: a request that sent
``"high"`` for a concentration is not a concentration of zero."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.core.errors import ValidationFailed

DEFAULT_WINDOW = timedelta(hours=1)
MAX_WINDOW = timedelta(days=31)


def _moment(value, *, field: str) -> datetime | None:
    if value is None or value == "":
        return None
    moment = value if isinstance(value, datetime) else None
    if moment is None and isinstance(value, str):
        try:
            moment = parse_datetime(value.strip())
        except ValueError:
            moment = None
    if moment is None:
        raise ValidationFailed(f"{field} must be an ISO 8601 date and time, e.g. 2026-03-01T09:00:00Z.",
                               details={"field": field, field: str(value)[:100]})
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=UTC)


def drift_window_parse(*, since=None, until=None, now: datetime | None = None) -> tuple[datetime, datetime]:
    """``[since, until)`` from ISO strings: ``until`` defaults to now and
    ``since`` to an hour before ``until``; naive times are UTC. At most
    31 days long (400 naming the field otherwise)."""
    end = _moment(until, field="until") or (now or timezone.now())
    start = _moment(since, field="since") or end - DEFAULT_WINDOW
    if start >= end:
        raise ValidationFailed("since must be before until.", details={"field": "since"})
    if end - start > MAX_WINDOW:
        raise ValidationFailed(f"The window may span at most {MAX_WINDOW.days} days.", details={"field": "since"})
    return start, end


def signature_schema(signature: dict) -> dict:
    """A model version's input signature in the shape of a dataset schema,
    so the drift plan can match it against the reference's columns."""
    inputs = (signature or {}).get("inputs") or []
    return {"columns": [{"name": i["name"], "type": i.get("type"), "role": "feature"}
                        for i in inputs if isinstance(i, dict) and i.get("name")]}


def _number(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    return float(value)


def logged_inputs_frame(instances: list[dict], *, types: dict[str, str]) -> pd.DataFrame:
    """One column per entry of ``types`` (schema type by column name), with
    the dtypes ``dataset_version_read_frame`` gives the reference: integer
    columns are ``int64`` when every value is an integral number."""
    columns = {}
    for name, kind in types.items():
        values = [instance.get(name) for instance in instances]
        if kind in ("integer", "float"):
            array = np.fromiter((_number(v) for v in values), dtype=np.float64, count=len(values))
            whole = kind == "integer" and array.size and np.isfinite(array).all() and (array == np.round(array)).all()
            columns[name] = pd.Series(array.astype(np.int64) if whole else array)
        elif kind == "boolean":
            columns[name] = pd.Series([v if isinstance(v, bool) else None for v in values], dtype="boolean")
        else:
            columns[name] = pd.Series([v if isinstance(v, str) else None for v in values], dtype=object)
    return pd.DataFrame(columns, index=pd.RangeIndex(len(instances)))
