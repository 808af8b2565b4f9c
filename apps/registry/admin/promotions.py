"""The approval queue: pending promotion requests first, approve and reject
as actions behind a page that asks for the comment and shows the gate
results and the metric comparison with Production."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.template.defaultfilters import pluralize
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join

from apps.core.admin import ObjectPermissionAdminMixin, ReadOnlyAdminMixin
from apps.core.errors import ApplicationError
from apps.core.permissions import has_perm, is_admin
from apps.registry import selectors, services
from apps.registry.choices import RequestStatus
from apps.registry.models import PromotionRequest


def _gates_html(gates: list[dict]):
    if not gates:
        return "—"
    rows = format_html_join("", "<tr><td><code>{}</code></td><td><strong>{}</strong></td><td>{}</td></tr>", (
        (g.get("gate"), "skipped" if g.get("skipped") else ("passed" if g.get("passed") else "FAILED"),
         g.get("message", "")) for g in gates))
    return format_html('<table class="gate-results"><tr><th>Gate</th><th>Result</th><th>Detail</th></tr>{}</table>',
                       rows)


def _number(value):
    return "—" if value is None else f"{value:.4f}"


def _comparison_html(promotion: PromotionRequest):
    production = selectors.production_version(registered_model=promotion.version.registered_model)
    baseline = production if production and production.pk != promotion.version_id else None
    rows = selectors.metric_comparison(candidate=promotion.version, baseline=baseline)
    if not rows:
        return "No evaluation metrics recorded."
    body = format_html_join("", "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>", (
        (r["metric"], _number(r["candidate"]), _number(r["baseline"]),
         "—" if r["delta"] is None else f"{r['delta']:+.4f}" + ("" if r["better"] is None else
                                                                (" (better)" if r["better"] else " (worse)")))
        for r in rows))
    header = f"Production v{baseline.version}" if baseline else "Production (none)"
    return format_html('<table class="metric-comparison"><tr><th>Metric</th><th>Candidate v{}</th><th>{}</th>'
                       "<th>Change</th></tr>{}</table>", promotion.version.version, header, body)


class PendingFirstStatusFilter(admin.SimpleListFilter):
    """Status filter that starts on "Pending": the changelist is the approval queue."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [*RequestStatus.choices, ("all", "All")]

    def choices(self, changelist):
        current = self.value() or RequestStatus.PENDING
        for value, label in self.lookup_choices:
            yield {"selected": current == value, "query_string": changelist.get_query_string(
                {self.parameter_name: value}), "display": label}

    def queryset(self, request, queryset):
        value = self.value() or RequestStatus.PENDING
        return queryset if value == "all" else queryset.filter(status=value)


class DecisionForm(forms.Form):
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 70}))
    override_reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3, "cols": 70}),
                                      help_text="Admins only, when quality gates failed.")


@admin.register(PromotionRequest)
class PromotionRequestAdmin(ObjectPermissionAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Pending promotion requests first; approve or reject as actions."""

    permission_via = "version__registered_model"

    list_display = ["id", "model_name", "version_number", "target_stage", "requested_by", "gates", "status",
                    "created_at", "decided_by"]
    list_display_links = ["id", "model_name"]
    list_filter = [PendingFirstStatusFilter, "target_stage", "gates_passed"]
    search_fields = ["version__registered_model__name", "requested_by__username", "justification"]
    actions = ["approve_selected", "reject_selected"]
    fields = ["version", "target_stage", "status", "requested_by", "created_at", "justification", "gate_table",
              "gates_evaluated_at", "comparison_table", "decided_by", "decided_at", "decision_comment",
              "override_reason"]
    readonly_fields = fields
    ordering = ["-created_at", "-id"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("version__registered_model", "requested_by",
                                                            "decided_by")

    @admin.display(description="Model", ordering="version__registered_model__name")
    def model_name(self, obj):
        return obj.version.registered_model.name

    @admin.display(description="Version", ordering="version__version")
    def version_number(self, obj):
        return f"v{obj.version.version}"

    @admin.display(description="Gates", boolean=True, ordering="gates_passed")
    def gates(self, obj):
        return obj.gates_passed

    @admin.display(description="Quality gates (scored by the platform)")
    def gate_table(self, obj):
        return _gates_html(obj.gate_results)

    @admin.display(description="Metrics vs Production (reported by the client)")
    def comparison_table(self, obj):
        return _comparison_html(obj)

    def has_approve_permission(self, request):
        return has_perm(request.user, "registry.approve_registeredmodel")

    def _decide(self, request, queryset, *, verb: str):
        form = DecisionForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            done = 0
            for promotion in queryset:
                try:
                    if verb == "approve":
                        services.promotion_request_approve(promotion_request=promotion, actor=request.user,
                                                           comment=form.cleaned_data["comment"],
                                                           override_reason=form.cleaned_data["override_reason"])
                    else:
                        services.promotion_request_reject(promotion_request=promotion, actor=request.user,
                                                          comment=form.cleaned_data["comment"])
                except ApplicationError as exc:
                    self.message_user(request, f"Request {promotion.pk} ({promotion.version}): {exc.message}",
                                      messages.ERROR)
                else:
                    done += 1
            if done:
                self.message_user(request, f"{verb.capitalize()}d {done} promotion request{pluralize(done)}.",
                                  messages.SUCCESS)
            return None
        # Four eyes: a requester is not offered Approve on their own request (the
        # service refuses it too, should the form be forged).
        items = [{"request": p, "gates": _gates_html(p.gate_results), "comparison": _comparison_html(p),
                  "own": p.requested_by_id == request.user.pk} for p in queryset]
        for item in items:
            item["offered"] = not (verb == "approve" and item["own"])
        return TemplateResponse(request, "admin/registry/promotionrequest/decide.html", {
            **self.admin_site.each_context(request),
            "title": f"{verb.capitalize()} promotion requests",
            "verb": verb,
            "action": f"{verb}_selected",
            "items": items,
            "offered": sum(item["offered"] for item in items),
            "form": form,
            "show_override": verb == "approve" and is_admin(request.user)
            and any(not i["request"].gates_passed for i in items),
            "opts": self.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        })

    @admin.action(description="Approve selected requests…", permissions=["approve"])
    def approve_selected(self, request, queryset):
        return self._decide(request, queryset, verb="approve")

    @admin.action(description="Reject selected requests…", permissions=["approve"])
    def reject_selected(self, request, queryset):
        return self._decide(request, queryset, verb="reject")
