"""Browser pages of the serving app: endpoints, one endpoint with its
traffic split, live charts, rollout controls, history and "try it"."""

from __future__ import annotations

import json

from django.contrib import messages
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_POST

from apps.core.errors import ApplicationError, NotFound
from apps.core.errors import PermissionDenied as AppPermissionDenied
from apps.core.permissions import has_perm
from apps.serving import charts, csvexport, holders, selectors, services
from apps.serving.forms import DeployForm, EndpointForm, FollowForm, PredictionLogFilterForm, ReasonForm

DEPLOYMENT_ACTIONS = ("promote", "pause", "resume", "rollback")


def _refused(request, exc: ApplicationError) -> None:
    """Flash a refusal; a 409 ``split_held`` links to the test that holds the traffic."""
    split_id = (exc.details or {}).get("split_id") if exc.code == "split_held" else None
    holder = holders.split_holder(split_id=split_id, user=request.user) if split_id else None
    if holder is None:
        messages.error(request, exc.message)
        return
    messages.error(request, format_html(
        'The traffic of this endpoint is held by <a href="{}" id="split-holder-link">{}</a>: stop it before you '
        "roll out, roll back or promote here.", holder.url, holder.label))


def _endpoint_or_404(request, slug: str, perm: str = "serving.view_endpoint"):
    try:
        return selectors.endpoint_get(user=request.user, slug=slug, perm=perm)
    except NotFound:
        raise Http404(f"No endpoint {slug}.")
    except AppPermissionDenied as exc:
        from django.core.exceptions import PermissionDenied

        raise PermissionDenied(exc.message)


@require_GET
def endpoint_list(request):
    return render(request, "serving/endpoint_list.html", {
        "endpoints": selectors.endpoint_list(user=request.user),
        "form": EndpointForm() if has_perm(request.user, "serving.add_endpoint") else None,
    })


@require_POST
def endpoint_create(request):
    form = EndpointForm(request.POST)
    if not form.is_valid():
        messages.error(request, "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()))
        return redirect("serving:list")
    data = form.cleaned_data
    try:
        endpoint = services.endpoint_create(actor=request.user, slug=data["slug"], name=data["name"],
                                            environment=data["environment"], description=data["description"],
                                            config={"max_batch_size": data["max_batch_size"]})
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("serving:list")
    messages.success(request, f"Endpoint {endpoint.slug} created. Deploy a model version to it.")
    return redirect("serving:detail", slug=endpoint.slug)


@require_GET
def endpoint_detail(request, slug: str):
    endpoint = _endpoint_or_404(request, slug)
    split = selectors.traffic_split(endpoint=endpoint)
    deployments = selectors.deployments_with_lineage(
        user=request.user, deployments=list(selectors.deployment_list(user=request.user, endpoint=endpoint)[:25]))
    active = next((d for d in deployments if d.rollout_active), None)
    serving = max((d for d in deployments if d.status in selectors.LIVE_STATUSES), default=None,
                  key=lambda d: d.traffic_weight)
    can_deploy = has_perm(request.user, "serving.deploy_endpoint", endpoint)
    held = services.endpoint_split_held(endpoint_id=endpoint.pk)
    example = (serving.model_version.input_example[:2] if serving is not None else []) or []
    return render(request, "serving/endpoint_detail.html", {
        "endpoint": endpoint,
        "split": split,
        "held_split": held,
        "split_holder": holders.split_holder(split_id=held.pk, user=request.user) if held else None,
        "traffic_fig": charts.traffic_split_figure(split),
        "deployments": deployments,
        "active": active,
        "timeline": selectors.endpoint_timeline(endpoint=endpoint, limit=60),
        "can_deploy": can_deploy,
        "can_predict": has_perm(request.user, "serving.predict_endpoint", endpoint),
        "deploy_form": DeployForm(endpoint=endpoint, user=request.user) if can_deploy else None,
        "stale": services.stale_deployments(endpoint),
        "baking": [d for d in deployments if d.baking],
        "follow_form": (FollowForm(initial={"follow_mode": endpoint.follow_mode,
                                            "follow_strategy": endpoint.follow_strategy,
                                            "bake_minutes": endpoint.bake_minutes})
                        if has_perm(request.user, "serving.change_endpoint", endpoint) else None),
        "example_json": json.dumps({"instances": example, "unit_id": "S-try-1"}, indent=2),
        "predict_url": f"/api/v1/endpoints/{endpoint.slug}/predict/",
    })


@require_POST
def endpoint_deploy(request, slug: str):
    endpoint = _endpoint_or_404(request, slug)
    form = DeployForm(request.POST, endpoint=endpoint, user=request.user)
    if not form.is_valid():
        messages.error(request, "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()))
        return redirect("serving:detail", slug=slug)
    try:
        deployment = services.deployment_start(endpoint=endpoint, model_version=form.cleaned_data["model_version"],
                                               strategy=form.cleaned_data["strategy"], config=form.config(),
                                               actor=request.user)
    except ApplicationError as exc:
        _refused(request, exc)
        return redirect("serving:detail", slug=slug)
    messages.success(request, f"Deployment {deployment.pk} started: health check first, then "
                              f"{deployment.get_strategy_display().lower()} rollout.")
    return redirect("serving:detail", slug=slug)


@require_POST
def endpoint_follow(request, slug: str):
    endpoint = _endpoint_or_404(request, slug, perm="serving.change_endpoint")
    form = FollowForm(request.POST)
    if not form.is_valid():
        messages.error(request, "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()))
        return redirect("serving:detail", slug=endpoint.slug)
    try:
        services.endpoint_update(endpoint=endpoint, actor=request.user, **form.cleaned_data)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Follow settings of endpoint {endpoint.slug} saved.")
    return redirect("serving:detail", slug=endpoint.slug)


_DONE = {"promote": "promoted: it takes all traffic now", "pause": "paused", "resume": "resumed",
         "rollback": "rolled back: the traffic went back to what served before"}


def _action_done(deployment, action: str) -> str:
    """'Deployment 3 (sample-qc v2 on qc-staging) paused.'"""
    return f"Deployment {deployment.pk} ({deployment.model_version} on {deployment.endpoint.slug}) {_DONE[action]}."


@require_POST
def deployment_action(request, pk: int, action: str):
    if action not in DEPLOYMENT_ACTIONS:
        raise Http404("Unknown action.")
    try:
        deployment = selectors.deployment_get(user=request.user, pk=pk)
    except NotFound:
        raise Http404("No such deployment.")
    if action == "promote" and request.POST.get("confirmed") != "1":
        # Promoting skips the rollout's remaining checks: ask first (the page's
        # dialog does so with script; this page without).
        return render(request, "serving/confirm_promote.html", {"deployment": deployment})
    form = ReasonForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        if action == "promote":
            services.deployment_promote(deployment=deployment, actor=request.user)
        elif action == "pause":
            services.deployment_pause(deployment=deployment, actor=request.user, reason=reason)
        elif action == "resume":
            services.deployment_resume(deployment=deployment, actor=request.user)
        else:
            services.deployment_rollback(deployment=deployment, actor=request.user, reason=reason)
    except ApplicationError as exc:
        _refused(request, exc)
    else:
        messages.success(request, _action_done(deployment, action))
    return redirect("serving:detail", slug=deployment.endpoint.slug)


@require_GET
def traffic_chart(request, slug: str):
    endpoint = _endpoint_or_404(request, slug)
    split = selectors.traffic_split(endpoint=endpoint)
    return JsonResponse(charts.traffic_split_figure(split))


@require_GET
def traffic_split(request, slug: str):
    """The split as JSON, for the table under the chart."""
    endpoint = _endpoint_or_404(request, slug)
    return JsonResponse({"split": selectors.traffic_split(endpoint=endpoint)})


@require_GET
def live_chart(request, slug: str, kind: str):
    if kind not in ("rps", "latency", "errors"):
        raise Http404("Unknown chart.")
    endpoint = _endpoint_or_404(request, slug)
    try:
        window = selectors.parse_window(request.GET.get("window"))
    except ApplicationError as exc:
        return JsonResponse({"error": exc.message}, status=400)
    metrics = selectors.endpoint_metrics(endpoint=endpoint, window=window)
    return JsonResponse(charts.live_figure(metrics, kind))


@require_GET
def prediction_log(request, slug: str):
    """The endpoint's prediction log: filtered, 50 rows a page, newest first,
    with the joined feedback; ``?format=csv`` streams every matching row."""
    endpoint = _endpoint_or_404(request, slug)
    form = PredictionLogFilterForm(request.GET, versions=selectors.endpoint_served_versions(endpoint=endpoint))
    as_csv = request.GET.get("format") == "csv"
    if not form.is_valid():
        if as_csv:
            errors = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
            return HttpResponse(f"Invalid filter: {errors}", status=400, content_type="text/plain; charset=utf-8")
        return render(request, "serving/prediction_log.html", {"endpoint": endpoint, "form": form, "rows": []},
                      status=400)
    filters = form.filters()
    if as_csv:
        logs = selectors.prediction_log_list(endpoint=endpoint, filters=filters).iterator(chunk_size=500)
        response = StreamingHttpResponse(csvexport.stream_csv(logs), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{endpoint.slug}-predictions.csv"'
        return response
    try:
        rows, older = selectors.prediction_log_page(endpoint=endpoint, filters=filters,
                                                    before=form.cleaned_data.get("before"))
    except ApplicationError as exc:
        raise Http404(exc.message)
    query = request.GET.copy()
    query.pop("before", None)
    query.pop("format", None)
    return render(request, "serving/prediction_log.html", {
        "endpoint": endpoint, "form": form, "rows": [_log_row(log) for log in rows], "older": older,
        "query": query.urlencode(), "paged": form.cleaned_data.get("before") is not None,
    })


def _log_row(log) -> dict:
    """One table row; inputs and answers as JSON text, escaped by the template."""
    return {"log": log, "inputs": json.dumps(log.inputs, ensure_ascii=False),
            "predictions": json.dumps(log.predictions, ensure_ascii=False),
            "feedback": [{**item, "label": json.dumps(item["label"], ensure_ascii=False)}
                         for item in csvexport.feedback_items(log)]}
