"""Input validation against a model version's signature, compiled once per
version so that each request only runs a tight loop of type checks.

No Django here. A signature is ``{"inputs": [{"name", "type", "nullable",
"categories"?}], ...}`` with types integer, float, boolean, categorical,
text and datetime (see docs/serving.md). Rules, per instance and field:

* a field the signature lists but the instance lacks is an error, unless the
  field is nullable (then it counts as null, like a blank on a form);
* null is only accepted for nullable fields;
* integer accepts a JSON integer or an integral number (``3.0``); float any
  number; neither accepts booleans or strings;
* boolean accepts only ``true``/``false``;
* categorical needs a string, and one of ``categories`` when the signature
  lists them (an unknown category is an error, not a silent all-zero row);
* text needs a string; datetime an ISO 8601 string;
* fields the signature does not list (a sample id, a comment) are ignored.

The result is one list per field (column-major), which is what both the
ONNX feeds and a pandas frame are built from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

KINDS = ("integer", "float", "boolean", "categorical", "text", "datetime")
NUMERIC_KINDS = frozenset({"integer", "float", "boolean"})
STRING_KINDS = frozenset({"categorical", "text", "datetime"})


class InstanceError(ValueError):
    """One instance does not fit the signature. ``field`` is None when the
    instance as a whole is wrong (not an object)."""

    def __init__(self, *, index: int, field: str | None, code: str, message: str):
        super().__init__(message)
        self.index = index
        self.field = field
        self.code = code
        self.message = message


class SignatureError(ValueError):
    """The signature itself is unusable (a registry-side problem)."""


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    kind: str
    nullable: bool
    categories: frozenset | None


def _check_integer(value):
    kind = type(value)
    if kind is int:
        return value
    if kind is float and value.is_integer():
        return int(value)
    raise TypeError("an integer")


def _check_float(value):
    kind = type(value)
    if kind is float:
        if math.isfinite(value):
            return value
        raise TypeError("a finite number")
    if kind is int:
        return float(value)
    raise TypeError("a number")


def _check_boolean(value):
    if type(value) is bool:
        return value
    raise TypeError("true or false")


def _check_string(value):
    if type(value) is str:
        return value
    raise TypeError("a string")


def _check_datetime(value):
    if type(value) is not str:
        raise TypeError("an ISO 8601 date-time string")
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise TypeError("an ISO 8601 date-time string") from None
    return value


_CHECKS = {
    "integer": _check_integer,
    "float": _check_float,
    "boolean": _check_boolean,
    "categorical": _check_string,
    "text": _check_string,
    "datetime": _check_datetime,
}


def _describe(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class CompiledSignature:
    """A signature turned into a validator. Immutable and thread-safe."""

    __slots__ = ("_plan", "fields", "names")

    def __init__(self, signature: dict):
        inputs = (signature or {}).get("inputs")
        if not isinstance(inputs, list) or not inputs:
            raise SignatureError("the signature lists no inputs")
        fields = []
        for position, raw in enumerate(inputs):
            if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
                raise SignatureError(f"signature input {position} has no name")
            kind = raw.get("type")
            if kind not in KINDS:
                raise SignatureError(f"signature input {raw['name']!r} has unknown type {kind!r}")
            categories = raw.get("categories")
            if kind == "categorical" and categories:
                categories = frozenset(str(c) for c in categories)
            else:
                categories = None
            fields.append(FieldSpec(raw["name"], kind, bool(raw.get("nullable", False)), categories))
        self.fields = tuple(fields)
        self.names = tuple(f.name for f in fields)
        self._plan = tuple((f.name, f.nullable, _CHECKS[f.kind], f.categories) for f in fields)

    def columns(self, instances: list) -> dict[str, list]:
        """Validate ``instances`` (a list of JSON objects) and return one list
        of values per signature field, in instance order. Raises
        :class:`InstanceError` at the first problem."""
        n = len(instances)
        columns = {name: [None] * n for name in self.names}
        missing = _MISSING
        for index, instance in enumerate(instances):
            if type(instance) is not dict:
                raise InstanceError(index=index, field=None, code="invalid_instance",
                                    message=f"instances[{index}] must be an object, not {_describe(instance)}.")
            get = instance.get
            for name, nullable, check, categories in self._plan:
                value = get(name, missing)
                if value is None or value is missing:
                    if nullable:
                        continue
                    if value is missing:
                        raise InstanceError(index=index, field=name, code="missing_field",
                                            message=f"instances[{index}] lacks the required field {name!r}.")
                    raise InstanceError(index=index, field=name, code="null_not_allowed",
                                        message=f"instances[{index}].{name} may not be null.")
                try:
                    value = check(value)
                except TypeError as exc:
                    raise InstanceError(
                        index=index, field=name, code="wrong_type",
                        message=f"instances[{index}].{name} must be {exc.args[0]}, not {_describe(value)}.",
                    ) from None
                if categories is not None and value not in categories:
                    raise InstanceError(
                        index=index, field=name, code="unknown_category",
                        message=(f"instances[{index}].{name} = {value!r} is not a known category "
                                 f"(expected one of: {', '.join(sorted(categories))})."),
                    )
                columns[name][index] = value
        return columns


class _Missing:
    __slots__ = ()

    def __repr__(self):
        return "<missing>"


_MISSING = _Missing()

__all__ = ["KINDS", "CompiledSignature", "FieldSpec", "InstanceError", "SignatureError"]
