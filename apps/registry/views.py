"""Browser pages of the registry: models, a model, a version, the approval
queue, and registering a run's model. Forms post to small views that call
a service and come back with a message; errors the user caused are shown,
never a 500."""

from __future__ import annotations

import json

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_http_methods, require_POST

from apps.core.errors import ApplicationError
from apps.core.permissions import has_perm, is_admin
from apps.core.selectors import audit_events_for
from apps.core.webhooks import selectors as webhook_selectors
from apps.core.webhooks import services as webhook_services
from apps.registry import charts, quality, selectors, services
from apps.registry.choices import RequestStatus
from apps.registry.forms import (
    AliasForm,
    ApproveForm,
    GovernanceForm,
    PromotionRequestForm,
    RegisterFromRunForm,
    RejectForm,
    RollbackForm,
)
from apps.registry.templatetags.registry_labels import stage_label


def _url(name: str, *args) -> str | None:
    """A URL of another app's page, or None while that page does not exist."""
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


def _model_or_404(user, name: str, annotated: bool = True):
    try:
        return selectors.registered_model_get(user=user, name=name, annotated=annotated)
    except ApplicationError:
        raise Http404("No such model.")


def _version_or_404(user, model, number: int):
    try:
        return selectors.model_version_get(user=user, registered_model=model, version=number)
    except ApplicationError:
        raise Http404("No such version.")


def _fail(request, exc: ApplicationError) -> None:
    messages.error(request, exc.message)


def model_list(request):
    models = selectors.registered_model_list(user=request.user)
    return render(request, "registry/list.html", {
        "models": models,
        "can_register": has_perm(request.user, "registry.add_modelversion"),
    })


def model_detail(request, name: str):
    model = _model_or_404(request.user, name)
    versions = list(selectors.model_version_list(user=request.user, registered_model=model))
    previous = services.previous_production_version(registered_model=model)
    gate_metrics = selectors.gate_metrics(registered_model=model)
    gate_bases = {quality.base_metric(name) for name in gate_metrics}
    metric_keys = [k for k in sorted({k for v in versions for k in v.metrics if k.startswith("test_")})
                   if quality.base_metric(k) not in gate_bases][:4]
    runs = selectors.version_runs(versions=versions, user=request.user)
    webhooks = list(webhook_selectors.webhook_list(user=request.user, subject=model))
    deliveries = list(webhook_selectors.webhook_delivery_list(user=request.user, subject=model)[:20])
    return render(request, "registry/detail.html", {
        "model": model,
        "versions": versions,
        "metric_keys": metric_keys,
        "gate_metrics": gate_metrics,
        "version_columns": 7 + len(gate_metrics) + len(metric_keys),
        "version_rows": [(v, [quality.lookup_metric(v.metrics, k) for k in gate_metrics],
                          [v.metrics.get(k) for k in metric_keys], runs.get(v.pk)) for v in versions],
        "chart": charts.version_metrics_figure(versions),
        "aliases": model.aliases.all(),
        "history": selectors.model_stage_history(registered_model=model, limit=20),
        "previous_production": previous,
        "can_rollback": previous is not None and has_perm(request.user, "registry.rollback_registeredmodel", model),
        "can_change": has_perm(request.user, "registry.change_registeredmodel", model),
        "can_govern": has_perm(request.user, "registry.approve_registeredmodel", model),
        "governance_form": GovernanceForm(initial={
            "quality_gates": json.dumps(model.quality_gates, indent=2),
            "evaluation_dataset_version": model.evaluation_dataset_version_id,
            "evaluation_target": model.evaluation_target}),
        "can_manage_webhooks": has_perm(request.user, "core.change_webhooksubscription"),
        "webhooks": webhooks,
        "deliveries": deliveries,
        "rollback_form": RollbackForm(),
        "alias_form": AliasForm(),
        "pending": selectors.promotion_request_list(user=request.user, status=RequestStatus.PENDING,
                                                    registered_model=model),
    })


def version_detail(request, name: str, version: int):
    model = _model_or_404(request.user, name)
    model_version = _version_or_404(request.user, model, version)
    requests = list(selectors.promotion_request_list(user=request.user, version=model_version))
    lineage = selectors.version_lineage(version=model_version, user=request.user)
    production = selectors.production_version(registered_model=model)
    can_request = (has_perm(request.user, "registry.add_promotionrequest")
                   and has_perm(request.user, "registry.change_registeredmodel", model))
    return render(request, "registry/version.html", {
        "model": model,
        "version": model_version,
        "requests": requests,
        "latest_request": requests[0] if requests else None,
        "transitions": selectors.stage_history(version=model_version),
        "audit": audit_events_for(obj=model_version)[:20],
        "lineage": lineage,
        "dataset_url": _url("datasets:version", lineage["dataset_version"]["id"]) if lineage["dataset_version"]
        else None,
        "run_url": _url("experiments:run", lineage["run"]["id"]) if lineage["run"] else None,
        "comparison": selectors.metric_comparison(
            candidate=model_version, baseline=production if production and production.pk != model_version.pk
            else None),
        "production": production,
        "metrics": sorted(model_version.metrics.items()),
        "can_request": can_request and not any(r.status == RequestStatus.PENDING for r in requests),
        "request_form": PromotionRequestForm(),
        "can_decide": has_perm(request.user, "registry.approve_registeredmodel", model),
        "approve_form": ApproveForm(),
        "reject_form": RejectForm(),
        "is_admin": is_admin(request.user),
    })


def approval_queue(request):
    pending = list(selectors.approval_queue(user=request.user))
    productions = {}
    items = []
    for req in pending:
        model_id = req.version.registered_model_id
        if model_id not in productions:
            productions[model_id] = selectors.production_version(registered_model=req.version.registered_model)
        baseline = productions[model_id]
        items.append({
            "request": req,
            "production": baseline,
            "comparison": selectors.metric_comparison(
                candidate=req.version, baseline=baseline if baseline and baseline.pk != req.version_id else None),
        })
    return render(request, "registry/approvals.html", {
        "items": items,
        "approve_form": ApproveForm(),
        "reject_form": RejectForm(),
        "is_admin": is_admin(request.user),
        "can_approve": has_perm(request.user, "registry.approve_registeredmodel"),
        "own_pending": selectors.promotion_request_list(user=request.user, status=RequestStatus.PENDING)
        .filter(requested_by=request.user),
    })


@require_http_methods(["GET", "POST"])
def register_from_run(request):
    """Register a run's model: the run page links here with ``?run=<id>``."""
    run = None
    run_id = request.POST.get("run") or request.GET.get("run")
    if run_id and str(run_id).isdigit():
        run = selectors.run_to_register(user=request.user, pk=int(run_id))
    choices = _run_choices(request, run)
    experiment = run.experiment if run is not None else choices.get("chosen_experiment")
    initial = {"run": request.GET.get("run"), "registered_model": request.GET.get("model", "")}
    if experiment is not None and not initial["registered_model"]:
        initial["registered_model"] = selectors.register_suggested_model_name(user=request.user,
                                                                              experiment=experiment)
    if run is not None:
        initial["task_type"] = getattr(getattr(run, "training_job", None), "task", "") or None
    form = RegisterFromRunForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        if run is None:
            form.add_error("run", "No such run.")
        else:
            try:
                version = _register(request.user, run, form.cleaned_data)
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, f"Model version {version} registered.")
                return redirect("registry:version", name=version.registered_model.name, version=version.version)
    models = selectors.registered_model_list(user=request.user)
    return render(request, "registry/register.html", {"form": form, "run": run, "models": models, **choices})


def _run_choices(request, run) -> dict:
    """Opened without a run: the experiments to choose from and, once one is
    chosen (``?experiment=<id>``), its finished runs."""
    if run is not None:
        return {}
    from apps.experiments.selectors import experiment_list

    experiments = list(experiment_list(user=request.user).order_by("name"))
    chosen = request.GET.get("experiment", "")
    experiment = next((e for e in experiments if str(e.pk) == chosen), None)
    runs = selectors.register_finished_runs(user=request.user, experiment_id=experiment.pk) if experiment else []
    return {"experiments": experiments, "chosen_experiment": experiment, "finished_runs": runs}


def _register(user, run, data: dict):
    try:
        model = selectors.registered_model_get(user=user, name=data["registered_model"], annotated=False)
    except ApplicationError:
        task_type = data.get("task_type") or getattr(getattr(run, "training_job", None), "task", "") \
            or "classification"
        model = services.registered_model_create(actor=user, name=data["registered_model"], task_type=task_type)
    return services.model_version_register(registered_model=model, run=run, actor=user,
                                           description=data.get("description", ""))


# --- Actions ---------------------------------------------------------------------------

@require_POST
def request_transition(request, name: str, version: int):
    model = _model_or_404(request.user, name, annotated=False)
    model_version = _version_or_404(request.user, model, version)
    form = PromotionRequestForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a stage and write a justification.")
    else:
        try:
            created = services.promotion_request_create(
                version=model_version, actor=request.user, target_stage=form.cleaned_data["stage"],
                justification=form.cleaned_data["justification"])
        except ApplicationError as exc:
            _fail(request, exc)
        else:
            outcome = "all quality gates passed" if created.gates_passed else "some quality gates failed"
            messages.success(request, f"Promotion request for {model_version} to "
                                      f"{stage_label(created.target_stage)} sent: {outcome}.")
    return redirect("registry:version", name=name, version=version)


def _decision_target(request, pk: int):
    try:
        return selectors.promotion_request_get(user=request.user, pk=pk)
    except ApplicationError:
        raise Http404("No such request.")


def _back(request, fallback: str):
    target = request.POST.get("next", "")
    return redirect(target if target.startswith("/") and not target.startswith("//") else fallback)


@require_POST
def approve_request(request, pk: int):
    promotion = _decision_target(request, pk)
    form = ApproveForm(request.POST)
    if not form.is_valid():
        messages.error(request, "An approval needs a comment.")
    else:
        try:
            services.promotion_request_approve(promotion_request=promotion, actor=request.user, **form.cleaned_data)
        except ApplicationError as exc:
            _fail(request, exc)
        else:
            messages.success(request, f"Promotion request for {promotion.version} approved: it is now in "
                                      f"{stage_label(promotion.target_stage)}.")
    return _back(request, reverse("registry:approvals"))


@require_POST
def reject_request(request, pk: int):
    promotion = _decision_target(request, pk)
    form = RejectForm(request.POST)
    if not form.is_valid():
        messages.error(request, "A rejection needs a comment.")
    else:
        try:
            services.promotion_request_reject(promotion_request=promotion, actor=request.user,
                                              comment=form.cleaned_data["comment"])
        except ApplicationError as exc:
            _fail(request, exc)
        else:
            messages.success(request, f"Promotion request for {promotion.version} to "
                                      f"{stage_label(promotion.target_stage)} rejected.")
    return _back(request, reverse("registry:approvals"))


@require_POST
def cancel_request(request, pk: int):
    promotion = _decision_target(request, pk)
    try:
        services.promotion_request_cancel(promotion_request=promotion, actor=request.user)
    except ApplicationError as exc:
        _fail(request, exc)
    else:
        messages.success(request, f"Promotion request for {promotion.version} to "
                                  f"{stage_label(promotion.target_stage)} withdrawn.")
    return _back(request, reverse("registry:approvals"))


@require_POST
def rollback(request, name: str):
    model = _model_or_404(request.user, name, annotated=False)
    form = RollbackForm(request.POST)
    if not form.is_valid():
        messages.error(request, "A rollback needs a reason.")
    else:
        try:
            restored = services.registered_model_rollback(registered_model=model, actor=request.user,
                                                          reason=form.cleaned_data["reason"])
        except ApplicationError as exc:
            _fail(request, exc)
        else:
            messages.success(request, f"Rolled back: {restored} is in Production again.")
    return redirect("registry:detail", name=name)


@require_POST
def set_alias(request, name: str):
    model = _model_or_404(request.user, name, annotated=False)
    form = AliasForm(request.POST)
    if not form.is_valid():
        messages.error(request, "An alias needs a slug name and a version number.")
    else:
        try:
            alias = services.model_alias_set(registered_model=model, alias=form.cleaned_data["alias"],
                                             version_number=form.cleaned_data["version"], actor=request.user)
        except ApplicationError as exc:
            _fail(request, exc)
        else:
            messages.success(request, f"Alias {model.name}@{alias.alias} now points to v{alias.version.version}.")
    return redirect("registry:detail", name=name)


@require_POST
def set_gates(request, name: str):
    """Approvers and Admins set the quality gates and the holdout; the service
    refuses anyone else, and re-evaluates the pending requests."""
    model = _model_or_404(request.user, name, annotated=False)
    form = GovernanceForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Quality gates: " + "; ".join(e for errors in form.errors.values() for e in errors))
        return redirect("registry:detail", name=name)
    data = form.cleaned_data
    dataset_version = None
    if data["evaluation_dataset_version"]:
        dataset_version = selectors.dataset_version_to_use(user=request.user, pk=data["evaluation_dataset_version"])
        if dataset_version is None:
            messages.error(request, "No such dataset version.")
            return redirect("registry:detail", name=name)
    try:
        services.registered_model_update(registered_model=model, actor=request.user,
                                         quality_gates=data["quality_gates"],
                                         evaluation_dataset_version=dataset_version,
                                         evaluation_target=data["evaluation_target"])
    except ApplicationError as exc:
        _fail(request, exc)
    else:
        messages.success(request, f"Quality gates of {model.name} saved; pending promotion requests were "
                                  "evaluated again.")
    return redirect("registry:detail", name=name)


@require_POST
def send_test_event(request, pk: int):
    """The "Send test event" button of the model page's webhooks (the
    facility is core's: apps.core.webhooks)."""
    try:
        subscription = webhook_selectors.webhook_get(user=request.user, pk=pk)
        delivery = webhook_services.webhook_send_test(subscription=subscription, actor=request.user)
    except ApplicationError as exc:
        _fail(request, exc)
    else:
        messages.success(request, f"Test event queued for {subscription.name} (delivery {delivery.uuid}).")
    return _back(request, reverse("registry:list"))

