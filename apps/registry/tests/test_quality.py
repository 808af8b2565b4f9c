"""The pure gate rules and scoring, against scikit-learn reference values."""

import math

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.linear_model import LinearRegression, LogisticRegression

from apps.registry import quality


def test_normalize_fills_defaults_and_keeps_rules():
    gates = quality.normalize_gates({"metrics": [{"metric": "test_roc_auc", "threshold": 0.85}]})
    assert gates == {"metrics": [{"metric": "test_roc_auc", "op": ">=", "threshold": 0.85}], "max_regression": None,
                     "require_valid_signature": True, "require_valid_dataset": True}
    assert quality.normalize_gates(None)["metrics"] == []


@pytest.mark.parametrize("raw, message", [
    ({"metric": []}, "Unknown quality-gate settings"),
    ({"metrics": [{"metric": "roc_auc", "op": "=>", "threshold": 1}]}, "op must be one of"),
    ({"metrics": [{"metric": "roc_auc", "threshold": "high"}]}, "threshold must be a finite number"),
    ({"metrics": [{"op": ">="}]}, "needs a metric name"),
    ({"max_regression": {"metric": "test_brier", "margin": 0.1}}, "must be one of"),
    ({"max_regression": {"metric": "roc_auc", "margin": -0.1}}, "must not be negative"),
    ({"require_valid_signature": "yes"}, "must be true or false"),
    ([1, 2], "must be an object"),
])
def test_normalize_refuses_malformed_settings(raw, message):
    with pytest.raises(quality.GateConfigError, match=message):
        quality.normalize_gates(raw)


def test_threshold_gate_judges_the_platform_score_not_the_reported_one():
    rule = {"metric": "test_roc_auc", "op": ">=", "threshold": 0.85}
    failed = quality.metric_threshold_result(rule, value=0.52, reported=0.999)
    assert not failed["passed"] and failed["value"] == 0.52 and failed["reported_value"] == 0.999
    assert "client reported 0.9990" in failed["message"]
    assert quality.metric_threshold_result(rule, value=0.91)["passed"]
    assert quality.metric_threshold_result({"metric": "log_loss", "op": "<", "threshold": 0.5}, value=0.3)["passed"]


def test_threshold_gates_name_metrics_the_platform_can_score():
    with pytest.raises(quality.GateConfigError, match="scored by the platform"):
        quality.normalize_gates({"metrics": [{"metric": "training_duration_s", "op": "<", "threshold": 60}]})


def test_regression_gate_respects_the_metric_direction():
    # ROC AUC: higher is better, so a drop is a degradation.
    assert quality.regression_result("test_roc_auc", candidate=0.86, production=0.90, margin=0.05)["passed"]
    worse = quality.regression_result("test_roc_auc", candidate=0.80, production=0.90, margin=0.05)
    assert not worse["passed"] and worse["degradation"] == pytest.approx(0.10)
    # RMSE: lower is better, so a rise is a degradation.
    assert not quality.regression_result("rmse", candidate=12.0, production=10.0, margin=1.0)["passed"]
    assert quality.regression_result("rmse", candidate=8.0, production=10.0, margin=0.0)["passed"]
    # Exactly at the margin passes.
    assert quality.regression_result("accuracy", candidate=0.75, production=0.80, margin=0.05)["passed"]


def test_scores_match_scikit_learn():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 3))
    y = (X[:, 0] + 0.5 * rng.normal(size=300) > 0).astype(int)
    clf = LogisticRegression().fit(X, y)
    proba = clf.predict_proba(X)[:, 1]
    pred = clf.predict(X)
    assert quality.score_estimator(clf, "test_roc_auc", X, y) == pytest.approx(skm.roc_auc_score(y, proba), abs=1e-12)
    assert quality.score_estimator(clf, "log_loss", X, y) == pytest.approx(skm.log_loss(y, clf.predict_proba(X)))
    assert quality.score_estimator(clf, "f1", X, y) == pytest.approx(skm.f1_score(y, pred))
    assert quality.score_estimator(clf, "accuracy", X, y) == pytest.approx(skm.accuracy_score(y, pred))

    target = X @ np.array([1.0, -2.0, 0.5]) + rng.normal(size=300)
    reg = LinearRegression().fit(X, target)
    rmse = math.sqrt(skm.mean_squared_error(target, reg.predict(X)))
    assert quality.score_estimator(reg, "test_rmse", X, target) == pytest.approx(rmse)
    assert quality.score_estimator(reg, "r2", X, target) == pytest.approx(skm.r2_score(target, reg.predict(X)))
    with pytest.raises(ValueError, match="predict_proba"):
        quality.score_estimator(reg, "roc_auc", X, target)


def test_roc_auc_uses_the_positive_class_of_string_labels():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    y = np.where(X[:, 0] > 0, "pass", "fail")
    clf = LogisticRegression().fit(X, y)
    expected = skm.roc_auc_score(y == "pass", clf.predict_proba(X)[:, list(clf.classes_).index("pass")])
    assert quality.score_estimator(clf, "roc_auc", X, y) == pytest.approx(expected)


def test_signature_checks():
    good = {"inputs": [{"name": "a", "type": "float"}, {"name": "b", "type": "integer"}], "target": "y"}
    assert quality.signature_problems(good) == []
    assert quality.signature_problems("nope") == ["The signature is not a JSON object."]
    assert quality.signature_problems({"inputs": []}) == ["The signature has no list of inputs."]
    assert "appears twice" in " ".join(quality.signature_problems(
        {"inputs": [{"name": "a", "type": "float"}, {"name": "a", "type": "float"}]}))
    assert "has no type" in " ".join(quality.signature_problems({"inputs": [{"name": "a"}]}))
    assert quality.column_mismatch(["a", "b"], ["b", "a"]) == []
    problems = quality.column_mismatch(["a", "c"], ["a", "b"])
    assert "lacks: b" in problems[0] and "does not use: c" in problems[1]
