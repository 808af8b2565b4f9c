"""Browser sign-in and the ops endpoints (/healthz, /readyz, /metrics)."""

import time

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.db import connections
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.core.errors import json_error_response
from apps.core.forms import ThrottledAuthenticationForm
from apps.core.metrics import render_metrics


class LoginView(auth_views.LoginView):
    template_name = "registration/login.html"
    authentication_form = ThrottledAuthenticationForm
    redirect_authenticated_user = True


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
