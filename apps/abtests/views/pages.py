"""The tests list (with the new-test form and the planner) and the test page."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from apps.abtests import charts, history, planning, selectors, services
from apps.abtests.choices import TestStatus
from apps.abtests.forms import ABTestForm, PlanForm
from apps.core.errors import ApplicationError, NotFound
from apps.core.errors import PermissionDenied as AppPermissionDenied
from apps.core.permissions import has_perm
from apps.core.selectors import audit_events_for
from apps.registry import selectors as registry_selectors
from apps.serving import selectors as serving_selectors

NONE = "\u2013"


def ab_test_or_404(request, pk: int):
    try:
        return selectors.ab_test_get(user=request.user, pk=pk)
    except NotFound:
        raise Http404(f"No A/B test {pk}.")
    except AppPermissionDenied as exc:
        raise PermissionDenied(exc.message)


def _endpoints(user):
    return serving_selectors.endpoint_list(user=user, perm="serving.deploy_endpoint")


def _new_test_form(user, data=None):
    versions = registry_selectors.model_version_list(user=user)
    return ABTestForm(data, endpoints=_endpoints(user), versions=versions)


def _list_page(request, form=None, status=200):
    tests = list(selectors.ab_test_list(user=request.user)[:200])
    verdicts = selectors.ab_test_verdicts(tests=tests)
    can_create = has_perm(request.user, "abtests.add_abtest") and _endpoints(request.user).exists()
    plan_form, plan = None, None
    if can_create:
        plan_form = PlanForm(request.GET if "plan" in request.GET else None, endpoints=_endpoints(request.user))
        if plan_form.is_bound and plan_form.is_valid():
            data = plan_form.cleaned_data
            plan = planning.sample_plan(endpoint=data["endpoint"], metric=data["metric"], mde=data["mde"],
                                        alpha=data["alpha"], power_target=data["power"],
                                        weights=[1.0] * data["arms"], baseline=data["baseline"],
                                        std_dev=data["std_dev"])
    return render(request, "abtests/test_list.html", {
        "rows": [{"test": t, "verdict": verdicts[t.pk], "arms": list(t.arms.all())} for t in tests],
        "form": (form or _new_test_form(request.user)) if can_create else None,
        "plan_form": plan_form, "plan": plan, "statuses": TestStatus.choices,
    }, status=status)


@require_GET
def ab_test_list(request):
    return _list_page(request)


@require_POST
def ab_test_create(request):
    if not has_perm(request.user, "abtests.add_abtest"):
        raise PermissionDenied("You may not create A/B tests.")
    form = _new_test_form(request.user, request.POST)
    if not form.is_valid():
        return _list_page(request, form=form, status=400)
    try:
        test = services.ab_test_create(actor=request.user, **form.service_kwargs())
    except ApplicationError as exc:
        form.add_error(None, exc.message)
        return _list_page(request, form=form, status=400)
    messages.success(request, f"A/B test \u201c{test.name}\u201d created as a draft on {test.endpoint.slug}. "
                              "Check the arms and the plan, then start it.")
    return redirect("abtests:detail", pk=test.pk)


def _percent(value, signed=True) -> str:
    return NONE if value is None else (f"{value:+.2%}" if signed else f"{value:.1%}")


def arm_rows(test, results: dict) -> list[dict]:
    """One row per arm: units, metric value, and the comparison with the control."""
    primary = results.get("primary") or {}
    comparisons = {c.get("arm_index"): c for c in primary.get("comparisons", [])}
    rows = []
    for arm in test.arms.all():
        per_arm = next((a for a in primary.get("arms", []) if a.get("arm_index") == arm.index), {})
        comparison = comparisons.get(arm.index) or {}
        risk = comparison.get("risk")
        ci = comparison.get("ci")
        rows.append({
            "arm": arm, "n": per_arm.get("n", 0),
            "value": NONE if per_arm.get("mean") is None else f"{per_arm['mean']:.4g}",
            "lift": _percent(comparison.get("estimate")) if arm.index else "control",
            "ci": f"{ci[0]:+.2%} to {ci[1]:+.2%}" if ci else NONE,
            "p_value": NONE if comparison.get("p_value") is None else f"{comparison['p_value']:.4g}",
            "chance_to_win": _percent(comparison.get("chance_to_win"), signed=False),
            "risk": NONE if not risk else f"{risk['control']:.3g} / {risk['treatment']:.3g}",
            "significant": comparison.get("significant"), "error": comparison.get("error"),
        })
    return rows


def _can_approve(user, test) -> bool:
    if test.status != TestStatus.PENDING_APPROVAL or test.created_by_id == user.pk:
        return False
    return all(has_perm(user, "registry.approve_registeredmodel", arm.model_version.registered_model)
               for arm in test.arms.all() if arm.index)


@require_GET
def ab_test_detail(request, pk: int):
    test = ab_test_or_404(request, pk)
    started = test.split_id is not None
    if test.status == TestStatus.CONCLUDED and test.result_snapshot:
        results = test.result_snapshot
    else:
        results = selectors.ab_test_results(ab_test=test) if started else {}
    breaches = (selectors.ab_test_guardrail_breaches(ab_test=test)
                if test.status in (TestStatus.RUNNING, TestStatus.STOPPED) else [])
    can_steer = has_perm(request.user, "serving.deploy_endpoint", test.endpoint)
    return render(request, "abtests/test_detail.html", {
        "test": test, "arms": list(test.arms.all()), "results": results, "rows": arm_rows(test, results),
        "bayesian": test.engine == "bayesian", "verdict": selectors.verdict(results) if results else "not started",
        "srm": results.get("srm"), "breaches": breaches,
        "guardrail_stop": test.stop_reason if test.stop_reason.startswith("Guardrail broken") else "",
        "plan": planning.ab_test_power_panel(ab_test=test),
        "events": list(audit_events_for(obj=test).select_related("actor")[:50]),
        "can_steer": can_steer, "can_approve": _can_approve(request.user, test),
    })


@require_GET
def ab_test_lift_chart(request, pk: int):
    test = ab_test_or_404(request, pk)
    return JsonResponse(charts.lift_figure(history.ab_test_lift_history(ab_test=test)))
