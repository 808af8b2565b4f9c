"""ONNX compilation: equivalence with scikit-learn to 1e-5 where it converts,
and the recorded fallback where it does not."""

import numpy as np
import pytest

from apps.serving.compiler import compile_model, reference_outputs
from apps.serving.predictors import OnnxPredictor, SklearnPredictor
from apps.serving.signature import CompiledSignature
from apps.serving.tests.factories import fit_nan_intolerant_pipeline, fit_pipeline


@pytest.mark.parametrize(("estimator", "precision"), [
    ("logistic", "double"),
    ("forest", "mixed"),
    # Needs the boolean-attribute fix in apps.serving.compiler to convert at all.
    ("hist_gradient_boosting", None),
    # Its probabilities pass through an Identity that skl2onnx declares float64.
    ("gradient_boosting", "mixed"),
])
def test_onnx_matches_sklearn_on_the_test_rows(estimator, precision):
    model, signature, records, frame = fit_pipeline(estimator=estimator)
    reference = reference_outputs(model, frame, "classification")
    outcome = compile_model(model=model, signature=signature, records=records, reference=reference,
                            task="classification")
    assert outcome.serving_path == "onnx", outcome.reason
    assert precision is None or outcome.precision == precision
    assert outcome.max_abs_diff <= 1e-5
    assert outcome.rows_checked == len(records) > 100

    # The predictor the web process builds from the stored bytes gives the
    # same classes and probabilities as scikit-learn, row by row.
    predictor = OnnxPredictor(outcome.onnx_bytes)
    columns = CompiledSignature(signature).columns(records)
    predictions, probabilities = predictor.predict(columns, len(records))
    assert predictions == [int(c) for c in model.predict(frame)]
    got = np.array([[row[str(c)] for c in model.classes_] for row in probabilities])
    assert np.abs(got - model.predict_proba(frame)).max() <= 1e-5


def test_a_model_that_does_not_convert_falls_back_to_sklearn_with_the_reason():
    model, signature, records, frame = fit_pipeline(estimator="label_spreading")
    reference = reference_outputs(model, frame, "classification")
    outcome = compile_model(model=model, signature=signature, records=records, reference=reference,
                            task="classification")
    assert outcome.serving_path == "sklearn"
    assert outcome.onnx_bytes is None
    assert "scikit-learn serves" in outcome.reason and "conversion failed" in outcome.reason
    assert [a["precision"] for a in outcome.attempts] == ["double", "mixed", "float"]
    # The fallback itself answers exactly like the model.
    predictor = SklearnPredictor(model, signature=CompiledSignature(signature), task="classification")
    predictions, _ = predictor.predict(CompiledSignature(signature).columns(records), len(records))
    assert predictions == [int(c) for c in model.predict(frame)]


def test_a_conversion_that_does_not_match_is_refused(monkeypatch):
    model, signature, records, frame = fit_pipeline(estimator="logistic")
    reference = reference_outputs(model, frame, "classification")
    # Compare against a reference a little off: every candidate must be refused.
    outcome = compile_model(model=model, signature=signature, records=records, reference=reference + 1e-3,
                            task="classification")
    assert outcome.serving_path == "sklearn"
    assert "differs by" in outcome.reason
    assert all(a["ok"] is False for a in outcome.attempts)


def test_non_finite_outputs_are_an_error_not_a_nan_answer():
    model, signature, records = fit_nan_intolerant_pipeline()
    reference = reference_outputs(model, __import__("pandas").DataFrame(records), "classification")
    outcome = compile_model(model=model, signature=signature, records=records, reference=reference,
                            task="classification")
    assert outcome.serving_path == "onnx", outcome.reason
    predictor = OnnxPredictor(outcome.onnx_bytes)
    bad = CompiledSignature(signature).columns([{**records[0], "concentration_ng_ul": None}])
    with pytest.raises(ValueError, match="non-finite"):
        predictor.predict(bad, 1)
