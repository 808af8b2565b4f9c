"""The registry in the Django admin, where QA managers work: a pending-first
list of promotion requests with approve/reject actions (an intermediate
page asks for the comment and shows gate results and the metric comparison
with Production), rollback as an action on registered models, and webhook
subscriptions with their delivery log. Every write goes through the same
services as the API, so four eyes, gates and audit hold here too."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join
from guardian.admin import GuardedModelAdmin

from apps.core.errors import ApplicationError
from apps.core.permissions import filter_visible, has_perm, is_admin
from apps.registry import quality, selectors, services
from apps.registry.choices import RequestStatus
from apps.registry.models import (
    ModelVersion,
    PromotionRequest,
    RegisteredModel,
    StageTransition,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from apps.registry.services.webhooks import _clean_events, _clean_url


class ReadOnlyMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


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


# --- Promotion requests ---------------------------------------------------------------

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
class PromotionRequestAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Pending promotion requests first; approve or reject as actions."""

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

    def get_queryset(self, request):
        return selectors.transition_request_list(user=request.user)

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
                        services.transition_request_approve(request=promotion, actor=request.user,
                                                            comment=form.cleaned_data["comment"],
                                                            override_reason=form.cleaned_data["override_reason"])
                    else:
                        services.transition_request_reject(request=promotion, actor=request.user,
                                                           comment=form.cleaned_data["comment"])
                except ApplicationError as exc:
                    self.message_user(request, f"Request {promotion.pk} ({promotion.version}): {exc.message}",
                                      messages.ERROR)
                else:
                    done += 1
            if done:
                self.message_user(request, f"{verb.capitalize()}d {done} request(s).", messages.SUCCESS)
            return None
        items = [{"request": p, "gates": _gates_html(p.gate_results), "comparison": _comparison_html(p),
                  "own": p.requested_by_id == request.user.pk} for p in queryset]
        return TemplateResponse(request, "admin/registry/promotionrequest/decide.html", {
            **self.admin_site.each_context(request),
            "title": f"{verb.capitalize()} promotion requests",
            "verb": verb,
            "action": f"{verb}_selected",
            "items": items,
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


# --- Registered models and versions -----------------------------------------------------

class RegisteredModelForm(forms.ModelForm):
    class Meta:
        model = RegisteredModel
        fields = ["description", "tags", "quality_gates", "evaluation_dataset_version", "evaluation_target",
                  "champion_follows_production"]

    def clean_quality_gates(self):
        try:
            return quality.normalize_gates(self.cleaned_data["quality_gates"])
        except quality.GateConfigError as exc:
            raise forms.ValidationError(str(exc))


class RollbackForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 70}))


@admin.register(RegisteredModel)
class RegisteredModelAdmin(GuardedModelAdmin):
    """Models with their object permissions (who may see, register, approve)."""

    form = RegisteredModelForm
    list_display = ["name", "task_type", "owner", "latest_version", "production", "updated_at"]
    search_fields = ["name", "description"]
    list_filter = ["task_type"]
    readonly_fields = ["name", "task_type", "owner", "latest_version", "created_at", "updated_at"]
    fields = ["name", "task_type", "owner", "description", "tags", "quality_gates", "evaluation_dataset_version",
              "evaluation_target", "champion_follows_production", "latest_version", "created_at", "updated_at"]
    raw_id_fields = ["evaluation_dataset_version"]
    actions = ["rollback_selected"]
    # Governance (approve rights) and the model's own settings (change
    # rights) are separate: each is editable only for those who hold it.
    governance_fields = ["quality_gates", "evaluation_dataset_version", "evaluation_target"]
    settings_fields = ["description", "tags", "champion_follows_production"]

    def get_queryset(self, request):
        return filter_visible(request.user, super().get_queryset(request)).select_related("owner")

    def has_add_permission(self, request):
        return False  # models are created through the API or the registry pages (grants, audit)

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return (has_perm(request.user, "registry.change_registeredmodel", obj)
                or has_perm(request.user, "registry.approve_registeredmodel", obj))

    def get_readonly_fields(self, request, obj=None):
        readonly = list(self.readonly_fields)
        if not has_perm(request.user, "registry.approve_registeredmodel", obj):
            readonly += self.governance_fields
        if not has_perm(request.user, "registry.change_registeredmodel", obj):
            readonly += self.settings_fields
        return readonly

    @admin.display(description="Production")
    def production(self, obj):
        version = selectors.production_version(registered_model=obj)
        return f"v{version.version}" if version else "—"

    def save_model(self, request, obj, form, change):
        changes = {name: form.cleaned_data[name] for name in form.changed_data}
        if changes:
            original = RegisteredModel.objects.get(pk=obj.pk)
            try:
                services.registered_model_update(registered_model=original, actor=request.user, **changes)
            except ApplicationError as exc:
                self.message_user(request, exc.message, messages.ERROR)

    def has_rollback_permission(self, request):
        return has_perm(request.user, "registry.rollback_registeredmodel")

    @admin.action(description="Roll back to the previous Production version…", permissions=["rollback"])
    def rollback_selected(self, request, queryset):
        form = RollbackForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            for model in queryset:
                try:
                    restored = services.registered_model_rollback(registered_model=model, actor=request.user,
                                                                  reason=form.cleaned_data["reason"])
                except ApplicationError as exc:
                    self.message_user(request, f"{model.name}: {exc.message}", messages.ERROR)
                else:
                    self.message_user(request, f"{model.name}: v{restored.version} is in Production again.",
                                      messages.SUCCESS)
            return None
        items = [{"model": m, "current": selectors.production_version(registered_model=m),
                  "previous": services.previous_production_version(registered_model=m)} for m in queryset]
        return TemplateResponse(request, "admin/registry/registeredmodel/rollback.html", {
            **self.admin_site.each_context(request),
            "title": "Roll back registered models",
            "items": items,
            "form": form,
            "opts": self.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        })


class StageTransitionInline(ReadOnlyMixin, admin.TabularInline):
    model = StageTransition
    fields = ["created_at", "from_stage", "to_stage", "kind", "actor", "reason", "promotion_request"]
    readonly_fields = fields
    extra = 0


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Versions are immutable records; they move only through approvals and rollback."""

    list_display = ["__str__", "stage", "approval_status", "source_run", "created_by", "created_at"]
    list_filter = ["stage", "approval_status"]
    search_fields = ["registered_model__name", "description", "sha256"]
    readonly_fields = ["registered_model", "version", "description", "stage", "approval_status", "source_run",
                       "dataset_version", "artifact", "sha256", "size_bytes", "signature_json", "metrics_json",
                       "created_by", "created_at", "stage_changed_at"]
    fields = readonly_fields
    inlines = [StageTransitionInline]

    def get_queryset(self, request):
        qs = super().get_queryset(request).select_related("registered_model", "created_by", "source_run")
        return filter_visible(request.user, qs, "registry.view_registeredmodel", via="registered_model")

    @admin.display(description="Signature")
    def signature_json(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.signature, indent=2))

    @admin.display(description="Metrics")
    def metrics_json(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.metrics, indent=2, sort_keys=True))


@admin.register(StageTransition)
class StageTransitionAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["created_at", "version", "from_stage", "to_stage", "kind", "actor", "reason"]
    list_filter = ["kind", "to_stage"]
    search_fields = ["version__registered_model__name", "reason"]

    def get_queryset(self, request):
        qs = super().get_queryset(request).select_related("version__registered_model", "actor")
        return filter_visible(request.user, qs, "registry.view_registeredmodel", via="version__registered_model")


# --- Webhooks -----------------------------------------------------------------------------

class WebhookSubscriptionForm(forms.ModelForm):
    # A plain field: the scheme check is the service's (http and https only).
    url = forms.CharField(max_length=500)

    class Meta:
        model = WebhookSubscription
        fields = ["name", "url", "registered_model", "events", "is_active"]

    def clean_url(self):
        try:
            return _clean_url(self.cleaned_data["url"])
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message)

    def clean_events(self):
        try:
            return _clean_events(self.cleaned_data["events"])
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message)


class WebhookAttemptInline(ReadOnlyMixin, admin.TabularInline):
    model = WebhookAttempt
    fields = ["number", "created_at", "status_code", "response_time_ms", "error", "response_excerpt"]
    readonly_fields = fields
    extra = 0


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    """Webhook targets, configured by Admins. The secret is shown once, when
    the subscription is created."""

    form = WebhookSubscriptionForm
    list_display = ["name", "url", "registered_model", "events", "is_active", "last_delivery"]
    list_filter = ["is_active"]
    actions = ["send_test_event"]

    def get_queryset(self, request):
        return selectors.webhook_list(user=request.user)

    @admin.display(description="Last delivery")
    def last_delivery(self, obj):
        last = obj.deliveries.order_by("-created_at").first()
        return f"{last.event}: {last.status} ({last.attempt_count} attempt(s))" if last else "—"

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            services.webhook_subscription_update(
                subscription=obj, actor=request.user,
                **{name: data[name] for name in form.changed_data if name != "registered_model"})
            return
        created = services.webhook_subscription_create(
            actor=request.user, name=data["name"], url=data["url"], registered_model=data["registered_model"],
            events=data["events"], is_active=data["is_active"])
        obj.pk = created.pk
        obj.secret = created.secret
        self.message_user(request, f"Signing secret for {created.name} (shown once): {created.secret}",
                          messages.WARNING)

    def delete_model(self, request, obj):
        services.webhook_subscription_delete(subscription=obj, actor=request.user)

    def has_test_permission(self, request):
        return has_perm(request.user, "registry.change_webhooksubscription")

    @admin.action(description="Send a test event", permissions=["test"])
    def send_test_event(self, request, queryset):
        for subscription in queryset:
            delivery = services.webhook_send_test(subscription=subscription, actor=request.user)
            self.message_user(request, f"Test event queued for {subscription.name} (delivery {delivery.uuid}).")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Every delivery and every attempt: status code, response time, error."""

    list_display = ["created_at", "subscription", "event", "status", "attempt_count", "last_status_code",
                    "completed_at"]
    list_filter = ["status", "event", "subscription"]
    search_fields = ["uuid", "event", "last_error"]
    readonly_fields = ["uuid", "subscription", "event", "status", "attempt_count", "last_status_code", "last_error",
                       "next_attempt_at", "created_at", "completed_at", "body"]
    inlines = [WebhookAttemptInline]

    def get_queryset(self, request):
        return selectors.webhook_delivery_list(user=request.user)
