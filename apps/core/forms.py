from django import forms
from django.contrib.auth.forms import AuthenticationForm

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
