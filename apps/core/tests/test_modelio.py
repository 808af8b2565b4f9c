import io
import pickle

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from apps.core import modelio


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    return X, make_pipeline(StandardScaler(), HistGradientBoostingClassifier(max_iter=20)).fit(X, y)


def test_round_trip_with_hash(fitted):
    X, model = fitted
    data = modelio.dumps(model)
    loaded = modelio.loads(data, expected_sha256=modelio.sha256_bytes(data))
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X))


def test_hash_mismatch_is_refused(fitted):
    data = modelio.dumps(fitted[1])
    with pytest.raises(modelio.ModelFileError) as exc:
        modelio.loads(data, expected_sha256="0" * 64)
    assert exc.value.code == "model_hash_mismatch"


def test_pickle_and_joblib_are_refused(fitted):
    import joblib

    for data in (pickle.dumps(fitted[1]), _joblib_bytes(joblib, fitted[1])):
        with pytest.raises(modelio.ModelFileError, match="pickle or joblib"):
            modelio.loads(data)


def _joblib_bytes(joblib, model):
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


def test_garbage_is_refused():
    with pytest.raises(modelio.ModelFileError, match="Not a skops"):
        modelio.loads(b"PK\x03\x04 not really a zip")
    with pytest.raises(modelio.ModelFileError, match="Not a skops"):
        modelio.loads(b"hello")


def test_prefixes_no_longer_widen_the_trusted_classes(settings, fitted):
    from sklearn.preprocessing import PolynomialFeatures

    rng = np.random.default_rng(2)
    X = rng.normal(size=(40, 2))
    model = make_pipeline(PolynomialFeatures(), LogisticRegression()).fit(X, (X[:, 0] > 0).astype(int))
    data = modelio.dumps(model)
    settings.MODEL_TRUSTED_TYPES = ["sklearn."]
    with pytest.raises(modelio.ModelFileError) as exc:
        modelio.loads(data)
    assert exc.value.code == "invalid_model_file"
    assert exc.value.details["untrusted_types"] == ["sklearn.preprocessing._polynomial.PolynomialFeatures"]
    settings.MODEL_TRUSTED_TYPES = ["sklearn.preprocessing._polynomial.PolynomialFeatures"]
    assert modelio.loads(data).predict(X[:3]).shape == (3,)


def test_every_platform_class_name_resolves_to_a_class():
    for name in modelio.platform_class_names():
        assert isinstance(modelio.resolve(name), type), name


def _tiny_frame():
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"conc": rng.normal(size=60), "din": rng.normal(size=60),
                          "kit": rng.choice(["a", "b", "c"], size=60).astype(object)})
    frame.loc[3, "conc"] = np.nan
    frame.loc[4, "kit"] = np.nan
    schema = {"columns": [{"name": "conc", "type": "float"}, {"name": "din", "type": "float"},
                          {"name": "kit", "type": "categorical", "stats": {"counts": {"a": 20, "b": 20, "c": 19}}},
                          {"name": "y", "type": "float"}]}
    return frame, schema


def _platform_models():
    from apps.experiments import estimators as est

    scalings = ("standard", "minmax", "robust")
    count = 0
    for name in est.estimator_names():
        for task in est.ESTIMATORS[name].tasks:
            labels = ("binary", "multiclass") if task == est.CLASSIFICATION else ("values",)
            for label in labels:
                count += 1
                yield name, task, label, scalings[count % 3]


@pytest.mark.parametrize(("estimator", "task", "labels", "scaling"), list(_platform_models()))
def test_every_model_the_platform_trains_loads(estimator, task, labels, scaling):
    from sklearn.pipeline import Pipeline

    from apps.datasets.features import build_preprocessor
    from apps.experiments import estimators as est

    frame, schema = _tiny_frame()
    X = frame[["conc", "din", "kit"]]
    y = {"binary": (frame["din"] > 0).astype(int),
         "multiclass": np.where(frame["din"] > 0.5, "high", np.where(frame["din"] < -0.5, "low", "mid")),
         "values": frame["din"] * 2.0}[labels]
    model = Pipeline([
        ("preprocess", build_preprocessor(spec={"numeric": {"scaling": scaling}}, schema=schema, target="y")),
        ("model", est.build_estimator(estimator, task, {}, seed=0)),
    ]).fit(X, y)
    data = modelio.dumps(model)
    assert modelio.refused_types(data) == []
    loaded = modelio.loads(data, expected_sha256=modelio.sha256_bytes(data))
    if task == est.CLASSIFICATION:
        np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    else:
        np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_a_file_object_loads_like_bytes(fitted, tmp_path):
    X, model = fitted
    path = tmp_path / "model.skops"
    path.write_bytes(modelio.dumps(model))
    with open(path, "rb") as handle:
        loaded = modelio.load(handle, expected_sha256=modelio.sha256_bytes(path.read_bytes()))
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X))


def test_only_the_model_loader_calls_skops_load():
    """Every path loads through apps.core.modelio, so none can skip its checks."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    pattern = re.compile(r"\b(sio|skops\.io|_persist)\.loads?\(|from skops\.io import[^\n]*\bloads?\b")
    offenders = []
    for folder in ("apps", "mlops_site", "celery_app", "docker", "clients"):
        for path in (root / folder).rglob("*.py"):
            if path.match("apps/core/modelio.py") or "tests" in path.parts:
                continue
            if pattern.search(path.read_text(encoding="utf-8")):
                offenders.append(str(path.relative_to(root)))
    assert offenders == []
    assert pattern.search((root / "apps/core/modelio.py").read_text(encoding="utf-8"))


@pytest.mark.parametrize("entry", ["sklearn.", "scipy.sparse.",
                                   "sklearn.utils._testing.assert_run_python_script_without_output", "builtins.exec",
                                   "numpy.dtype", "sklearn.linear_model.LogisticRegression"])
def test_startup_refuses_prefixes_and_functions_in_the_trusted_types(settings, entry):
    from apps.core.checks import model_trusted_types_are_exact_classes

    settings.MODEL_TRUSTED_TYPES = [entry]
    errors = model_trusted_types_are_exact_classes()
    assert [e.id for e in errors] == ["core.E001"] and entry in errors[0].msg
    settings.MODEL_TRUSTED_TYPES = ["sklearn.linear_model._logistic.LogisticRegression"]
    assert model_trusted_types_are_exact_classes() == []
