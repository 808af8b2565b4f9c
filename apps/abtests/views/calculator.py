"""The analysts' A/B calculator: sums per arm in, the analysis the API gives out."""

from __future__ import annotations

import re

from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from apps.abtests import services
from apps.abtests.forms import DEFAULT_ROWS, AnalysisForm, arm_formset
from apps.abtests.stats import MAX_ARMS
from apps.core.errors import ValidationFailed

NONE = "\u2013"  # an en dash in an empty cell
_ARM_FIELD = re.compile(r"^arms\[(\d+)\](?:\.(\w+))?$")


def _number(value: float | None, digits: int = 4) -> str:
    return NONE if value is None else f"{value:.{digits}g}"


def _result_rows(result: dict, *, relative: bool) -> list[dict]:
    rows = []
    for comparison in result["comparisons"]:
        estimate, ci = comparison["estimate"], comparison["ci"]
        if relative and estimate is not None:
            shown, interval = f"{estimate:+.2%}", f"{ci[0]:+.2%} to {ci[1]:+.2%}"
        else:
            shown = NONE if estimate is None else f"{estimate:+.4g}"
            interval = NONE if ci is None else f"{ci[0]:.4g} to {ci[1]:.4g}"
        risk = comparison["risk"]
        rows.append({
            "arm": comparison["arm"],
            "estimate": shown,
            "ci": interval,
            "p_value": _number(comparison["p_value"]),
            "chance_to_win": NONE if comparison["chance_to_win"] is None else f"{comparison['chance_to_win']:.1%}",
            "risk": NONE if risk is None else f"{_number(risk['control'], 3)} / {_number(risk['treatment'], 3)}",
            "significant": comparison["significant"],
            "error": comparison["error"],
        })
    return rows


def _report(exc: ValidationFailed, form: AnalysisForm, arms, used: list[int]) -> None:
    """Put each refusal of the statistics core on the field or row it names."""
    for key, messages in exc.details.get("fields", {}).items():
        message = " ".join(messages)
        match = _ARM_FIELD.match(key)
        if match and int(match.group(1)) < len(used):
            row = arms.forms[used[int(match.group(1))]]
            field = match.group(2)
            row.add_error(field if field in row.fields else None, message)
        elif key in form.fields:
            form.add_error(key, message)
        else:
            form.add_error(None, f"{key}: {message}")


@require_http_methods(["GET", "POST"])
def calculator(request):
    try:
        rows = int(request.GET.get("rows", DEFAULT_ROWS))
    except ValueError:
        rows = DEFAULT_ROWS
    data = request.POST if request.method == "POST" else None
    form, arms = AnalysisForm(data), arm_formset(data, rows=rows)
    result = None
    if data is not None and form.is_valid() and arms.is_valid():
        used = [i for i, row in enumerate(arms.forms) if not row.is_blank()]
        payload = []
        for k, i in enumerate(used):
            row = arms.forms[i].cleaned_data
            payload.append({"name": row["name"] or f"arm {k + 1}", "n": row["n"], "sum": row["sum"],
                            "sum_squares": row["sum_squares"]})
        try:
            result = services.metric_analyze(arms=payload, **form.cleaned_data)
        except ValidationFailed as exc:
            _report(exc, form, arms, used)
    context = {"form": form, "arms": arms, "max_arms": MAX_ARMS, "more_rows": min(len(arms.forms) + 2, MAX_ARMS)}
    if result is not None:
        context |= {
            "result": result,
            "rows": _result_rows(result, relative=form.cleaned_data["difference"] == "relative"),
            "bayesian": form.cleaned_data["engine"] == "bayesian",
            "srm_p": _number(result["srm"]["p_value"]),
        }
    return render(request, "abtests/calculator.html", context)
