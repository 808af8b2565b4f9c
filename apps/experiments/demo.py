"""Demo experiment: ``sample-qc``, owned by ``scientist``, with training jobs
on the reference lab data (target ``qc_pass``): logistic regression with
cross-validation, a random forest, histogram gradient boosting and a small
random search. ``seed_demo`` runs before the worker starts, so the jobs are
only queued here; the worker trains them as soon as it is up. Seeding twice
queues nothing new (jobs are recognised by their run name)."""

from __future__ import annotations

from apps.datasets.choices import VersionStatus
from apps.experiments.models import Experiment, TrainingJob
from apps.experiments.services import experiment_create, training_job_create

EXPERIMENT_NAME = "sample-qc"
TARGET = "qc_pass"
JOBS = [
    {"run_name": "logistic regression (5-fold CV)", "estimator": "logistic_regression",
     "hyperparameters": {"C": 1.0, "class_weight": "balanced"}, "cv_folds": 5},
    {"run_name": "random forest", "estimator": "random_forest",
     "hyperparameters": {"n_estimators": 200, "max_depth": 12, "min_samples_leaf": 2}},
    {"run_name": "histogram gradient boosting", "estimator": "hist_gradient_boosting",
     "hyperparameters": {"max_iter": 150, "learning_rate": 0.08}},
    {"run_name": "gradient boosting random search", "estimator": "gradient_boosting",
     "hyperparameters": {"n_estimators": 80},
     "search": {"kind": "random", "n_iter": 4, "metric": "val_roc_auc",
                "space": {"learning_rate": {"distribution": "loguniform", "low": 0.03, "high": 0.3},
                          "max_depth": [2, 3, 4]}}},
]


def seed(context: dict, *, password: str, stdout=None) -> None:
    scientist = context["users"]["scientist"]
    experiment = Experiment.objects.filter(name=EXPERIMENT_NAME).first() or experiment_create(
        actor=scientist, name=EXPERIMENT_NAME, tags={"team": "library-prep"},
        description="Predict whether a submitted sample passes library-prep QC (qc_pass) from its submission "
                    "record: concentration, purity, integrity, storage history.")
    context["experiment"] = experiment
    version = (context.get("dataset_versions") or {}).get("reference")
    jobs = []
    if version is None or version.status != VersionStatus.VALID:
        context["training_jobs"] = jobs
        if stdout:
            stdout.write(f"  experiment {EXPERIMENT_NAME}: no valid reference dataset version, nothing to train")
        return
    queued = 0
    for spec in JOBS:
        existing = TrainingJob.objects.filter(run__experiment=experiment, run__name=spec["run_name"],
                                              parent__isnull=True).first()
        if existing is not None:
            jobs.append(existing)
            continue
        jobs.append(training_job_create(
            actor=scientist, experiment=experiment, dataset_version=version, target_column=TARGET,
            task="classification", estimator=spec["estimator"], hyperparameters=spec["hyperparameters"],
            cv_folds=spec.get("cv_folds", 0), search=spec.get("search"), run_name=spec["run_name"],
        ))
        queued += 1
    context["training_jobs"] = jobs
    if stdout:
        stdout.write(f"  experiment {EXPERIMENT_NAME}: {len(jobs)} training jobs ({queued} queued now; the worker "
                     "trains them after start-up)")
