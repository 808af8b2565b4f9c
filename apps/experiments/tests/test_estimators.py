"""The estimator allow-list, hyperparameter validation and search spaces (pure)."""

import pytest

from apps.experiments import estimators as est


def test_every_estimator_builds_for_its_tasks():
    for name, spec in est.ESTIMATORS.items():
        for task in spec.tasks:
            model = est.build_estimator(name, task, {}, seed=1)
            assert hasattr(model, "fit"), (name, task)
            if task == est.CLASSIFICATION:
                assert hasattr(model, "predict_proba"), (name, task)


def test_required_estimators_exist_for_both_tasks():
    for name in ("logistic_regression", "ridge", "random_forest", "gradient_boosting", "hist_gradient_boosting",
                 "svm"):
        assert name in est.ESTIMATORS
    assert est.estimator_names("regression") == ["ridge", "random_forest", "gradient_boosting",
                                                 "hist_gradient_boosting", "svm"]


def test_hyperparameters_are_checked_and_normalised():
    clean = est.validate_hyperparameters("random_forest", "classification",
                                         {"n_estimators": 50.0, "max_depth": None, "max_features": "sqrt",
                                          "class_weight": "balanced", "bootstrap": False})
    assert clean == {"n_estimators": 50, "max_depth": None, "max_features": "sqrt", "class_weight": "balanced",
                     "bootstrap": False}
    assert isinstance(clean["n_estimators"], int)
    assert est.validate_hyperparameters("svm", "classification", {"gamma": 0.1})["gamma"] == 0.1
    assert est.validate_hyperparameters("svm", "classification", {"gamma": "auto"})["gamma"] == "auto"


@pytest.mark.parametrize("estimator, task, values, name", [
    ("random_forest", "classification", {"n_estimator": 10}, "n_estimator"),
    ("random_forest", "classification", {"n_estimators": "ten"}, "n_estimators"),
    ("random_forest", "classification", {"n_estimators": 2.5}, "n_estimators"),
    ("random_forest", "classification", {"n_estimators": 0}, "n_estimators"),
    ("random_forest", "classification", {"n_estimators": True}, "n_estimators"),
    ("random_forest", "classification", {"bootstrap": "yes"}, "bootstrap"),
    ("random_forest", "classification", {"n_estimators": None}, "n_estimators"),
    ("svm", "classification", {"kernel": "cubic"}, "kernel"),
    ("svm", "classification", {"epsilon": 0.2}, "epsilon"),
    ("svm", "regression", {"class_weight": "balanced"}, "class_weight"),
    ("logistic_regression", "classification", {"C": float("inf")}, "C"),
])
def test_bad_hyperparameters_name_the_parameter(estimator, task, values, name):
    with pytest.raises(est.HyperparameterError) as caught:
        est.validate_hyperparameters(estimator, task, values)
    assert caught.value.name == name


def test_estimator_and_task_must_match():
    with pytest.raises(est.HyperparameterError) as caught:
        est.check_estimator("logistic_regression", "regression")
    assert caught.value.name == "estimator"
    with pytest.raises(est.HyperparameterError):
        est.check_estimator("xgboost", "classification")


def test_library_defaults_are_not_passed():
    assert est.effective_hyperparameters("random_forest", "classification", {}) == {}
    assert est.effective_hyperparameters("logistic_regression", "classification", {"C": 2.0}) == {
        "C": 2.0, "max_iter": 1000}
    model = est.build_estimator("random_forest", "regression", {}, seed=3)
    assert model.get_params()["max_features"] == 1.0  # scikit-learn's own default for regression


def test_grid_expansion_is_the_full_product_in_a_stable_order():
    space = est.validate_space("random_forest", "classification", "grid",
                               {"n_estimators": [10, 20], "max_depth": [2, None, 5]})
    candidates = est.expand_space("grid", space)
    assert len(candidates) == 6
    assert candidates[0] == {"max_depth": 2, "n_estimators": 10}
    assert candidates == est.expand_space("grid", space)


def test_random_search_is_seeded_and_respects_distributions():
    space = est.validate_space("gradient_boosting", "classification", "random", {
        "learning_rate": {"distribution": "loguniform", "low": 0.01, "high": 0.3},
        "n_estimators": {"distribution": "int_uniform", "low": 10, "high": 60},
        "max_depth": [2, 3],
    })
    first = est.expand_space("random", space, n_iter=8, seed=5)
    assert first == est.expand_space("random", space, n_iter=8, seed=5)
    assert first != est.expand_space("random", space, n_iter=8, seed=6)
    assert len(first) == 8
    for candidate in first:
        assert 0.01 <= candidate["learning_rate"] <= 0.3
        assert 10 <= candidate["n_estimators"] <= 60 and isinstance(candidate["n_estimators"], int)
        assert candidate["max_depth"] in (2, 3)
        est.validate_hyperparameters("gradient_boosting", "classification", candidate)


@pytest.mark.parametrize("kind, space, name", [
    ("grid", {"n_estimators": [10, "x"]}, "search.space.n_estimators[1]"),
    ("grid", {"depth": [1]}, "search.space.depth"),
    ("grid", {"n_estimators": []}, "search.space.n_estimators"),
    ("grid", {"n_estimators": {"distribution": "uniform", "low": 1, "high": 2}}, "search.space.n_estimators"),
    ("random", {"learning_rate": {"distribution": "normal", "low": 0.1, "high": 0.2}},
     "search.space.learning_rate.distribution"),
    ("random", {"learning_rate": {"distribution": "uniform", "low": 0.3, "high": 0.2}}, "search.space.learning_rate"),
    ("grid", {"n_estimators": list(range(1, 12)), "max_depth": list(range(1, 12))}, "search.space"),
])
def test_bad_spaces_name_the_entry(kind, space, name):
    with pytest.raises(est.HyperparameterError) as caught:
        est.validate_space("gradient_boosting", "classification", kind, space)
    assert caught.value.name == name


def test_search_metrics_and_direction():
    assert est.check_search_metric("classification", "val_roc_auc") == "val_roc_auc"
    assert est.check_search_metric("regression", "cv_rmse") == "cv_rmse"
    with pytest.raises(est.HyperparameterError):
        est.check_search_metric("regression", "val_roc_auc")
    assert est.higher_is_better("val_roc_auc")
    assert not est.higher_is_better("val_log_loss")
    assert not est.higher_is_better("cv_rmse")
