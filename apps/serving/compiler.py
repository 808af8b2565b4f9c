"""Compile a fitted scikit-learn pipeline to ONNX, and keep the result only
when it answers exactly like scikit-learn.

No Django here: the deploy-time health check (``apps.serving.services``)
hands in the fitted model, the version's signature, the rows the version was
tested on (as JSON-like records, the way the predict path receives them) and
scikit-learn's own answers on those rows.

Method. skl2onnx converts the pipeline with one ``[None, 1]`` input per raw
column (numbers as tensors, categories as strings, "" for a missing
category: see ``apps.datasets.features``). Three precisions are tried in turn:

1. **double**: numeric inputs as float64. ONNX Runtime has no float64 kernel
   for the ``Imputer`` operator skl2onnx emits for ``SimpleImputer``, so a
   numeric ``SimpleImputer`` with NaN as missing value is converted here to
   ``Where(IsNaN(X), statistics, X)``, which runs in float64. Linear models
   then match scikit-learn to ~1e-16.
2. **float**: numeric inputs as float32, skl2onnx's default; tree ensembles
   whose converters only exist in float32 need this.

3. **mixed**: float64 preprocessing, then a cast to float32 in front of the
   final estimator (tree ensembles' float32 answers are cast back to the
   float64 skl2onnx declares for them). scikit-learn's trees cast their input to float32 and
   compare it with float64 thresholds; preprocessing in float32 instead
   moves values across thresholds, so tree ensembles only match this way.

Each candidate is run through the same feed builder the predict path uses
(:class:`apps.serving.predictors.OnnxPredictor`) on the verification rows,
and accepted when the largest absolute difference from scikit-learn's
``predict_proba`` (classification) is at most ``tolerance`` (1e-5), or, for
regression, when ``|onnx - sklearn| <= tolerance * max(1, |sklearn|)``.
When no candidate converts or matches, the version is served by
scikit-learn and the reason is recorded.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from apps.serving.predictors import OnnxPredictor, SklearnPredictor, model_input_names
from apps.serving.signature import NUMERIC_KINDS, CompiledSignature

DEFAULT_TOLERANCE = 1e-5
PRECISIONS = ("double", "mixed", "float")

_register_lock = threading.Lock()
_registered = False


@dataclass
class CompileOutcome:
    """What the compiler decided: ``serving_path`` is "onnx" or "sklearn"."""

    serving_path: str
    reason: str
    onnx_bytes: bytes | None = None
    precision: str | None = None
    max_abs_diff: float | None = None
    rows_checked: int = 0
    attempts: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"serving_path": self.serving_path, "reason": self.reason, "precision": self.precision,
                "max_abs_diff": self.max_abs_diff, "rows_checked": self.rows_checked, "attempts": self.attempts}


class CastToFloat32(TransformerMixin, BaseEstimator):
    """A stateless pipeline step, used only while converting: float64 in,
    float32 out (the "mixed" precision). scikit-learn-side it does the same
    cast, so the wrapped pipeline stays a valid estimator."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.asarray(X, dtype=np.float32)


def _register_converters() -> None:
    """Let numeric ``SimpleImputer`` run in float64, and teach skl2onnx the
    cast step (see the module docstring)."""
    global _registered
    with _register_lock:
        if _registered:
            return
        from skl2onnx import update_registered_converter
        from skl2onnx.algebra.onnx_ops import OnnxCast, OnnxIsNaN, OnnxWhere
        from skl2onnx.common.data_types import DoubleTensorType
        from skl2onnx.common.data_types import FloatTensorType as _Float
        from skl2onnx.operator_converters.imputer_op import convert_sklearn_imputer
        from skl2onnx.shape_calculators.imputer import calculate_sklearn_imputer_output_shapes
        from sklearn.impute import SimpleImputer

        def convert(scope, operator, container):
            imputer = operator.raw_operator
            source = operator.inputs[0]
            missing = imputer.missing_values
            nan_missing = isinstance(missing, float) and np.isnan(missing)
            if not (isinstance(source.type, DoubleTensorType) and nan_missing):
                convert_sklearn_imputer(scope, operator, container)
                return
            statistics = np.asarray(imputer.statistics_, dtype=np.float64).reshape(1, -1)
            opv = container.target_opset
            node = OnnxWhere(OnnxIsNaN(source, op_version=opv), statistics, source, op_version=opv,
                             output_names=operator.outputs[:1])
            node.add_to(scope, container)

        update_registered_converter(SimpleImputer, "SklearnImputer", calculate_sklearn_imputer_output_shapes,
                                    convert, overwrite=True)

        def cast_shape(operator):
            operator.outputs[0].type = _Float([operator.inputs[0].get_first_dimension(),
                                                operator.inputs[0].get_second_dimension()])

        def cast_convert(scope, operator, container):
            node = OnnxCast(operator.inputs[0], to=1, op_version=container.target_opset,  # 1 = FLOAT
                            output_names=operator.outputs[:1])
            node.add_to(scope, container)

        update_registered_converter(CastToFloat32, "TracseqCastToFloat32", cast_shape, cast_convert,
                                    overwrite=True)
        _register_boolean_safe_hist_gradient_boosting()
        _registered = True


def _int_attributes(converter):
    """Wrap a skl2onnx converter so that integer-list node attributes holding
    booleans are passed as 0/1. scikit-learn 1.9 stores the histogram
    gradient boosting trees' ``missing_go_to_left`` as booleans, which
    skl2onnx 1.20 hands on unchanged and onnx refuses ("Expected an int, got
    a boolean"); the values mean the same as 0/1."""

    def convert(scope, operator, container):
        add_node = container.add_node

        def add_node_with_ints(*args, **attrs):
            for key, value in attrs.items():
                if isinstance(value, (list, tuple)) and any(isinstance(v, (bool, np.bool_)) for v in value):
                    attrs[key] = [int(v) for v in value]
            return add_node(*args, **attrs)

        container.add_node = add_node_with_ints
        try:
            converter(scope, operator, container)
        finally:
            del container.add_node  # back to the class's method

    return convert


def _register_boolean_safe_hist_gradient_boosting() -> None:
    from skl2onnx import update_registered_converter
    from skl2onnx._supported_operators import sklearn_operator_name_map
    from skl2onnx.common._registration import get_converter, get_shape_calculator
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    for estimator in (HistGradientBoostingClassifier, HistGradientBoostingRegressor):
        alias = sklearn_operator_name_map[estimator]
        registered = get_converter(alias)
        update_registered_converter(estimator, alias, get_shape_calculator(alias), _int_attributes(registered),
                                    overwrite=True, options=registered.get_allowed_options())


def _convert(model, signature: CompiledSignature, precision: str, task: str) -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType
    from sklearn.pipeline import Pipeline

    _register_converters()
    numeric_type = FloatTensorType if precision == "float" else DoubleTensorType
    if precision == "mixed":
        if not isinstance(model, Pipeline) or len(model.steps) < 2:
            raise ValueError("mixed precision needs a pipeline with a preprocessing step")
        model = Pipeline([*model.steps[:-1], ("to_float32", CastToFloat32()), model.steps[-1]])
    kinds = {f.name: f.kind for f in signature.fields}
    initial_types = [
        (name, numeric_type([None, 1]) if kinds[name] in NUMERIC_KINDS else StringTensorType([None, 1]))
        for name in model_input_names(model, signature)
    ]
    options = {"zipmap": False} if task == "classification" else None
    onx = _cast_tree_outputs(convert_sklearn(model, initial_types=initial_types, options=options))
    metadata = {"task": task, "precision": precision}
    if task == "classification":
        metadata["classes"] = [_json_value(c) for c in model.classes_]
    entry = onx.metadata_props.add()
    entry.key = "tracseq_serving"
    entry.value = json.dumps(metadata)
    return onx.SerializeToString()


def _cast_tree_outputs(onx):
    """ONNX Runtime's tree ensembles always answer in float32, but skl2onnx
    1.20 declares their outputs float64 when the graph's inputs are float64
    (histogram gradient boosting), or passes them through an ``Identity`` to
    a float64 graph output (gradient boosting), which ONNX Runtime refuses.
    Give such an output its float32 name and cast it to the declared float64
    (or make that ``Identity`` the cast): the same numbers, a graph that
    loads. Verification still decides whether they are close enough."""
    from onnx import TensorProto, helper

    declared = {info.name: info.type.tensor_type.elem_type
                for info in [*onx.graph.value_info, *onx.graph.output]}
    tree_outputs = set()
    for node in onx.graph.node:
        if node.domain == "ai.onnx.ml" and node.op_type in ("TreeEnsembleClassifier", "TreeEnsembleRegressor"):
            first = 1 if node.op_type == "TreeEnsembleClassifier" else 0  # a classifier's first output is the label
            tree_outputs.update(node.output[first:])
    nodes = list(onx.graph.node)
    del onx.graph.node[:]
    for original in nodes:
        node, casts = original, []
        if node.op_type == "Identity" and node.input[0] in tree_outputs \
                and declared.get(node.output[0]) == TensorProto.DOUBLE:
            node = helper.make_node("Cast", [original.input[0]], [original.output[0]], to=TensorProto.DOUBLE,
                                    name=f"{original.name}__to_double")
        elif node.domain == "ai.onnx.ml" and node.op_type in ("TreeEnsembleClassifier", "TreeEnsembleRegressor"):
            for position, name in enumerate(node.output):
                if name in tree_outputs and declared.get(name) == TensorProto.DOUBLE:
                    node.output[position] = f"{name}__float32"
                    casts.append(helper.make_node("Cast", [f"{name}__float32"], [name], to=TensorProto.DOUBLE,
                                                  name=f"{name}__to_double"))
        onx.graph.node.append(node)
        onx.graph.node.extend(casts)
    return onx


def _first_line(exc: Exception, limit: int = 200) -> str:
    """A conversion error in one line: skl2onnx messages can dump whole trees."""
    text = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _json_value(value):
    """A class label as plain JSON (numpy scalars become Python ones)."""
    return value.item() if isinstance(value, np.generic) else value


def reference_outputs(model, frame, task: str) -> np.ndarray:
    """scikit-learn's answer on the verification rows: class probabilities
    for classification, predictions for regression."""
    if task == "classification":
        return np.asarray(model.predict_proba(frame), dtype=np.float64)
    return np.asarray(model.predict(frame), dtype=np.float64).reshape(-1)


def max_difference(candidate: np.ndarray, reference: np.ndarray, task: str) -> float:
    """Largest absolute difference; for regression scaled by max(1, |reference|)."""
    if candidate.shape != reference.shape:
        return float("inf")
    diff = np.abs(candidate - reference)
    if task != "classification":
        diff = diff / np.maximum(1.0, np.abs(reference))
    return float(diff.max()) if diff.size else 0.0


def _outputs(predictor, columns: dict, n: int, task: str) -> np.ndarray:
    raw = predictor.raw_outputs(columns, n)
    return np.asarray(raw, dtype=np.float64).reshape(n, -1) if task == "classification" else \
        np.asarray(raw, dtype=np.float64).reshape(-1)


def compile_model(*, model, signature: dict, records: list[dict], reference: np.ndarray, task: str,
                  tolerance: float = DEFAULT_TOLERANCE) -> CompileOutcome:
    """Try ONNX (double, then float); return the first candidate within
    ``tolerance`` of ``reference`` on ``records``, else a scikit-learn outcome
    saying why."""
    compiled_signature = CompiledSignature(signature)
    if not records:
        return CompileOutcome("sklearn", "no rows to verify an ONNX export against, so scikit-learn serves")
    columns = compiled_signature.columns(records)
    n = len(records)
    attempts = []
    for precision in PRECISIONS:
        try:
            onnx_bytes = _convert(model, compiled_signature, precision, task)
            predictor = OnnxPredictor(onnx_bytes)
            candidate = _outputs(predictor, columns, n, task)
        except Exception as exc:  # skl2onnx and onnxruntime raise many types; each is a reason to fall back
            attempts.append({"precision": precision, "ok": False, "error": _first_line(exc)})
            continue
        diff = max_difference(candidate, reference, task)
        ok = diff <= tolerance
        attempts.append({"precision": precision, "ok": ok, "max_abs_diff": diff})
        if ok:
            return CompileOutcome(
                "onnx",
                f"ONNX ({precision}) matches scikit-learn on {n} verification rows "
                f"(max abs difference {diff:.2e} <= {tolerance:g})",
                onnx_bytes=onnx_bytes, precision=precision, max_abs_diff=diff, rows_checked=n, attempts=attempts,
            )
    reasons = []
    for attempt in attempts:
        if attempt["ok"] is False and "error" in attempt:
            reasons.append(f"{attempt['precision']}: conversion failed ({attempt['error']})")
        else:
            reasons.append(f"{attempt['precision']}: differs by {attempt['max_abs_diff']:.2e} > {tolerance:g}")
    return CompileOutcome("sklearn", "ONNX export not used, scikit-learn serves: " + "; ".join(reasons),
                          rows_checked=n, attempts=attempts,
                          max_abs_diff=min((a["max_abs_diff"] for a in attempts if "max_abs_diff" in a),
                                           default=None))


def sklearn_path_difference(*, model, signature: dict, records: list[dict], reference: np.ndarray,
                            task: str) -> float:
    """How far the scikit-learn serving path (frame rebuilt from JSON
    records) is from the reference computed on the stored rows: 0 unless the
    rebuilt frame differs from the training data's types."""
    predictor = SklearnPredictor(model, signature=CompiledSignature(signature), task=task)
    columns = predictor.signature.columns(records)
    return max_difference(_outputs(predictor, columns, len(records), task), reference, task)


def paths_difference(*, first, second, records: list[dict], signature: CompiledSignature, task: str) -> float:
    """How far two predictors (the compiled ONNX file and the scikit-learn
    fallback) answer apart on the same JSON records, measured like the
    compiler's verification (:func:`max_difference`, ``second`` as reference)."""
    columns = signature.columns(records)
    n = len(records)
    return max_difference(_outputs(first, columns, n, task), _outputs(second, columns, n, task), task)


__all__ = ["DEFAULT_TOLERANCE", "CompileOutcome", "compile_model", "max_difference", "model_input_names",
           "paths_difference", "reference_outputs", "sklearn_path_difference"]
