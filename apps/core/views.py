"""Browser sign-in, the account's API keys page, the inbox, the favicon and
the ops endpoints (/healthz, /readyz, /metrics)."""

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.db import connections
from django.http import Http404, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.templatetags.static import static
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.core import selectors, services
from apps.core.errors import ApplicationError, NotFound, json_error_response
from apps.core.forms import ApiKeyForm, ThrottledAuthenticationForm
from apps.core.metrics import render_metrics


class LoginView(auth_views.LoginView):
    template_name = "registration/login.html"
    authentication_form = ThrottledAuthenticationForm
    redirect_authenticated_user = True


# --- The account's API keys ----------------------------------------------------------

@never_cache  # the one response that carries a new key must not be stored anywhere
@require_http_methods(["GET", "POST"])
def api_key_list(request):
    """List the user's keys and create one. A new key's secret is in this
    POST's response only: it is not put in the session, a message or a URL."""
    form = ApiKeyForm(request.POST if request.method == "POST" else None)
    issued = None
    if request.method == "POST" and form.is_valid():
        try:
            issued = services.api_key_create(user=request.user, name=form.cleaned_data["name"],
                                             expires_at=form.expires_at())
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            form = ApiKeyForm()
    return render(request, "core/api_keys.html", {
        "form": form,
        "issued": issued,
        "keys": selectors.api_key_list_own(user=request.user),
    }, status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
def api_key_revoke(request, pk: int):
    """GET asks for confirmation, POST revokes. Only the user's own keys."""
    try:
        api_key = selectors.api_key_get_own(user=request.user, pk=pk)
    except NotFound as exc:
        raise Http404(exc.message)
    if api_key.revoked_at is not None:
        messages.info(request, f"API key {api_key.prefix} ({api_key.name}) was already revoked.")
        return redirect("api-keys")
    if request.method == "GET":
        return render(request, "core/api_key_revoke.html", {"api_key": api_key})
    services.api_key_revoke(api_key=api_key, actor=request.user)
    messages.success(request, f"API key {api_key.prefix} ({api_key.name}) revoked. "
                              "Software using it can no longer sign in with it.")
    return redirect("api-keys")


@login_not_required
@require_GET
@cache_control(max_age=86400, public=True)
def favicon(request):
    """Browsers ask for /favicon.ico whatever the page links; send them to the static icon."""
    return HttpResponsePermanentRedirect(static("favicon.ico"))


# --- Ops ----------------------------------------------------------------------------

@login_not_required
@never_cache
@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


def _check_database() -> dict:
    start = time.perf_counter()
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"ok": True, "latency_ms": round((time.perf_counter() - start) * 1000, 2)}


def _check_broker() -> dict:
    from celery_app import app

    start = time.perf_counter()
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            if conn.transport.driver_type == "filesystem":
                import os

                folder = (app.conf.broker_transport_options or {}).get("data_folder_out")
                os.makedirs(folder, exist_ok=True)
                if not os.access(folder, os.W_OK):
                    raise OSError(f"broker folder {folder} is not writable")
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"ok": True, "latency_ms": round((time.perf_counter() - start) * 1000, 2)}


@login_not_required
@never_cache
@require_GET
def readyz(request):
    checks = {"database": _check_database(), "broker": _check_broker()}
    ready = all(check["ok"] for check in checks.values())
    return JsonResponse({"status": "ready" if ready else "unavailable", "checks": checks},
                        status=200 if ready else 503)


@login_not_required
@never_cache
@require_GET
def metrics(request):
    token = getattr(settings, "METRICS_TOKEN", "")
    if token and request.META.get("HTTP_AUTHORIZATION", "") != f"Bearer {token}":
        return json_error_response("not_authenticated", "A metrics token is required.", 401)
    body, content_type = render_metrics()
    return HttpResponse(body, content_type=content_type)


# --- Inbox ---------------------------------------------------------------------------

INBOX_PAGE_SIZE = 100


@require_GET
def inbox(request):
    notifications = list(selectors.notification_list(user=request.user)[:INBOX_PAGE_SIZE + 1])
    return render(request, "core/inbox.html", {
        "notifications": notifications[:INBOX_PAGE_SIZE],
        "truncated": len(notifications) > INBOX_PAGE_SIZE,
        "unread": selectors.notification_unread_count(user=request.user),
        "preference": selectors.notification_preference_get(user=request.user),
    })


@require_POST
def inbox_read(request, pk: int):
    try:
        notification = selectors.notification_get(user=request.user, pk=pk)
    except NotFound:
        raise Http404("Notification not found.")
    services.notification_mark_read(notification=notification, actor=request.user)
    return redirect("inbox")


@require_POST
def inbox_read_all(request):
    marked = services.notifications_mark_all_read(actor=request.user)
    messages.success(request, f"{marked} notification{pluralize(marked)} marked read.")
    return redirect("inbox")


@require_POST
def inbox_preferences(request):
    preference = services.notification_preference_set(actor=request.user, email=request.POST.get("email") == "on")
    messages.success(request, "Notifications will also come by email." if preference.email
                     else "Notifications stay in the inbox only; no email.")
    return redirect("inbox")
