"""Crafted skops files: each names a callable inside a package the platform
used to trust by prefix (scikit-learn, scipy), or a builtin, operator or
functools callable, so that loading it with skops would run code that
creates a marker file. The loader must refuse every one before skops builds
anything, and the marker must never appear."""

import io
import json
import zipfile

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from apps.core import modelio

RUN_SOURCE = ("sklearn.utils._testing", "assert_run_python_script_without_output")


def node(loader, module, cls, **extra):
    return {"__loader__": loader, "__module__": module, "__class__": cls, **extra}


def json_node(value):
    return node("JsonNode", "builtins", "str", content=json.dumps(value), is_json=True)


def tuple_node(*items):
    return node("TupleNode", "builtins", "tuple", content=list(items))


def call(module, name, *args):
    """ConstructorFromReduceNode: skops calls ``module.name(*args)``."""
    return node("ConstructorFromReduceNode", module, name, content=tuple_node(*args))


def called_with_key(func_node, key):
    """A dict whose key type is ``func_node``: skops calls it with ``key``."""
    return node("DictNode", "builtins", "dict", content={key: json_node(1)},
                key_types=node("ListNode", "builtins", "list", content=[func_node]))


def skops_file(root: dict, extra_files: dict | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("schema.json", json.dumps({**root, "protocol": 2, "_skops_version": "0.16.0"}))
        for name, data in (extra_files or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def rewrite_schema(data: bytes, change) -> bytes:
    """A real skops file with its schema.json changed by ``change(schema)``."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    schema = json.loads(files.pop("schema.json"))
    change(schema)
    schema.pop("protocol"), schema.pop("_skops_version")
    return skops_file(schema, files)


def python_writing(marker) -> str:
    return f"open({str(marker)!r}, 'w').write('pwned')"


def _nested_in_a_real_pipeline(marker):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 2))
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, (X[:, 0] > 0).astype(int))

    def inject(schema):
        schema["content"]["content"]["memory"] = call(*RUN_SOURCE, json_node(python_writing(marker)))

    return rewrite_schema(modelio.dumps(model), inject)


def _function_transformer_calling(marker):
    model = make_pipeline(FunctionTransformer(np.log1p), LogisticRegression())
    X = np.abs(np.random.default_rng(0).normal(size=(30, 2)))
    model.fit(X, (X[:, 0] > 0.5).astype(int))

    def swap(schema):
        for item in modelio._nodes(schema):
            if item["__loader__"] == "FunctionNode":
                item["__module__"], item["__class__"] = RUN_SOURCE
                found = item
        assert found

    return rewrite_schema(modelio.dumps(model), swap)


PAYLOADS = {
    # scikit-learn: the test helper that runs a Python source string.
    "sklearn function as constructor": lambda m: skops_file(call(*RUN_SOURCE, json_node(python_writing(m)))),
    "sklearn function as dict key type": lambda m: skops_file(
        called_with_key(node("FunctionNode", *RUN_SOURCE), python_writing(m))),
    "sklearn function nested in a fitted pipeline": _nested_in_a_real_pipeline,
    "FunctionTransformer whose func is a sklearn function": _function_transformer_calling,
    # scipy.sparse: save_npz writes a file wherever the caller says.
    "scipy.sparse function": lambda m: skops_file(call(
        "scipy.sparse", "save_npz", json_node(str(m)), call("scipy.sparse", "csr_matrix", json_node([[1.0]])))),
    # numpy: savetxt writes a file; a ufunc (trusted by skops itself) as a callable.
    "numpy function": lambda m: skops_file(call("numpy", "savetxt", json_node(str(m)), json_node([[1.0]]))),
    "numpy ufunc as dict key type": lambda m: skops_file(
        called_with_key(node("FunctionNode", "numpy", "positive"), "1")),
    "builtins.exec": lambda m: skops_file(call("builtins", "exec", json_node(python_writing(m)))),
    "builtins.eval as dict key type": lambda m: skops_file(
        called_with_key(node("FunctionNode", "builtins", "eval"), python_writing(m))),
    "operator.methodcaller": lambda m: skops_file(called_with_key(
        node("OperatorFuncNode", "operator", "methodcaller", attrs=tuple_node(json_node("format"))), "x")),
    "operator.attrgetter": lambda m: skops_file(called_with_key(
        node("OperatorFuncNode", "operator", "attrgetter", attrs=tuple_node(json_node("__class__"))), "x")),
    "functools.partial of a sklearn function": lambda m: skops_file(called_with_key(
        node("PartialNode", "functools", "partial", content={
            "func": node("FunctionNode", *RUN_SOURCE),
            "args": tuple_node(json_node(python_writing(m))),
            "kwds": node("DictNode", "builtins", "dict", content={},
                         key_types=node("ListNode", "builtins", "list", content=[])),
            "namespace": json_node(None),
        }), ".*")),
    "list node naming a sklearn function": lambda m: skops_file(
        node("ListNode", *RUN_SOURCE, content=[json_node(python_writing(m))])),
    "type node naming builtins.exec": lambda m: skops_file(
        called_with_key(node("TypeNode", "builtins", "exec"), python_writing(m))),
}


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_crafted_files_are_refused_and_run_nothing(payload, tmp_path):
    marker = tmp_path / "pwned.npz" if "scipy" in payload else tmp_path / "pwned"
    data = PAYLOADS[payload](marker)
    with pytest.raises(modelio.ModelFileError) as caught:
        modelio.loads(data)
    assert caught.value.code == "invalid_model_file"
    assert caught.value.details["untrusted_types"], "the refusal names the offending type"
    assert not marker.exists()
    with pytest.raises(modelio.ModelFileError):
        modelio.check(data)
    assert not marker.exists()


def test_the_refusal_names_the_callable(tmp_path):
    data = PAYLOADS["sklearn function as constructor"](tmp_path / "pwned")
    with pytest.raises(modelio.ModelFileError) as caught:
        modelio.loads(data)
    assert caught.value.details["untrusted_types"] == [".".join(RUN_SOURCE)]


def test_an_allowlisted_function_is_the_only_way_a_function_loads(monkeypatch):
    model = make_pipeline(FunctionTransformer(np.log1p), LogisticRegression())
    X = np.abs(np.random.default_rng(0).normal(size=(30, 2)))
    model.fit(X, (X[:, 0] > 0.5).astype(int))
    data = modelio.dumps(model)
    with pytest.raises(modelio.ModelFileError) as caught:
        modelio.loads(data)
    assert "numpy.log1p" in caught.value.details["untrusted_types"]
    monkeypatch.setattr(modelio, "TRUSTED_FUNCTIONS", frozenset({"numpy.log1p"}))
    np.testing.assert_array_equal(modelio.loads(data).predict_proba(X), model.predict_proba(X))
