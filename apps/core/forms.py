from datetime import datetime, time

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.utils import timezone

from apps.core.errors import RateLimited
from apps.core.services import login_throttle_check, login_throttle_record_failure, login_throttle_reset


def client_ip(request) -> str:
    return request.META.get("REMOTE_ADDR", "") if request is not None else ""


class ThrottledAuthenticationForm(AuthenticationForm):
    """The browser sign-in form, locked for a while after repeated failures."""

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        ip = client_ip(self.request)
        try:
            login_throttle_check(username=username, client_ip=ip)
        except RateLimited as exc:
            raise forms.ValidationError(exc.message, code="rate_limited") from exc
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            login_throttle_record_failure(username=username, client_ip=ip)
            raise
        login_throttle_reset(username=username, client_ip=ip)
        return cleaned


class ApiKeyForm(forms.Form):
    """A new API key: a name to recognise it by, and an optional last day."""

    name = forms.CharField(max_length=100, help_text="What uses it, e.g. “LIMS export” or “my laptop”.")
    expires_on = forms.DateField(
        required=False, label="Expires on",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Optional. The key stops working at the start of this day; empty: until revoked.")

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("An API key needs a name.")
        return name

    def clean_expires_on(self):
        day = self.cleaned_data.get("expires_on")
        if day is not None and day <= timezone.localdate():
            raise forms.ValidationError("The expiry date must be after today.")
        return day

    def expires_at(self):
        day = self.cleaned_data.get("expires_on")
        return None if day is None else timezone.make_aware(datetime.combine(day, time.min))
