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


def test_types_off_the_trusted_list_are_refused(settings, fitted):
    data = modelio.dumps(fitted[1])
    settings.MODEL_TRUSTED_TYPES = ["numpy.dtype"]
    with pytest.raises(modelio.ModelFileError) as exc:
        modelio.loads(data)
    assert exc.value.code == "untrusted_model_types"
    assert exc.value.details["untrusted_types"] == [
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"
    ]


def test_a_plain_model_needs_no_extra_trust(settings):
    settings.MODEL_TRUSTED_TYPES = []
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 2))
    model = LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
    assert modelio.untrusted_types(modelio.dumps(model)) == []
