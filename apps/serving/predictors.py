"""The two ways a deployed version answers: an ONNX Runtime session compiled
and verified at deploy time, or the scikit-learn pipeline itself.

No Django here. Both take the column lists produced by
``CompiledSignature.columns`` and return ``(predictions, probabilities)``:
for classification the predicted class is the one with the highest
probability (numpy ``argmax``: the first on ties, as scikit-learn's
``predict`` does for the estimators the platform trains) and probabilities
are ``[{"<class>": p, ...}, ...]``; for regression probabilities are None.
"""

from __future__ import annotations

import abc
import json

import numpy as np

from apps.serving.signature import NUMERIC_KINDS, CompiledSignature

_ONNX_DTYPES = {"tensor(double)": np.float64, "tensor(float)": np.float32, "tensor(string)": None}


def _json_value(value):
    return value.item() if isinstance(value, np.generic) else value


def model_input_names(model, signature: CompiledSignature) -> list[str]:
    """The raw columns a fitted pipeline reads, in its own order (its
    ``feature_names_in_`` when it was fitted on a frame)."""
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        return list(signature.names)
    names = [str(n) for n in names]
    unknown = [n for n in names if n not in signature.names]
    if unknown:
        raise ValueError(f"the model reads columns its signature lacks: {', '.join(unknown)}")
    return names


class _Answers(abc.ABC):
    """Turns raw model outputs into the JSON answer (shared by both paths);
    each path supplies ``raw_outputs``."""

    task: str
    classes: list
    _keys: list

    def _set_classes(self, classes) -> None:
        self.classes = [_json_value(c) for c in classes] if classes is not None else []
        self._keys = [str(c) for c in self.classes]

    def answers(self, raw: np.ndarray) -> tuple[list, list[dict] | None]:
        if not np.isfinite(raw).all():
            # NaN has no JSON spelling, and a NaN probability is no answer.
            raise ValueError("the model produced non-finite outputs (NaN or infinity)")
        if self.task == "classification":
            classes = self.classes
            keys = self._keys
            predictions = [classes[i] for i in raw.argmax(axis=1).tolist()]
            probabilities = [dict(zip(keys, row, strict=True)) for row in raw.tolist()]
            return predictions, probabilities
        return raw.reshape(-1).tolist(), None

    def predict(self, columns: dict[str, list], n: int) -> tuple[list, list[dict] | None]:
        return self.answers(self.raw_outputs(columns, n))

    @abc.abstractmethod
    def raw_outputs(self, columns: dict[str, list], n: int) -> np.ndarray:
        """Class probabilities (classification) or values (regression), one row per instance."""


class OnnxPredictor(_Answers):
    """An ONNX Runtime session, one intra-op thread (the web server's threads
    and processes provide the parallelism; more would oversubscribe the CPUs)."""

    serving_path = "onnx"

    def __init__(self, onnx_bytes: bytes):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
        meta = json.loads(self.session.get_modelmeta().custom_metadata_map.get("tracseq_serving", "{}"))
        self.task = meta.get("task", "classification")
        self.precision = meta.get("precision")
        self._set_classes(meta.get("classes") if self.task == "classification" else None)
        self._inputs = []
        for node in self.session.get_inputs():
            if node.type not in _ONNX_DTYPES:
                raise ValueError(f"unsupported ONNX input type {node.type} for {node.name}")
            self._inputs.append((node.name, _ONNX_DTYPES[node.type]))
        outputs = [node.name for node in self.session.get_outputs()]
        if self.task == "classification":
            wanted = "probabilities" if "probabilities" in outputs else outputs[-1]
        else:
            wanted = outputs[0]
        self._outputs = [wanted]

    def feeds(self, columns: dict[str, list], n: int) -> dict[str, np.ndarray]:
        feeds = {}
        for name, dtype in self._inputs:
            values = columns[name]
            if dtype is None:
                # A missing category is "" (see apps.datasets.features).
                feeds[name] = np.array([v if v is not None else "" for v in values], dtype=object).reshape(n, 1)
            else:
                # None becomes NaN, which the graph's imputers replace.
                feeds[name] = np.array(values, dtype=dtype).reshape(n, 1)
        return feeds

    def raw_outputs(self, columns: dict[str, list], n: int) -> np.ndarray:
        return self.session.run(self._outputs, self.feeds(columns, n))[0]


class SklearnPredictor(_Answers):
    """The fitted scikit-learn pipeline, fed a pandas frame with the dtypes
    the training data had (numbers as float64 with NaN, strings as pandas'
    string dtype with NaN for missing)."""

    serving_path = "sklearn"

    def __init__(self, model, *, signature: CompiledSignature, task: str):
        self.model = model
        self.signature = signature
        self.task = task
        self._set_classes(getattr(model, "classes_", None) if task == "classification" else None)
        kinds = {f.name: f.kind for f in signature.fields}
        self._columns = [(name, kinds[name] in NUMERIC_KINDS) for name in model_input_names(model, signature)]

    def frame(self, columns: dict[str, list], n: int):
        import pandas as pd

        data = {}
        for name, numeric in self._columns:
            values = columns[name]
            data[name] = np.array(values, dtype=np.float64) if numeric else pd.Series(values, dtype="str")
        return pd.DataFrame(data, index=range(n))

    def raw_outputs(self, columns: dict[str, list], n: int) -> np.ndarray:
        frame = self.frame(columns, n)
        if self.task == "classification":
            return np.asarray(self.model.predict_proba(frame), dtype=np.float64)
        return np.asarray(self.model.predict(frame), dtype=np.float64)


__all__ = ["OnnxPredictor", "SklearnPredictor", "model_input_names"]
