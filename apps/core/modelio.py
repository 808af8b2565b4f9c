"""Model files: written and read with skops, never with pickle, through one
loader (:func:`loads` / :func:`load`) that every path uses.

skops rebuilds a file by calling what the file names: the class of an
``ObjectNode``, the constructor of a ``ConstructorFromReduceNode`` (with
arguments from the file), the type of a list or dict node, a function
(``FunctionNode``) or a ``functools.partial`` later called with a dict key.
Trusting a module *prefix* such as ``sklearn.`` therefore trusts every
function in scikit-learn, a test helper that runs Python source included.

So before skops sees a file, its ``schema.json`` is walked here, every node:

* the node kind must be one the platform accepts (functions, methods,
  partials, ``operator`` callables and defaultdicts are refused, unless the
  exact function is in ``TRUSTED_FUNCTIONS``, empty by default);
* a node that instantiates a class (object, reduce, tree, loss nodes) must
  name an exact class of :func:`trusted_class_names` (what the platform trains
  plus ``MODEL_TRUSTED_TYPES``) that resolves to a class, never a function;
* containers, arrays, dtypes, random states, sparse matrices and type
  references must name the exact builtin / numpy / scipy class their node
  calls.

Then ``skops.io.get_untrusted_types`` must report nothing outside that list
either, and only then is ``skops.io.loads`` called, trusting just those names.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import io
import json
import zipfile
from typing import BinaryIO

import numpy as np
import skops.io as sio
from django.conf import settings

from apps.core.errors import ValidationFailed

PICKLE_MAGIC = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")
CHUNK_SIZE = 1024 * 1024

# Exact functions a model file may reference (e.g. a FunctionTransformer's
# ``func``). The platform trains no model that needs one.
TRUSTED_FUNCTIONS: frozenset[str] = frozenset()

# Node kinds that instantiate the class they name (``cls.__new__`` + state,
# or ``cls(*args_from_file)``): the name must be a trusted class.
_CLASS_NODES = {"ObjectNode", "ConstructorFromReduceNode", "TreeNode", "LossNode", "ReduceNode"}
# Node kinds that call exactly the builtin they name.
_BUILTIN_NODES = {
    "DictNode": {"builtins.dict", "collections.OrderedDict"},
    "ListNode": {"builtins.list"},
    "TupleNode": {"builtins.tuple"},
    "SetNode": {"builtins.set"},
    "SliceNode": {"builtins.slice"},
    "BytesNode": {"builtins.bytes"},
    "BytearrayNode": {"builtins.bytearray"},
    "DTypeNode": {"numpy.dtype"},
    "RandomStateNode": {"numpy.random.mtrand.RandomState"},
    "RandomGeneratorNode": {"numpy.random._generator.Generator"},
}
# Type references are handed back as objects and may be called with a key
# from the file (dict key types), so only plain value types are accepted.
_BUILTIN_TYPES = {f"builtins.{t}" for t in ("str", "int", "float", "bool", "complex", "bytes", "list", "tuple",
                                            "dict", "set")}
# JsonNode only runs json.loads; its names are not used, but must still look
# like what skops writes.
_JSON_NAMES = {f"builtins.{t}" for t in ("str", "int", "float", "bool", "NoneType", "list", "dict")}


class ModelFileError(ValidationFailed):
    code = "invalid_model_file"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dumps(model) -> bytes:
    """Serialize a fitted estimator or pipeline to skops bytes."""
    return sio.dumps(model)


# --- What is trusted ----------------------------------------------------------------

def _platform_classes() -> list[type]:
    """Every class a pipeline the platform trains is made of (see
    apps/datasets/features.py and apps/experiments/estimators/catalogue.py), with the
    internal objects scikit-learn keeps inside them once fitted."""
    from sklearn._loss import _loss as cyloss
    from sklearn._loss import link, loss
    from sklearn.calibration import CalibratedClassifierCV, _CalibratedClassifier, _SigmoidCalibration
    from sklearn.compose import ColumnTransformer
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.ensemble._hist_gradient_boosting.binning import _BinMapper
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge, RidgeClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import (
        FunctionTransformer,
        LabelBinarizer,
        LabelEncoder,
        MinMaxScaler,
        OneHotEncoder,
        RobustScaler,
        StandardScaler,
    )
    from sklearn.svm import SVC, SVR
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
    from sklearn.tree._tree import Tree

    return [
        Pipeline, ColumnTransformer, SimpleImputer, StandardScaler, MinMaxScaler, RobustScaler, OneHotEncoder,
        LabelEncoder, LabelBinarizer,
        # ColumnTransformer's "passthrough" becomes a FunctionTransformer
        # without a function; any function it names is a FunctionNode, refused.
        FunctionTransformer,
        LogisticRegression, RidgeClassifier, Ridge, SVC, SVR, CalibratedClassifierCV, _CalibratedClassifier,
        _SigmoidCalibration, RandomForestClassifier, RandomForestRegressor, DecisionTreeClassifier,
        DecisionTreeRegressor, Tree, GradientBoostingClassifier, GradientBoostingRegressor, DummyClassifier,
        DummyRegressor, HistGradientBoostingClassifier, HistGradientBoostingRegressor, _BinMapper, TreePredictor,
        loss.HalfBinomialLoss, loss.HalfMultinomialLoss, loss.HalfSquaredError,
        cyloss.CyHalfBinomialLoss, cyloss.CyHalfMultinomialLoss, cyloss.CyHalfSquaredError,
        link.IdentityLink, link.LogitLink, link.MultinomialLogit, link.Interval,
    ]


def _type_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__name__}"


@functools.cache
def platform_class_names() -> frozenset[str]:
    return frozenset(_type_name(cls) for cls in _platform_classes())


def resolve(name: str):
    """The object ``module.attr`` names, or None when it does not exist."""
    module, _, attr = name.rpartition(".")
    if not module or not attr:
        return None
    try:
        return getattr(importlib.import_module(module), attr, None)
    except ImportError:
        return None


def extra_type_problems(names) -> list[str]:
    """Why entries of ``MODEL_TRUSTED_TYPES`` cannot be trusted: each must be
    the exact name of a scikit-learn estimator class (a ``BaseEstimator``
    subclass), never a prefix, a function or a module attribute."""
    from sklearn.base import BaseEstimator

    problems = []
    for name in names:
        if not isinstance(name, str) or not name or name.endswith(".") or "*" in name:
            problems.append(f"{name!r} is a prefix or pattern; list exact class names "
                            "(e.g. sklearn.linear_model._logistic.LogisticRegression)")
            continue
        found = resolve(name)
        if not isinstance(found, type):
            problems.append(f"{name!r} is not a class (functions and module attributes are never trusted)")
        elif not issubclass(found, BaseEstimator) or _type_name(found) != name:
            problems.append(f"{name!r} is not a scikit-learn estimator class under its own module name")
    return problems


def trusted_class_names() -> frozenset[str]:
    """The exact classes a model file may instantiate: the platform's own and
    the valid entries of ``MODEL_TRUSTED_TYPES``."""
    extra = [n for n in getattr(settings, "MODEL_TRUSTED_TYPES", []) if not extra_type_problems([n])]
    return platform_class_names() | frozenset(extra)


@functools.cache
def _is_class(name: str) -> bool:
    return isinstance(resolve(name), type)


def _is_numpy_scalar_type(name: str) -> bool:
    if not name.startswith("numpy.") or name.count(".") != 1:
        return False
    found = resolve(name)
    return isinstance(found, type) and issubclass(found, np.generic)


def _is_sparse_class(name: str) -> bool:
    if not name.startswith("scipy.sparse."):
        return False
    from scipy import sparse

    found = resolve(name)
    return isinstance(found, type) and issubclass(found, (sparse.spmatrix, sparse.sparray))


# --- Checking a file -----------------------------------------------------------------

def _read(source: bytes | BinaryIO) -> BinaryIO:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return io.BytesIO(bytes(source))
    source.seek(0)
    return source


def check_format(source: bytes | BinaryIO) -> None:
    """Refuse anything that is not a skops archive, naming pickle/joblib files."""
    handle = _read(source)
    head = handle.read(2)
    handle.seek(0)
    if head in PICKLE_MAGIC or head[:1] == b"\x80":
        raise ModelFileError(
            "This looks like a pickle or joblib file. The platform only accepts skops files "
            "(skops.io.dump), because unpickling can run arbitrary code.",
            details={"detected_format": "pickle"},
        )
    if not zipfile.is_zipfile(handle):
        raise ModelFileError("Not a skops model file (expected a skops zip archive).",
                             details={"detected_format": "unknown"})
    handle.seek(0)
    with zipfile.ZipFile(handle) as archive:
        if "schema.json" not in archive.namelist():
            raise ModelFileError("Not a skops model file: the archive has no schema.json.",
                                 details={"detected_format": "zip"})
    handle.seek(0)


def _schema(handle: BinaryIO) -> dict:
    with zipfile.ZipFile(handle) as archive:
        try:
            schema = json.loads(archive.read("schema.json"))
        except ValueError as exc:
            raise ModelFileError("The model file's schema.json is not valid JSON.",
                                 details={"detected_format": "zip"}) from exc
    handle.seek(0)
    if not isinstance(schema, dict):
        raise ModelFileError("The model file's schema.json is not a skops schema.")
    return schema


def _nodes(value):
    """Every skops node (a dict with ``__loader__``) anywhere in the schema,
    whatever key it hides under: skops only follows known keys, so this is
    a superset of what it would build."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "__loader__" in item:
                yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _bit_generator_name(node: dict) -> str | None:
    try:
        return json.loads(node["content"]["bit_generator"]["content"]["bit_generator"]["content"])
    except (KeyError, TypeError, ValueError):
        return None


def _node_problem(node: dict, trusted: frozenset[str]) -> str | None:
    """The offending name when ``node`` would call something not trusted."""
    loader = node.get("__loader__")
    name = f"{node.get('__module__')}.{node.get('__class__')}"
    if loader in _CLASS_NODES:
        return None if name in trusted and _is_class(name) else name
    if loader in _BUILTIN_NODES:
        if name not in _BUILTIN_NODES[loader]:
            return name
        if loader == "RandomGeneratorNode":
            generator = _bit_generator_name(node)
            found = resolve(f"numpy.random.{generator}") if isinstance(generator, str) else None
            if not (isinstance(found, type) and issubclass(found, np.random.BitGenerator)):
                return f"numpy.random.{generator}"
        return None
    if loader == "JsonNode":
        return None if name in _JSON_NAMES else name
    if loader == "CachedNode":
        return None  # refers to a node checked where it was first written
    if loader == "NdArrayNode":
        return None if name == "numpy.ndarray" or _is_numpy_scalar_type(name) else name
    if loader == "SparseMatrixNode":
        return None if _is_sparse_class(name) else name
    if loader == "TypeNode":
        ok = name in _BUILTIN_TYPES or _is_numpy_scalar_type(name) or (name in trusted and _is_class(name))
        return None if ok else name
    if loader == "FunctionNode":
        return None if name in TRUSTED_FUNCTIONS else name
    # MethodNode, PartialNode, OperatorFuncNode, DefaultDictNode and any
    # kind this platform does not know all lead to calling something the
    # file chooses.
    return f"{name} ({loader})"


def refused_types(source: bytes | BinaryIO) -> list[str]:
    """Names in the model file the platform will not instantiate or call
    (empty when the file may be loaded). Pickle/joblib and non-skops files
    raise :class:`ModelFileError`."""
    check_format(source)
    handle = _read(source)
    trusted = trusted_class_names()
    bad = {problem for node in _nodes(_schema(handle)) if (problem := _node_problem(node, trusted))}
    try:
        reported = sio.get_untrusted_types(file=handle)
    except Exception as exc:  # skops refuses malformed trees while building them, before any call
        raise ModelFileError(f"The model file is malformed: {type(exc).__name__}: {exc}"[:300]) from exc
    finally:
        handle.seek(0)
    accepted = trusted | {name for names in _BUILTIN_NODES.values() for name in names}
    bad.update(name for name in reported if name not in accepted)
    return sorted(bad)


def _refuse_untrusted(handle: BinaryIO) -> list[str]:
    bad = refused_types(handle)
    if bad:
        raise ModelFileError(
            "The model file names functions or classes the platform does not trust: "
            f"{', '.join(bad)}. Only the exact estimator, transformer and pipeline classes the platform "
            "trains (plus MODEL_TRUSTED_TYPES) are loaded.",
            details={"untrusted_types": bad},
        )
    reported = sio.get_untrusted_types(file=handle)
    handle.seek(0)
    return reported


def _sha256_of(handle: BinaryIO) -> str:
    digest = hashlib.sha256()
    handle.seek(0)
    while chunk := handle.read(CHUNK_SIZE):
        digest.update(chunk)
    handle.seek(0)
    return digest.hexdigest()


def load(source: bytes | BinaryIO, *, expected_sha256: str | None = None):
    """THE model loader: hash, format and every node checked, then skops
    loads the file trusting only names that passed. Every path (upload,
    registration, gates, health check, runtime, serving pods) comes here."""
    handle = _read(source)
    if expected_sha256 is not None and _sha256_of(handle) != expected_sha256:
        raise ModelFileError("The model file does not match its recorded SHA-256; refusing to load it.",
                             code="model_hash_mismatch")
    check_format(handle)
    trusted = _refuse_untrusted(handle)
    try:
        return sio.load(handle, trusted=trusted)
    finally:
        handle.seek(0)


def loads(data: bytes, *, expected_sha256: str | None = None):
    """:func:`load` for bytes."""
    return load(data, expected_sha256=expected_sha256)


def check(source: bytes | BinaryIO) -> None:
    """Refuse (``ModelFileError``) a file :func:`load` would refuse, without
    building the model."""
    check_format(source)
    _refuse_untrusted(_read(source))
