"""Feature specs: the declarative preprocessing of a dataset, compiled to a
scikit-learn ``ColumnTransformer``.

No Django here: training jobs, the registry and serving import these
functions, and a model must be trained and served through the same compiled
transformer. The spec format (also in docs/datasets.md)::

    {
      "numeric":     {"imputation": "median", "scaling": "standard"},
      "categorical": {"imputation": "constant", "max_categories": 50},
      "columns": {
        "sample_id":  {"kind": "drop"},
        "a260_230":   {"kind": "numeric", "imputation": "mean", "scaling": "robust"},
        "sample_type": {"kind": "categorical"}
      }
    }

* ``kind`` is ``numeric`` (integer, float and boolean columns), ``categorical``
  (categorical and text columns) or ``drop``. A column the spec does not name
  gets its default kind from the schema: identifiers, timestamps, datetimes
  and free text are dropped; the target is never an input.
* Numeric imputation: ``median``, ``mean``, ``most_frequent`` or ``constant``
  (``fill_value``, default 0); scaling: ``standard``, ``minmax``, ``robust``
  or ``none``.
* Categorical columns are one-hot encoded over a category list fixed from the
  schema (the ``max_categories`` most frequent values), with unknown
  categories ignored. Missing values (NaN, None or the empty string) are
  imputed by the constant "missing" level, which is encoded as the all-zero
  row — the row an unknown category also gets.

Why missing categoricals are not imputed with ``SimpleImputer``: skl2onnx
converts a string ``SimpleImputer`` only when ``missing_values`` is itself a
string ("The converter is implemented when the missing values are string"),
while pandas hands NaN to scikit-learn. An ONNX graph can only receive
strings for these inputs, so serving through ONNX passes "" for a missing
category, which the fixed category list treats exactly like NaN here. The
compiled transformer therefore uses only ``SimpleImputer`` on numbers,
``StandardScaler``/``MinMaxScaler``/``RobustScaler`` and ``OneHotEncoder``, all
of which skl2onnx converts; ``onnx_initial_types`` and ``onnx_inputs`` give
the matching ONNX inputs.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable

import numpy as np

SPEC_VERSION = 1
KINDS = ("numeric", "categorical", "drop")
NUMERIC_IMPUTATIONS = ("median", "mean", "most_frequent", "constant")
SCALINGS = ("standard", "minmax", "robust", "none")
CATEGORICAL_IMPUTATIONS = ("constant",)
DEFAULT_MAX_CATEGORIES = 50

NUMERIC_TYPES = ("integer", "float", "boolean")
STRING_TYPES = ("categorical", "text")
INPUT_TYPES = ("integer", "float", "boolean", "categorical", "text", "datetime")
EXCLUDED_ROLES = ("identifier", "timestamp", "target")


class FeatureSpecError(ValueError):
    """The spec cannot be compiled against this schema; ``errors`` maps a
    place in the spec (e.g. ``columns.rin.kind``) to what is wrong."""

    def __init__(self, message: str, errors: dict[str, str] | None = None):
        super().__init__(message)
        self.errors = errors or {}


def _schema_columns(schema: dict) -> list[dict]:
    if not schema or not isinstance(schema.get("columns"), list):
        raise FeatureSpecError("The dataset version has no schema yet (it is not validated).")
    return schema["columns"]


def _default_kind(column: dict, target: str) -> str | None:
    """The kind a column gets when the spec does not name it; None for the target."""
    if column["name"] == target:
        return None
    if column.get("role") in ("identifier", "timestamp"):
        return "drop"
    ctype = column.get("type")
    if ctype in NUMERIC_TYPES:
        return "numeric"
    if ctype == "categorical":
        return "categorical" if _categories_of(column) else "drop"
    return "drop"  # free text and datetimes need feature engineering the spec does not describe


def _categories_of(column: dict, limit: int | None = None) -> list[str]:
    """The category list a one-hot encoder uses: the ``limit`` most frequent
    values recorded in the schema, sorted so the encoding is stable."""
    counts = (column.get("stats") or {}).get("counts") or {}
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    if limit is not None:
        ranked = ranked[:limit]
    return sorted(str(value) for value, _ in ranked if value not in ("", None))


def default_feature_spec(*, schema: dict, target: str) -> dict:
    """The spec a new dataset starts with: median imputation and standard
    scaling for numbers, constant imputation and one-hot encoding for
    categories, and an explicit kind for every column of the schema except
    the target (so the editor shows every decision)."""
    columns = {}
    for column in _schema_columns(schema):
        kind = _default_kind(column, target)
        if kind is not None:
            columns[column["name"]] = {"kind": kind}
    return {
        "version": SPEC_VERSION,
        "numeric": {"imputation": "median", "scaling": "standard"},
        "categorical": {"imputation": "constant", "max_categories": DEFAULT_MAX_CATEGORIES},
        "columns": columns,
    }


def _check_numeric_options(options: dict, where: str, errors: dict[str, str]) -> None:
    imputation = options.get("imputation")
    if imputation is not None and imputation not in NUMERIC_IMPUTATIONS:
        errors[f"{where}.imputation"] = f"must be one of {', '.join(NUMERIC_IMPUTATIONS)}"
    scaling = options.get("scaling")
    if scaling is not None and scaling not in SCALINGS:
        errors[f"{where}.scaling"] = f"must be one of {', '.join(SCALINGS)}"
    fill_value = options.get("fill_value")
    if fill_value is not None and (
        isinstance(fill_value, bool) or not isinstance(fill_value, (int, float)) or not math.isfinite(fill_value)
    ):
        errors[f"{where}.fill_value"] = "must be a finite number"


def _check_categorical_options(options: dict, where: str, errors: dict[str, str]) -> None:
    imputation = options.get("imputation")
    if imputation is not None and imputation not in CATEGORICAL_IMPUTATIONS:
        errors[f"{where}.imputation"] = (
            "only 'constant' is supported for categories (missing values become their own level), "
            "because it is the imputation an ONNX export can reproduce"
        )
    max_categories = options.get("max_categories")
    if max_categories is not None and (
        isinstance(max_categories, bool) or not isinstance(max_categories, int) or not 1 <= max_categories <= 200
    ):
        errors[f"{where}.max_categories"] = "must be an integer between 1 and 200"


def validate_feature_spec(*, spec: dict, schema: dict | None = None, target: str = "") -> dict:
    """Check a spec's shape (and, given a schema, that it fits the columns).
    Returns a normalised copy; raises ``FeatureSpecError`` listing every problem."""
    if not isinstance(spec, dict):
        raise FeatureSpecError("The feature spec must be a JSON object.")
    errors: dict[str, str] = {}
    known = {"version", "numeric", "categorical", "columns"}
    for key in spec:
        if key not in known:
            errors[str(key)] = f"unknown key; the spec has {', '.join(sorted(known))}"
    numeric = spec.get("numeric", {})
    categorical = spec.get("categorical", {})
    columns = spec.get("columns", {})
    for name, value in (("numeric", numeric), ("categorical", categorical), ("columns", columns)):
        if not isinstance(value, dict):
            errors[name] = "must be an object"
    if errors:
        raise FeatureSpecError("The feature spec is malformed.", errors)
    _check_numeric_options(numeric, "numeric", errors)
    _check_categorical_options(categorical, "categorical", errors)
    by_name = {c["name"]: c for c in _schema_columns(schema)} if schema else None
    for name, options in columns.items():
        where = f"columns.{name}"
        if not isinstance(options, dict):
            errors[where] = "must be an object such as {\"kind\": \"numeric\"}"
            continue
        kind = options.get("kind")
        if kind not in KINDS:
            errors[f"{where}.kind"] = f"must be one of {', '.join(KINDS)}"
            continue
        if kind == "numeric":
            _check_numeric_options(options, where, errors)
        elif kind == "categorical":
            _check_categorical_options(options, where, errors)
        if by_name is None:
            continue
        column = by_name.get(name)
        if column is None:
            if kind != "drop":
                errors[where] = "no such column in the dataset version"
            continue
        if name == target and kind != "drop":
            errors[where] = "the target column cannot be an input"
        elif kind == "numeric" and column.get("type") not in NUMERIC_TYPES:
            errors[f"{where}.kind"] = f"a {column.get('type')} column cannot be numeric"
        elif kind == "categorical" and column.get("type") not in STRING_TYPES:
            errors[f"{where}.kind"] = f"a {column.get('type')} column cannot be one-hot encoded here"
    if errors:
        first = next(iter(errors.items()))
        raise FeatureSpecError(f"The feature spec is invalid: {first[0]}: {first[1]}.", errors)
    normalised = copy.deepcopy(spec)
    normalised["version"] = SPEC_VERSION
    normalised.setdefault("numeric", {})
    normalised.setdefault("categorical", {})
    normalised.setdefault("columns", {})
    return normalised


def _resolve(spec: dict, schema: dict, target: str) -> list[tuple[dict, str, dict]]:
    """(schema column, kind, effective options) for every input, in schema order."""
    spec = validate_feature_spec(spec=spec or {}, schema=schema, target=target)
    if target and target not in {c["name"] for c in _schema_columns(schema)}:
        raise FeatureSpecError(f"The target column {target!r} is not in the dataset version.",
                               {"target": "no such column"})
    numeric_defaults = {"imputation": "median", "scaling": "standard", **spec["numeric"]}
    categorical_defaults = {"imputation": "constant", "max_categories": DEFAULT_MAX_CATEGORIES,
                            **spec["categorical"]}
    resolved = []
    for column in _schema_columns(schema):
        if column["name"] == target:
            continue
        options = spec["columns"].get(column["name"], {})
        kind = options.get("kind") or _default_kind(column, target)
        if kind == "numeric":
            resolved.append((column, kind, {**numeric_defaults, **options}))
        elif kind == "categorical":
            effective = {**categorical_defaults, **options}
            categories = _categories_of(column, effective["max_categories"])
            if categories:  # a column with no observed value carries no information
                resolved.append((column, kind, {**effective, "categories": categories}))
    if not resolved:
        raise FeatureSpecError("The feature spec leaves no input columns.", {"columns": "every column is dropped"})
    return resolved


def feature_columns(*, spec: dict, schema: dict, target: str) -> list[str]:
    """The raw input columns the compiled transformer reads, in schema order."""
    return [column["name"] for column, _, _ in _resolve(spec, schema, target)]


def _numeric_pipeline(options: dict):
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

    imputation = options["imputation"]
    if imputation == "constant":
        imputer = SimpleImputer(strategy="constant", fill_value=float(options.get("fill_value", 0.0)))
    else:
        imputer = SimpleImputer(strategy=imputation)
    # keep_empty_features: an all-missing column in a small training slice must
    # not silently change the number of outputs between fit and transform.
    imputer.set_params(keep_empty_features=True)
    steps = [("impute", imputer)]
    scaler = {"standard": StandardScaler, "minmax": MinMaxScaler, "robust": RobustScaler}.get(options["scaling"])
    if scaler is not None:
        steps.append(("scale", scaler()))
    return Pipeline(steps)


def build_preprocessor(*, spec: dict, schema: dict, target: str):
    """Compile ``spec`` into an unfitted ``sklearn.compose.ColumnTransformer``
    reading ``feature_columns(...)`` from a pandas DataFrame (as returned by
    ``apps.datasets.selectors.dataset_version_read_frame``) and producing a
    dense float matrix. Numeric columns sharing the same options form one
    group; every categorical column is one-hot encoded with its fixed
    category list. Raises ``FeatureSpecError`` when the spec does not fit."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder

    groups: dict[tuple, list[str]] = {}
    categorical: list[tuple[str, list[str]]] = []
    for column, kind, options in _resolve(spec, schema, target):
        if kind == "numeric":
            key = (options["imputation"], options["scaling"], float(options.get("fill_value", 0.0)))
            groups.setdefault(key, []).append(column["name"])
        else:
            categorical.append((column["name"], options["categories"]))
    transformers = []
    for index, (key, names) in enumerate(groups.items()):
        options = {"imputation": key[0], "scaling": key[1], "fill_value": key[2]}
        transformers.append((f"numeric{index or ''}", _numeric_pipeline(options), names))
    if categorical:
        encoder = OneHotEncoder(
            categories=[categories for _, categories in categorical],
            handle_unknown="ignore",
            sparse_output=False,
            dtype=np.float64,
        )
        transformers.append(("categorical", encoder, [name for name, _ in categorical]))
    return ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0)


def input_signature(*, spec: dict, schema: dict, target: str, task: str) -> dict:
    """The inputs a model trained with this spec takes, for the registry and
    the predict path: ``{"inputs": [{"name", "type", "nullable",
    "categories"?}], "target", "task"}``. ``nullable`` says whether the
    training data had missing values in the column (the transformer imputes
    them); ``categories`` lists the known levels of one-hot encoded inputs."""
    inputs = []
    for column, kind, options in _resolve(spec, schema, target):
        ctype = column.get("type") if column.get("type") in INPUT_TYPES else "text"
        entry = {"name": column["name"], "type": ctype, "nullable": bool((column.get("null_share") or 0) > 0)}
        if kind == "categorical":
            entry["categories"] = list(options["categories"])
        inputs.append(entry)
    return {"inputs": inputs, "target": target, "task": task}


def onnx_initial_types(*, spec: dict, schema: dict, target: str) -> list:
    """skl2onnx ``initial_types`` for a pipeline built on this spec: one
    ``[None, 1]`` input per column, float for numeric inputs, string for
    one-hot encoded ones."""
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    return [
        (column["name"], FloatTensorType([None, 1]) if kind == "numeric" else StringTensorType([None, 1]))
        for column, kind, _ in _resolve(spec, schema, target)
    ]


def onnx_inputs(*, frame, spec: dict, schema: dict, target: str) -> dict[str, np.ndarray]:
    """Feed for an ONNX session built with ``onnx_initial_types``: numeric
    columns as float32 (missing → NaN), categorical ones as strings
    (missing → "", which the encoder treats like NaN)."""
    feed = {}
    for column, kind, _ in _resolve(spec, schema, target):
        values = frame[column["name"]]
        if kind == "numeric":
            feed[column["name"]] = np.asarray(values.astype("float64"), dtype=np.float32).reshape(-1, 1)
        else:
            strings = [("" if _is_missing(v) else str(v)) for v in values.tolist()]
            feed[column["name"]] = np.asarray(strings, dtype=object).reshape(-1, 1)
    return feed


def _is_missing(value) -> bool:
    if value is None:
        return True
    import pandas as pd

    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def spec_columns_summary(*, spec: dict, schema: dict, target: str) -> list[dict]:
    """Per schema column, the kind it gets and why — for the spec editor."""
    named = (spec or {}).get("columns", {})
    summary = []
    inputs: Iterable[str] = set()
    try:
        inputs = set(feature_columns(spec=spec, schema=schema, target=target))
    except FeatureSpecError:
        inputs = set()
    for column in _schema_columns(schema):
        name = column["name"]
        if name == target:
            kind, source = "target", "target"
        elif name in named:
            kind, source = named[name].get("kind", ""), "spec"
        else:
            kind, source = _default_kind(column, target) or "", "default"
        summary.append({"name": name, "type": column.get("type"), "role": column.get("role"), "kind": kind,
                        "source": source, "is_input": name in inputs})
    return summary


__all__ = [
    "FeatureSpecError",
    "build_preprocessor",
    "default_feature_spec",
    "feature_columns",
    "input_signature",
    "onnx_initial_types",
    "onnx_inputs",
    "validate_feature_spec",
]
