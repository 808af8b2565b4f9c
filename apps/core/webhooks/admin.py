"""Webhook subscriptions and their delivery log in the Django admin
(imported by ``apps/core/admin.py``)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from apps.core.admin import ObjectPermissionAdminMixin, ReadOnlyAdminMixin
from apps.core.errors import ApplicationError
from apps.core.permissions import has_perm, is_admin
from apps.core.webhooks import selectors, services
from apps.core.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription


class WebhookSubscriptionForm(forms.ModelForm):
    # A plain field: the scheme check is the service's (http and https only).
    url = forms.CharField(max_length=500)

    class Meta:
        model = WebhookSubscription
        fields = ["name", "url", "subject_type", "subject_id", "events", "is_active"]

    def clean_url(self):
        try:
            return services.clean_url(self.cleaned_data["url"])
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message)

    def clean(self):
        cleaned = super().clean()
        subject_type, subject_id = cleaned.get("subject_type"), cleaned.get("subject_id")
        self.subject = None
        if (subject_type is None) != (subject_id is None):
            raise forms.ValidationError("Give both the object's type and its id, or neither (every object).")
        if subject_type is not None:
            model = subject_type.model_class()
            self.subject = model.objects.filter(pk=subject_id).first() if model is not None else None
            if self.subject is None:
                raise forms.ValidationError("No such object.")
        return cleaned

    def clean_events(self):
        try:
            return services.clean_events(self.cleaned_data["events"])
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message)


class WebhookAttemptInline(ObjectPermissionAdminMixin, ReadOnlyAdminMixin, admin.TabularInline):
    model = WebhookAttempt
    fields = ["number", "created_at", "status_code", "response_time_ms", "error", "response_excerpt"]
    readonly_fields = fields
    extra = 0

    def visible_queryset(self, request, queryset, *, action: str = "view"):
        return queryset.filter(delivery__in=selectors.webhook_delivery_list(user=request.user).values("pk"))

    def get_fields(self, request, obj=None):
        # A receiver's answer may carry anything from inside its network:
        # only Admins, who choose the targets, read it.
        fields = super().get_fields(request, obj)
        return fields if is_admin(request.user) else [f for f in fields if f != "response_excerpt"]


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(ObjectPermissionAdminMixin, admin.ModelAdmin):
    """Webhook targets, configured by Admins. The secret is shown once, when
    the subscription is created."""

    form = WebhookSubscriptionForm
    list_display = ["name", "url", "subject", "events", "is_active", "last_delivery"]
    list_filter = ["is_active"]
    actions = ["send_test_event"]

    def visible_queryset(self, request, queryset, *, action: str = "view"):
        # Global subscriptions carry no object to check; the selector knows the rule.
        return queryset.filter(pk__in=selectors.webhook_list(user=request.user).values("pk"))

    def get_readonly_fields(self, request, obj=None):
        # The scope is chosen once, at creation (the service does not move a subscription).
        return ["subject_type", "subject_id"] if obj is not None else []

    @admin.display(description="Last delivery")
    def last_delivery(self, obj):
        last = obj.deliveries.order_by("-created_at").first()
        return f"{last.event}: {last.status} ({last.attempt_count} attempt(s))" if last else "—"

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            services.webhook_subscription_update(
                subscription=obj, actor=request.user,
                **{name: data[name] for name in form.changed_data if name not in ("subject_type", "subject_id")})
            return
        created = services.webhook_subscription_create(
            actor=request.user, name=data["name"], url=data["url"], subject=form.subject,
            events=data["events"], is_active=data["is_active"])
        obj.pk = created.pk
        obj.secret = created.secret
        self.message_user(request, f"Signing secret for {created.name} (shown once): {created.secret}",
                          messages.WARNING)

    def delete_model(self, request, obj):
        services.webhook_subscription_delete(subscription=obj, actor=request.user)

    def has_test_permission(self, request):
        return has_perm(request.user, "core.change_webhooksubscription")

    @admin.action(description="Send a test event", permissions=["test"])
    def send_test_event(self, request, queryset):
        for subscription in queryset:
            delivery = services.webhook_send_test(subscription=subscription, actor=request.user)
            self.message_user(request, f"Test event queued for {subscription.name} (delivery {delivery.uuid}).")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ObjectPermissionAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every delivery and every attempt: status code, response time, error."""

    list_display = ["created_at", "subscription", "event", "status", "attempt_count", "last_status_code",
                    "completed_at"]
    list_filter = ["status", "event", "subscription"]
    search_fields = ["uuid", "event", "last_error"]
    readonly_fields = ["uuid", "subscription", "event", "status", "attempt_count", "last_status_code", "last_error",
                       "next_attempt_at", "created_at", "completed_at", "body"]
    inlines = [WebhookAttemptInline]

    def visible_queryset(self, request, queryset, *, action: str = "view"):
        return queryset.filter(pk__in=selectors.webhook_delivery_list(user=request.user).values("pk"))

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("subscription").prefetch_related("attempts")
