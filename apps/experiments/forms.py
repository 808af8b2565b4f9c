"""Browser forms of the experiments pages. They parse input; the services
validate it (the same checks as the API) and the views show refusals."""

from __future__ import annotations

import json

from django import forms

from apps.experiments import estimators as est
from apps.experiments.choices import SearchKind, TaskType


class ExperimentForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class RunFilterForm(forms.Form):
    """The runs table's search box: the same language as /runs/search/."""

    filter = forms.CharField(required=False, widget=forms.TextInput(attrs={
        "placeholder": "metrics.test_roc_auc > 0.8 and (params.estimator = 'random_forest' or tags.team like 'qc%')",
        "aria-label": "Filter runs"}))
    order_by = forms.CharField(required=False, widget=forms.TextInput(attrs={
        "placeholder": "metrics.test_roc_auc DESC, attributes.start_time ASC", "aria-label": "Order runs by"}))

    def order_terms(self) -> list[str]:
        text = self.cleaned_data.get("order_by", "") if hasattr(self, "cleaned_data") else ""
        return [term.strip() for term in text.split(",") if term.strip()]


def _json_object(text: str, what: str) -> dict:
    text = (text or "").strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise forms.ValidationError(f"{what} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).")
    if not isinstance(value, dict):
        raise forms.ValidationError(f"{what} must be a JSON object.")
    return value


class TrainingJobForm(forms.Form):
    experiment = forms.ModelChoiceField(queryset=None, required=False,
                                        empty_label="New experiment (name it below)")
    new_experiment = forms.CharField(required=False, max_length=200, label="New experiment name")
    dataset = forms.ModelChoiceField(queryset=None, required=False, empty_label="(from the version below)")
    dataset_version = forms.ModelChoiceField(queryset=None, required=False,
                                             empty_label="Latest valid version of the dataset",
                                             help_text="Only valid versions can be trained on.")
    target_column = forms.CharField(required=False, help_text="Empty: the dataset's target column.")
    task = forms.ChoiceField(choices=[("", "From the dataset"), *TaskType.choices], required=False)
    estimator = forms.ChoiceField(choices=[(name, spec.label) for name, spec in est.ESTIMATORS.items()])
    hyperparameters = forms.CharField(required=False, initial="{}", widget=forms.Textarea(attrs={"rows": 3}),
                                      help_text='JSON, e.g. {"n_estimators": 200, "max_depth": 8}')
    test_size = forms.FloatField(initial=0.2, min_value=0.05, max_value=0.5)
    validation_size = forms.FloatField(initial=0.1, min_value=0.0, max_value=0.5)
    seed = forms.IntegerField(initial=42, min_value=0)
    stratify = forms.BooleanField(required=False, initial=True)
    cv_folds = forms.IntegerField(initial=0, min_value=0, max_value=20, help_text="0 = no cross-validation")
    search_kind = forms.ChoiceField(choices=SearchKind.choices, initial=SearchKind.NONE, label="Search")
    search_space = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}),
                                   help_text='JSON, e.g. {"max_depth": [4, 8, null]} or '
                                             '{"learning_rate": {"distribution": "loguniform", "low": 0.01, '
                                             '"high": 0.3}}')
    n_iter = forms.IntegerField(initial=8, min_value=1, max_value=100, label="Random draws")
    search_metric = forms.CharField(required=False, help_text="Empty: val_roc_auc / val_rmse")
    run_name = forms.CharField(required=False, max_length=250)

    def __init__(self, *args, experiments, datasets, versions, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["experiment"].queryset = experiments
        self.fields["dataset"].queryset = datasets
        self.fields["dataset_version"].queryset = versions
        self.fields["dataset_version"].label_from_instance = (
            lambda v: f"{v.dataset.name} v{v.version} ({v.row_count or '?'} rows)")

    def clean(self):
        """One experiment (an existing one or a new name) and one dataset
        version: the chosen one, or the latest valid version of the chosen
        dataset."""
        data = super().clean()
        name = (data.get("new_experiment") or "").strip()
        if data.get("experiment") is not None and name:
            self.add_error("new_experiment", "Pick an existing experiment or name a new one, not both.")
        elif data.get("experiment") is None and not name and "experiment" not in self.errors:
            self.add_error("new_experiment", "Pick an experiment or name a new one.")
        data["new_experiment"] = name
        dataset, version = data.get("dataset"), data.get("dataset_version")
        if version is not None and dataset is not None and version.dataset_id != dataset.pk:
            self.add_error("dataset_version", f"{version} is not a version of {dataset.name}.")
        elif version is None and dataset is not None:
            version = self.fields["dataset_version"].queryset.filter(dataset=dataset).order_by("-version").first()
            if version is None:
                self.add_error("dataset", f"{dataset.name} has no valid version to train on.")
            data["dataset_version"] = version
        elif version is None and "dataset_version" not in self.errors and "dataset" not in self.errors:
            self.add_error("dataset", "Choose a dataset or one of its valid versions.")
        return data

    def clean_hyperparameters(self):
        return _json_object(self.cleaned_data.get("hyperparameters"), "Hyperparameters")

    def clean_search_space(self):
        return _json_object(self.cleaned_data.get("search_space"), "The search space")

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        search = None
        if data["search_kind"] != SearchKind.NONE:
            search = {"kind": data["search_kind"], "space": data["search_space"], "n_iter": data["n_iter"],
                      "metric": data["search_metric"]}
        return {
            "experiment": data["experiment"], "new_experiment": data["new_experiment"],
            "dataset_version": data["dataset_version"],
            "target_column": data["target_column"], "task": data["task"] or None, "estimator": data["estimator"],
            "hyperparameters": data["hyperparameters"],
            "split": {"test_size": data["test_size"], "validation_size": data["validation_size"],
                      "seed": data["seed"], "stratify": data["stratify"]},
            "cv_folds": data["cv_folds"], "search": search, "run_name": data["run_name"],
        }
