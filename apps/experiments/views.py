"""Browser pages of the experiments app: experiments, runs (searched with the
same filter language as the API), run details with charts and artifacts,
comparison across experiments, and training jobs. Views call the same
selectors and services as the API and show refusals as messages."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from apps.core.errors import ApplicationError, NotFound
from apps.core.permissions import has_perm
from apps.experiments import charts, selectors, services
from apps.experiments.choices import JobStatus, RunStatus
from apps.experiments.forms import ExperimentForm, RunFilterForm, TrainingJobForm
from apps.experiments.models import Run

PAGE_SIZE = 50
MAX_METRIC_COLUMNS = 8
MAX_PARAM_COLUMNS = 5
MAX_COMPARE = 20
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")


def _not_found(call, *args, **kwargs):
    try:
        return call(*args, **kwargs)
    except NotFound as exc:
        raise Http404(exc.message)


def _reference(prefix: str, key: str) -> str:
    """How the filter language names a key (backticks for odd names)."""
    if _PLAIN_KEY.match(key):
        return f"{prefix}.{key}"
    return f"{prefix}.`{key.replace('`', '``')}`"


# --- Experiments --------------------------------------------------------------------

def experiment_list(request):
    form = ExperimentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            experiment = services.experiment_create(actor=request.user, **form.cleaned_data)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Experiment {experiment.name} created.")
            return redirect("experiments:detail", pk=experiment.pk)
    return render(request, "experiments/list.html", {
        "experiments": selectors.experiment_list(user=request.user).order_by("name"),
        "form": form,
        "can_create": has_perm(request.user, "experiments.add_experiment"),
        "can_train": has_perm(request.user, "experiments.add_trainingjob"),
    })


def _metric_columns(runs: list[Run]) -> list[str]:
    # A search's parent run carries its best trial's metrics as best_<key>: they
    # fill the <key> column of the parent's row.
    keys = {key for key in (name.removeprefix("best_") for run in runs for name in run.metric_map)
            if not key.startswith("iteration_") and not (key.startswith("cv_") and not key.endswith("_mean"))}
    # Test metrics first: they are what runs are compared on.
    return sorted(keys, key=lambda k: (not k.startswith("test_"), not k.startswith("val_"), k))[:MAX_METRIC_COLUMNS]


def _param_columns(runs: list[Run]) -> list[str]:
    keys = sorted({key for run in runs for key in run.param_map})
    varying = [k for k in keys if len({run.param_map.get(k) for run in runs}) > 1]
    first = ["estimator"] if "estimator" in keys else []
    return (first + [k for k in varying if k not in first])[:MAX_PARAM_COLUMNS]


def _metric_cell(run: Run, key: str) -> tuple[float | None, bool]:
    """(value, from the best trial): a search parent shows its best trial's value."""
    value = run.metric_map.get(key)
    if value is None and f"best_{key}" in run.metric_map:
        return run.metric_map[f"best_{key}"], True
    return value, False


def experiment_detail(request, pk):
    experiment = _not_found(selectors.experiment_get, user=request.user, pk=pk)
    form = RunFilterForm(request.GET or None)
    filter_text, order_terms = "", []
    if form.is_valid():
        filter_text = form.cleaned_data["filter"]
        order_terms = form.order_terms()
    page_token = request.GET.get("page") or None
    runs, next_token, error = [], None, None
    try:
        page = selectors.run_search(user=request.user, experiment_ids=[experiment.pk], filter_string=filter_text,
                                    order_by=order_terms, max_results=PAGE_SIZE, page_token=page_token)
        runs, next_token = page.runs, page.next_page_token
    except ApplicationError as exc:
        error = exc
    metric_columns = _metric_columns(runs)
    param_columns = _param_columns(runs)
    current = order_terms[0] if order_terms else ""

    def sort_link(reference: str) -> str:
        direction = "ASC" if current == f"{reference} DESC" else "DESC"
        return "?" + urlencode({"filter": filter_text, "order_by": f"{reference} {direction}"})

    columns = {
        "metrics": [(key, sort_link(_reference("metrics", key))) for key in metric_columns],
        "params": [(key, sort_link(_reference("params", key))) for key in param_columns],
        "name": sort_link("attributes.name"),
        "status": sort_link("attributes.status"),
        "start_time": sort_link("attributes.start_time"),
    }
    registered = selectors.run_registered_versions(runs=runs, user=request.user)
    rows = [{"run": run, "metrics": [_metric_cell(run, k) for k in metric_columns],
             "params": [run.param_map.get(k, "") for k in param_columns],
             "registered": registered.get(run.pk, [])} for run in runs]
    next_url = ("?" + urlencode({"filter": filter_text, "order_by": ", ".join(order_terms), "page": next_token})
                if next_token else "")
    return render(request, "experiments/detail.html", {
        "experiment": experiment, "form": form, "rows": rows, "columns": columns, "error": error,
        "column_count": 5 + len(metric_columns) + len(param_columns),
        "next_url": next_url, "paged": bool(page_token), "order_by": ", ".join(order_terms),
        "filter_text": filter_text,
        "can_train": has_perm(request.user, "experiments.change_experiment", experiment),
    })


# --- Runs ---------------------------------------------------------------------------

def run_detail(request, pk):
    run = _not_found(selectors.run_get, user=request.user, pk=pk)
    chart_keys = selectors.metric_keys_with_history(runs=[run])
    artifacts = list(selectors.artifact_list(run=run))
    download = reverse("run-artifacts-download", kwargs={"pk": run.pk})
    for artifact in artifacts:
        artifact.url = f"{download}?{urlencode({'path': artifact.path})}"
        artifact.preview_url = f"{download}?{urlencode({'path': artifact.path, 'inline': '1'})}"
        artifact.is_plot = artifact.path.startswith("plots/") and artifact.path.endswith(".json")
    job = None
    if run.training_job_id:
        job = selectors.training_job_get(user=request.user, pk=run.training_job_id)
    metrics = [(key, value, key in chart_keys) for key, value in run.metric_map.items()]
    lineage = selectors.run_lineage(run=run, user=request.user)
    return render(request, "experiments/run.html", {
        "run": run, "experiment": run.experiment, "metrics": metrics, "chart_keys": chart_keys,
        "artifacts": artifacts, "plots": [a for a in artifacts if a.is_plot],
        "children": selectors.run_children(run=run), "job": job,
        "job_active": job is not None and job.status in (JobStatus.QUEUED, JobStatus.RUNNING),
        "can_change": has_perm(request.user, "experiments.change_experiment", run.experiment),
        # Once its model is registered the run links to the version instead.
        "can_register": not lineage["registered"] and _can_register(request.user, run, artifacts),
        "lineage": lineage,
    })


def _can_register(user, run, artifacts) -> bool:
    """A finished run with a saved model may become a registry version."""
    from django.apps import apps as django_apps

    return (run.status == RunStatus.FINISHED and django_apps.is_installed("apps.registry")
            and any(a.path == "model/model.skops" for a in artifacts)
            and has_perm(user, "registry.add_modelversion"))


def metric_chart(request, pk):
    """A plotly figure of one metric's history, downsampled on the server."""
    run = _not_found(selectors.run_get, user=request.user, pk=pk)
    key = request.GET.get("key", "")
    try:
        max_points = max(3, min(int(request.GET.get("max_points", charts.CHART_POINTS)), 5000))
    except ValueError:
        max_points = charts.CHART_POINTS
    figure = _not_found(charts.metric_history_figure, run=run, key=key, max_points=max_points)
    return JsonResponse(figure)


def _history_key(request, runs: list[Run], stepped: list[str], metric: str) -> str:
    """The metric drawn over steps: the one asked for, else the stepped
    metric most of the runs have (validation curves first)."""
    if request.GET.get("history"):
        return request.GET["history"]
    if not stepped:
        return metric
    counts = selectors.metric_key_run_counts(runs=runs, keys=stepped)
    return max(stepped, key=lambda k: (counts.get(k, 0), k.startswith("iteration_val"), k.startswith("val")))


def _cv_key(request, cv_keys: list[str], metric: str) -> str:
    """The cross-validation metric shown as folds: asked for, else the one of
    the compared metric (test_roc_auc → cv_roc_auc), else the first."""
    asked = request.GET.get("cv", "")
    if asked in cv_keys:
        return asked
    base = metric.removeprefix("test_").removeprefix("val_")
    return f"cv_{base}" if f"cv_{base}" in cv_keys else (cv_keys[0] if cv_keys else "")


def compare(request):
    raw = request.GET.getlist("runs")
    ids = []
    for chunk in raw:
        for part in re.split(r"[\s,]+", chunk):
            if part.isdigit() and int(part) not in ids:
                ids.append(int(part))
    ids = ids[:MAX_COMPARE]
    runs = selectors.run_list_by_ids(user=request.user, ids=ids) if ids else []
    metric_keys = sorted({key for run in runs for key in run.metric_map})
    preferred = [k for k in ("test_roc_auc", "test_rmse", "test_accuracy") if k in metric_keys]
    metric = request.GET.get("metric") or (preferred[0] if preferred else (metric_keys[0] if metric_keys else ""))
    with_steps = set(selectors.metric_keys_with_history(runs=runs))
    # Cross-validation folds are not a curve: they get a box per run instead.
    cv_keys = sorted(k for k in with_steps | set(metric_keys) if charts.is_fold_metric(k))
    stepped = sorted(k for k in with_steps if not charts.is_fold_metric(k))
    history_key = _history_key(request, runs, stepped, metric)
    cv_key = _cv_key(request, cv_keys, metric)
    param_keys = sorted({key for run in runs for key in run.param_map})
    param_rows = []
    for key in param_keys:
        values = [run.param_map.get(key) for run in runs]
        param_rows.append({"key": key, "values": values, "differs": len(set(values)) > 1})
    metric_rows = [{"key": key, "values": [run.metric_map.get(key) for run in runs]} for key in metric_keys
                   if not key.startswith("iteration_")]
    overlay = charts.compare_overlay_figure(runs=runs, key=history_key) if runs and history_key else None
    parallel = charts.parallel_coordinates_figure(runs=runs, metric=metric) if runs and metric else None
    folds = charts.cv_folds_figure(runs=runs, key=cv_key) if runs and cv_key else None
    return render(request, "experiments/compare.html", {
        "runs": runs, "missing": len(ids) - len(runs), "ids": ",".join(str(i) for i in ids),
        "metric": metric, "metric_keys": metric_keys, "history_key": history_key,
        "history_keys": sorted(set(stepped) | {k for k in metric_keys if not charts.is_fold_metric(k)}),
        "cv_key": cv_key, "cv_keys": cv_keys, "folds": folds, "param_rows": param_rows,
        "metric_rows": metric_rows, "overlay": overlay, "parallel": parallel,
        "differing": sum(1 for row in param_rows if row["differs"]),
    })


# --- Training jobs ----------------------------------------------------------------------

def training_list(request):
    jobs = list(selectors.training_job_list(user=request.user).filter(parent__isnull=True)
                .select_related("run__experiment", "dataset_version__dataset")[:200])
    return render(request, "experiments/training_list.html", {
        "jobs": jobs, "can_train": has_perm(request.user, "experiments.add_trainingjob"),
    })


def _training_form(request, data=None):
    from apps.datasets.choices import VersionStatus
    from apps.datasets.selectors import dataset_list, dataset_version_list

    experiments = selectors.experiment_list(user=request.user, perm="experiments.change_experiment")
    versions = dataset_version_list(user=request.user).filter(status=VersionStatus.VALID)
    datasets = dataset_list(user=request.user).filter(pk__in=versions.values("dataset_id")).order_by("name")
    initial = {}
    if request.GET.get("experiment"):
        initial["experiment"] = request.GET["experiment"]
    chosen = _int_or_none(request.GET.get("dataset_version"))
    version = versions.filter(pk=chosen).first() if chosen is not None else None
    dataset = (datasets.filter(pk=_int_or_none(request.GET.get("dataset"))).first()
               if request.GET.get("dataset") else None)
    if version is not None:
        initial["dataset_version"], initial["dataset"] = version.pk, version.dataset_id
    elif dataset is None:
        # No choice yet: the dataset with the newest valid version; the
        # version stays "latest valid" so the newest upload is what trains.
        newest = versions.order_by("-created_at", "-pk").first()
        dataset = newest.dataset if newest is not None else None
    if dataset is not None and version is None:
        initial["dataset"] = dataset.pk
    return TrainingJobForm(data, experiments=experiments.order_by("name"), datasets=datasets, versions=versions,
                           initial=initial)


def _int_or_none(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def training_new(request):
    if not has_perm(request.user, "experiments.add_trainingjob"):
        messages.error(request, "Your role may not start training jobs.")
        return redirect("experiments:training-list")
    form = _training_form(request, request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        arguments = form.service_arguments()
        new_experiment = arguments.pop("new_experiment")
        try:
            if new_experiment:
                arguments.pop("experiment")
                job = services.training_job_create_in_new_experiment(actor=request.user,
                                                                      experiment_name=new_experiment, **arguments)
            else:
                job = services.training_job_create(actor=request.user, **arguments)
        except ApplicationError as exc:
            field = exc.details.get("field", "") if isinstance(exc.details, dict) else ""
            form.add_error(None, f"{exc.message}" + (f" [{field}]" if field and field not in exc.message else ""))
        else:
            messages.success(request, f"Training job {job.pk} queued.")
            return redirect("experiments:training-job", pk=job.pk)
    from apps.experiments import estimators as est

    catalogue = [{"name": name, "label": spec.label, "tasks": ", ".join(spec.tasks),
                  "params": [(p, param.kind, "" if param.default == est.LIBRARY_DEFAULT else param.default,
                              param.help) for p, param in spec.params.items()]}
                 for name, spec in est.ESTIMATORS.items()]
    return render(request, "experiments/training_new.html", {"form": form, "catalogue": catalogue})


def _value_text(value) -> str:
    """A hyperparameter value in words: lists as "a, b, c", ranges as "low 0.01, high 1"."""
    if isinstance(value, (list, tuple)):
        return ", ".join(_value_text(item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{key} {_value_text(item)}" for key, item in value.items())
    if value is None:
        return "None"
    return str(value)


def _rows(mapping) -> list[tuple[str, str]]:
    return [(str(key), _value_text(value)) for key, value in sorted((mapping or {}).items())]


def _split_text(split: dict) -> str:
    """"test 20 %, validation 10 %, seed 42, stratified" rather than the dict."""
    split = split or {}
    parts = [f"{name} {float(split[key]) * 100:g} %" for key, name in (("test_size", "test"),
                                                                        ("validation_size", "validation"))
             if split.get(key) is not None]
    if split.get("seed") is not None:
        parts.append(f"seed {split['seed']}")
    if "stratify" in split:
        parts.append("stratified" if split["stratify"] else "not stratified")
    extra = {k: v for k, v in split.items() if k not in ("test_size", "validation_size", "seed", "stratify")}
    parts += [f"{key} {_value_text(value)}" for key, value in sorted(extra.items())]
    return ", ".join(parts) or "the defaults"


def training_job(request, pk):
    job = _not_found(selectors.training_job_get, user=request.user, pk=pk)
    for child in job.child_list:
        child.hyperparameter_rows = _rows(child.hyperparameters)
    return render(request, "experiments/training_job.html", {
        "job": job, "run": job.run,
        "hyperparameter_rows": _rows(job.hyperparameters), "search_space_rows": _rows(job.search_space),
        "split_text": _split_text(job.split),
        "active": job.status in (JobStatus.QUEUED, JobStatus.RUNNING),
        "can_cancel": has_perm(request.user, "experiments.change_experiment", job.run.experiment),
    })


@require_POST
def training_cancel(request, pk):
    job = _not_found(selectors.training_job_get, user=request.user, pk=pk)
    try:
        services.training_job_cancel(actor=request.user, job=job)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Training job {job.pk} cancelled.")
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = reverse("experiments:training-job", kwargs={"pk": job.pk})
    return redirect(target)
