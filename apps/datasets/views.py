"""Browser pages of the datasets app. Forms post here; the views call the
same services as the API and show ApplicationErrors as messages."""

from __future__ import annotations

import json
from functools import wraps

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST

from apps.core.errors import ApplicationError, NotFound
from apps.core.middleware import max_body_size
from apps.core.permissions import has_perm
from apps.datasets import charts, selectors, services
from apps.datasets.choices import VersionStatus
from apps.datasets.forms import DatasetEditForm, DatasetForm, ExpectationForm, FeatureSpecForm, UploadForm
from apps.datasets.quality_report import SCORE_FORMULA, SCORE_WEIGHTS
from apps.datasets.uploadhandlers import LimitedTemporaryFileUploadHandler


def _dataset(request, pk):
    try:
        return selectors.dataset_get(user=request.user, pk=pk)
    except NotFound:
        raise Http404("Dataset not found.")


def _version(request, pk):
    try:
        return selectors.dataset_version_get(user=request.user, pk=pk)
    except NotFound:
        raise Http404("Dataset version not found.")


def _back_to_dataset(view):
    """Run a POST action; show a refused action as a message on the dataset page."""

    @wraps(view)
    def wrapped(request, pk, *args, **kwargs):
        try:
            return view(request, pk, *args, **kwargs)
        except ApplicationError as exc:
            if isinstance(exc, NotFound):
                raise Http404(exc.message)
            messages.error(request, exc.message)
            return redirect("datasets:detail", pk=pk)

    return wrapped


def dataset_list(request):
    form = DatasetForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            dataset = services.dataset_create(actor=request.user, **form.cleaned_data)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Dataset {dataset.name} created. Upload its first version.")
            return redirect("datasets:detail", pk=dataset.pk)
    return render(request, "datasets/list.html", {
        "datasets": selectors.dataset_list(user=request.user),
        "form": form,
        "can_create": has_perm(request.user, "datasets.add_dataset"),
    })


def dataset_detail(request, pk):
    dataset = _dataset(request, pk)
    versions = list(selectors.dataset_version_list(user=request.user, dataset=dataset))
    spec = selectors.dataset_feature_spec_summary(dataset=dataset)
    effective = spec["effective"] or {}
    spec_form = FeatureSpecForm(
        columns=spec["columns"],
        initial={
            "numeric_imputation": effective.get("numeric", {}).get("imputation", "median"),
            "numeric_scaling": effective.get("numeric", {}).get("scaling", "standard"),
            "max_categories": effective.get("categorical", {}).get("max_categories", 50),
            "spec_json": json.dumps(dataset.feature_spec, indent=2) if dataset.feature_spec else "",
        },
    )
    latest_valid = selectors.dataset_latest_valid_version(dataset=dataset)
    leaks = {leak["column"]: leak for leak in ((latest_valid.quality_report or {}).get("leakage") or [])} \
        if latest_valid else {}
    spec["columns"] = [{**column, "leak": leaks.get(column["name"])} for column in spec["columns"] or []]
    valid_versions = [v for v in versions if v.status == VersionStatus.VALID]
    return render(request, "datasets/detail.html", {
        "dataset": dataset,
        "versions": versions,
        "busy": [v for v in versions if v.status in (VersionStatus.PENDING, VersionStatus.VALIDATING)],
        "expectations": selectors.expectation_list(dataset=dataset),
        "columns": [c["name"] for c in (latest_valid.schema or {}).get("columns", [])] if latest_valid else [],
        "latest_valid": latest_valid,
        "spec": spec,
        "spec_form": spec_form,
        "upload_form": UploadForm(versions=versions),
        "expectation_form": ExpectationForm(),
        "edit_form": DatasetEditForm(versions=valid_versions, initial={
            "description": dataset.description, "task_hint": dataset.task_hint,
            "target_column": dataset.target_column, "schema_version": dataset.schema_version_id,
            "schema_check_severity": dataset.schema_check_severity}),
        "preview_api_url": reverse("dataset-preview", kwargs={"pk": dataset.pk}),
        "can_change": has_perm(request.user, "datasets.change_dataset", dataset),
        "can_upload": has_perm(request.user, "datasets.add_datasetversion")
        and has_perm(request.user, "datasets.change_dataset", dataset),
        "upload_api_url": reverse("dataset-versions", kwargs={"pk": dataset.pk}),
    })


@require_POST
@_back_to_dataset
def dataset_edit(request, pk):
    dataset = _dataset(request, pk)
    form = DatasetEditForm(request.POST, versions=dataset.versions.filter(status=VersionStatus.VALID))
    if not form.is_valid():
        messages.error(request, "Check the fields: " + "; ".join(f"{k}: {v[0]}" for k, v in form.errors.items()))
        return redirect("datasets:detail", pk=pk)
    services.dataset_update(dataset=dataset, actor=request.user, **form.cleaned_data)
    messages.success(request, f"Dataset {dataset.name} updated.")
    return redirect("datasets:detail", pk=pk)


@csrf_exempt
@max_body_size("DATASET_MAX_UPLOAD_SIZE")
def dataset_upload(request, pk):
    """The upload form without JavaScript (the page's script posts to the API
    instead, to show upload progress). Spools to disk with the size limit
    checked while streaming, before the CSRF check reads the body."""
    if request.method == "POST":
        request.upload_handlers = [LimitedTemporaryFileUploadHandler(request)]
    return _dataset_upload(request, pk)


@csrf_protect
@require_POST
@_back_to_dataset
def _dataset_upload(request, pk):
    dataset = _dataset(request, pk)
    form = UploadForm(request.POST, request.FILES, versions=dataset.versions.all())
    if not form.is_valid():
        messages.error(request, "Choose a file to upload." if "file" in form.errors else
                       "Check the fields: " + "; ".join(f"{k}: {v[0]}" for k, v in form.errors.items()))
        return redirect("datasets:detail", pk=pk)
    parent = dataset.versions.filter(pk=form.cleaned_data["parent"]).first() if form.cleaned_data["parent"] else None
    upload = form.cleaned_data["file"]
    outcome = services.dataset_version_upload(dataset=dataset, actor=request.user, file=upload, filename=upload.name,
                                              note=form.cleaned_data["note"], parent=parent,
                                              options=form.read_options())
    if outcome.created:
        messages.success(request, f"Uploaded {outcome.version}; validation is running.")
    else:
        messages.info(request, f"The same content already is {outcome.version}; nothing new was stored.")
    return redirect("datasets:version", pk=outcome.version.pk)


@require_POST
@_back_to_dataset
def expectation_add(request, pk):
    dataset = _dataset(request, pk)
    form = ExpectationForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Check the expectation: " + "; ".join(f"{k}: {v[0]}" for k, v in form.errors.items()))
        return redirect("datasets:detail", pk=pk)
    services.expectation_create(dataset=dataset, actor=request.user, kind=form.cleaned_data["kind"],
                                column=form.cleaned_data["column"], params=form.params(),
                                severity=form.cleaned_data["severity"])
    messages.success(request, f"Expectation added to {dataset.name}; it applies to versions validated from now on.")
    return redirect(reverse("datasets:detail", kwargs={"pk": pk}) + "#expectations")


@require_POST
@_back_to_dataset
def expectation_delete(request, pk, expectation_id):
    dataset = _dataset(request, pk)
    expectation = selectors.expectation_list(dataset=dataset).filter(pk=expectation_id).first()
    if expectation is None:
        raise Http404("Expectation not found.")
    services.expectation_delete(expectation=expectation, actor=request.user)
    messages.success(request, f"Expectation removed from {dataset.name}: {expectation}.")
    return redirect(reverse("datasets:detail", kwargs={"pk": pk}) + "#expectations")


@require_POST
@_back_to_dataset
def expectations_from_schema(request, pk):
    dataset = _dataset(request, pk)
    latest = selectors.dataset_latest_valid_version(dataset=dataset)
    if latest is None:
        messages.error(request, "There is no valid version to take the schema from.")
        return redirect("datasets:detail", pk=pk)
    added = services.expectation_set_from_schema(dataset=dataset, actor=request.user, schema=latest.schema)
    messages.success(request, f"Added {added} expectation{pluralize(added)} to {dataset.name} from the schema of "
                              f"v{latest.version}.")
    return redirect(reverse("datasets:detail", kwargs={"pk": pk}) + "#expectations")


@require_POST
@_back_to_dataset
def feature_spec_save(request, pk):
    dataset = _dataset(request, pk)
    summary = selectors.dataset_feature_spec_summary(dataset=dataset)
    form = FeatureSpecForm(request.POST, columns=summary["columns"])
    if not form.is_valid():
        messages.error(request, "Check the spec: " + "; ".join(f"{k}: {v[0]}" for k, v in form.errors.items()))
        return redirect(reverse("datasets:detail", kwargs={"pk": pk}) + "#feature-spec")
    services.dataset_feature_spec_set(dataset=dataset, actor=request.user, spec=form.spec(dataset.feature_spec or {}))
    messages.success(request, f"Feature spec of {dataset.name} saved.")
    return redirect(reverse("datasets:detail", kwargs={"pk": pk}) + "#feature-spec")


def version_detail(request, pk):
    version = _version(request, pk)
    report = version.quality_report or {}
    schema = version.schema or {}
    results = version.expectation_results or []
    missing = (report.get("missing") or {}).get("per_column", {})
    outliers = report.get("outliers") or {}
    schema_rows = [
        {**column, "missing": missing.get(column["name"], {}), "outliers": outliers.get(column["name"])}
        for column in schema.get("columns", [])
    ]
    components = report.get("score_components") or {}
    score_rows = [{"name": name, "weight": weight, "value": components.get(name, 0.0),
                   "penalty": round(100 * weight * components.get(name, 0.0), 2)}
                  for name, weight in SCORE_WEIGHTS.items()]
    return render(request, "datasets/version.html", {
        "version": version,
        "dataset": version.dataset,
        "schema_rows": schema_rows,
        "results": results,
        "failed_results": [r for r in results if not r["passed"]],
        "report": report,
        "score_rows": score_rows,
        "score_formula": report.get("score_formula") or SCORE_FORMULA,
        "distributions": charts.distribution_figures(report, schema) if report else [],
        "missing_figure": charts.missing_map_figure(report) if report else None,
        "correlation_figure": charts.correlation_figure(report) if report else None,
        "lineage": selectors.dataset_version_lineage(version=version, user=request.user),
        "busy": version.status in (VersionStatus.PENDING, VersionStatus.VALIDATING),
        "reasons": [line for line in (version.status_reason or "").splitlines() if line.strip()],
        "read_options": version.read_options or {},
        "leaks": report.get("leakage") or [],
        "can_change": has_perm(request.user, "datasets.change_dataset", version.dataset),
        "can_train": version.is_valid and _training_installed() and has_perm(request.user,
                                                                           "experiments.add_trainingjob"),
    })


def _training_installed() -> bool:
    from django.apps import apps as django_apps

    return django_apps.is_installed("apps.experiments")


@require_POST
def version_revalidate(request, pk):
    version = _version(request, pk)
    try:
        services.dataset_version_revalidate(version=version, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Validation of {version} queued.")
    return redirect("datasets:version", pk=pk)
