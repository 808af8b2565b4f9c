"""The rules every tracking write shares: key names (MLflow's, so that names
move between the two), param and tag values, tag mappings and times.

Plain Python checks, run before anything touches the database; a bad item is
a 400 that names it (``metrics[17]``, ``tags.owner``)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime

from apps.core.errors import ValidationFailed
from apps.experiments.models import PARAM_VALUE_MAX_LENGTH, TAG_VALUE_MAX_LENGTH

MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_PER_BATCH = 100
MAX_TAGS_PER_BATCH = 100
MAX_EXPERIMENT_TAGS = 100
# MLflow's rule for metric, param and tag names, so that names move between the two.
KEY_RE = re.compile(r"^[A-Za-z0-9_\-. :/]{1,250}$")
INT64 = 2**63
MAX_EPOCH_MS = 253_402_300_799_000  # 9999-12-31T23:59:59Z


def invalid_item(item: str, message: str, **details) -> ValidationFailed:
    return ValidationFailed(f"{item}: {message}", details={"item": item, **details})


def parse_time(value, *, item: str = "timestamp") -> datetime:
    """A time given as milliseconds since the Unix epoch (a number) or an ISO
    8601 string (UTC when it carries no offset)."""
    if isinstance(value, bool):
        raise invalid_item(item, "expected milliseconds since the epoch or an ISO 8601 time")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise invalid_item(item, "time must be finite")
        try:
            return datetime.fromtimestamp(value / 1000.0, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise invalid_item(item, "time out of range")
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise invalid_item(item, f"{value[:40]!r} is not an ISO 8601 time")
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    raise invalid_item(item, "expected milliseconds since the epoch or an ISO 8601 time")


def check_key(key, item: str) -> str:
    if not isinstance(key, str) or not KEY_RE.match(key):
        raise invalid_item(item, "key must be 1-250 characters of letters, digits, '_', '-', '.', ' ', ':' or '/'",
                       field="key")
    return key


def param_text(value, item: str) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool) or value is None or isinstance(value, (int, float)):
        # What MLflow's client stores for a non-string param: str(value).
        text = str(value)
    else:
        raise invalid_item(item, "value must be a string, number, boolean or null", field="value")
    if len(text) > PARAM_VALUE_MAX_LENGTH:
        raise invalid_item(item, f"value is longer than {PARAM_VALUE_MAX_LENGTH} characters", field="value")
    return text


def tag_text(value, item: str) -> str:
    if isinstance(value, (bool, int, float)):
        value = str(value)
    if not isinstance(value, str):
        raise invalid_item(item, "value must be a string", field="value")
    if len(value) > TAG_VALUE_MAX_LENGTH:
        raise invalid_item(item, f"value is longer than {TAG_VALUE_MAX_LENGTH} characters", field="value")
    return value


def check_tags_mapping(tags, *, what: str = "tags") -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise ValidationFailed(f"{what} must be an object of key: value", details={"item": what})
    if len(tags) > MAX_TAGS_PER_BATCH:
        raise ValidationFailed(f"At most {MAX_TAGS_PER_BATCH} {what}.", details={"item": what})
    return {check_key(k, f"{what}.{k}"): tag_text(v, f"{what}.{k}") for k, v in tags.items()}


__all__ = [
    "KEY_RE",
    "MAX_EXPERIMENT_TAGS",
    "MAX_METRICS_PER_BATCH",
    "MAX_PARAMS_PER_BATCH",
    "MAX_TAGS_PER_BATCH",
    "check_key",
    "check_tags_mapping",
    "invalid_item",
    "param_text",
    "parse_time",
    "tag_text",
]
