"""The test page's buttons: start, approve, stop, conclude, abort. Each asks
first (a dialog with script, a confirmation page without), calls its
service, and says in words what happened."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from apps.abtests import services
from apps.abtests.choices import TestStatus
from apps.abtests.forms import ActionForm
from apps.abtests.views.pages import ab_test_or_404
from apps.core.errors import ApplicationError

ACTIONS = {
    "start": ("Start", "Programs the split: the arms take their share of the endpoint's traffic."),
    "approve": ("Approve and start", "You approve that the challengers serve live traffic on a production "
                                     "endpoint at these weights; the test starts at once."),
    "stop": ("Stop", "The control takes all traffic again; the results so far are kept."),
    "conclude": ("Conclude", "Records the decision and freezes the results it rests on."),
    "abort": ("Abort", "Gives the test up without a decision; a running test gives the traffic back to the control."),
}


PAST = {"start": "started", "approve": "approved", "stop": "stopped", "conclude": "concluded", "abort": "aborted"}


def _done(test, action: str) -> str:
    control = test.arms.order_by("index").first()
    if action == "start" and test.status == TestStatus.PENDING_APPROVAL:
        return (f"{test.label} waits for an Approver: a challenger is not in Production on the production endpoint "
                f"{test.endpoint.slug}. Someone other than you approves it.")
    if action in ("start", "approve"):
        arms = ", ".join(f"{arm.name} {arm.weight:g}" for arm in test.arms.order_by("index"))
        verb = "approved and started" if action == "approve" else "started"
        return f"{test.label} {verb}: {test.endpoint.slug}'s traffic is split {arms}."
    if action == "stop":
        return f"{test.label} stopped: {control.name if control else 'the control'} takes all traffic again."
    if action == "conclude":
        return f"{test.label} concluded: {test.decision.get('summary', '')}."
    return f"{test.label} aborted: {test.stop_reason}"


def _back(request, test):
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return redirect(target)
    return redirect("abtests:detail", pk=test.pk)


@require_POST
def ab_test_action(request, pk: int, action: str):
    if action not in ACTIONS:
        raise Http404("Unknown action.")
    test = ab_test_or_404(request, pk)
    form = ActionForm(request.POST)
    if request.POST.get("confirmed") != "1" or not form.is_valid():
        title, explanation = ACTIONS[action]
        return render(request, "abtests/confirm_action.html", {
            "test": test, "action": action, "title": title, "explanation": explanation, "form": form,
            "next": request.POST.get("next", ""), "arms": list(test.arms.all())})
    data = form.cleaned_data
    try:
        if action == "start":
            test = services.ab_test_start(ab_test=test, actor=request.user)
        elif action == "approve":
            test = services.ab_test_approve(ab_test=test, actor=request.user)
        elif action == "stop":
            test = services.ab_test_stop(ab_test=test, actor=request.user, reason=data["reason"])
        elif action == "conclude":
            test = services.ab_test_conclude(ab_test=test, actor=request.user, winner=data["winner"],
                                             summary=data["summary"])
        else:
            test = services.ab_test_abort(ab_test=test, actor=request.user, reason=data["reason"])
    except ApplicationError as exc:
        messages.error(request, f"{test.label} was not {PAST[action]}: {exc.message}")
        return _back(request, test)
    messages.success(request, _done(test, action))
    return _back(request, test)
