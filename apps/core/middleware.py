import re
import secrets
import time
import uuid

from django.conf import settings
from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequiredMiddleware

from apps.core.context import request_id_var
from apps.core.errors import json_error_response
from apps.core.metrics import HTTP_LATENCY, HTTP_REQUESTS

_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    """Give every request an id (or keep the caller's ``X-Request-ID``), visible
    to audit events and logs and echoed in the response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if _REQUEST_ID_OK.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response


class FriendlyNotFoundMiddleware:
    """With DEBUG on (``make run``), Django answers an unknown page with its
    technical 404, which lists every URL pattern of the site to whoever asks.
    Browser pages get the friendly ``404.html`` instead, as without DEBUG; API
    paths keep their JSON error shape (their 404s are JSON, never touched here).

    It sits outside CommonMiddleware, so "add a slash" redirects still happen,
    and inside the Content-Security-Policy middleware, so the page gets its nonce."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (response.status_code == 404 and settings.DEBUG and not request.path.startswith("/api/")
                and response.get("Content-Type", "").startswith("text/html")):
            from django.http import Http404
            from django.views.defaults import page_not_found

            return page_not_found(request, Http404())
        return response


class PrometheusMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        start = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = match.view_name if match is not None and match.view_name else "unmatched"
        HTTP_LATENCY.labels(view).observe(time.perf_counter() - start)
        HTTP_REQUESTS.labels(view, request.method, str(response.status_code)).inc()
        return response


class BodySizeLimitMiddleware:
    """Refuse bodies larger than the view allows before reading them.

    The limit is ``settings.API_MAX_BODY_SIZE`` unless the view (or the
    viewset action) declares ``max_body_size`` — uploads do, with their own
    setting."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return json_error_response("malformed_request", "Invalid Content-Length header.", 400)
        if length <= 0:
            return None
        limit = _view_body_limit(view_func, request.method)
        if length > limit:
            return json_error_response(
                "payload_too_large",
                f"Request body of {length} bytes is over the limit of {limit} bytes.",
                413,
                {"limit_bytes": limit, "content_length": length},
            )
        return None


def _view_body_limit(view_func, method: str) -> int:
    limit = getattr(view_func, "max_body_size", None)
    cls = getattr(view_func, "cls", None)
    if limit is None and cls is not None:
        actions = getattr(view_func, "actions", None) or {}
        handler = getattr(cls, actions.get(method.lower(), method.lower()), None)
        limit = getattr(handler, "max_body_size", None) or getattr(cls, "max_body_size", None)
    if callable(limit):
        limit = limit()
    return int(limit or settings.API_MAX_BODY_SIZE)


def max_body_size(setting_name: str):
    """Decorator: let this view or action accept bodies up to ``settings.<name>``."""

    def decorate(func):
        func.max_body_size = lambda: getattr(settings, setting_name)
        return func

    return decorate


class LoginRequiredMiddleware(DjangoLoginRequiredMiddleware):
    """Browser pages need a signed-in user. The API authenticates on its own
    (and answers 401 JSON), and ops endpoints and static files are open."""

    open_prefixes = ("/api/", "/healthz", "/readyz", "/metrics", "/static/", "/admin/", "/favicon")

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path.startswith(self.open_prefixes):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)


def content_security_policy(nonce: str, *, inline_styles: bool = False) -> str:
    """The policy of every page and API answer: only the platform's own
    scripts and styles (plus inline ones carrying this response's nonce),
    no plugins, no framing, forms post only back here.

    ``inline_styles`` lets style attributes through (never scripts): DRF's
    browsable API pages have a few in templates we do not own. No page
    allows 'unsafe-eval': no chart uses a WebGL trace (their layer compiles
    code with ``Function()``).

    Style *elements* need the nonce; style *attributes* are allowed, because
    plotly.js writes them from script (d3 ``attr("style")``) on most charts,
    and an attribute holds declarations only: it cannot run script, nor,
    having no selectors, read the page. The templates still use none (a test
    holds them to it)."""
    styles = "style-src 'self' 'unsafe-inline'" if inline_styles else f"style-src 'self' 'nonce-{nonce}'"
    return "; ".join((
        "default-src 'self'",
        f"script-src 'self' 'nonce-{nonce}'",
        styles,
        # Passive images only; Swagger UI's icons are data: SVGs in its CSS.
        "img-src 'self' data:",
        "style-src-attr 'unsafe-inline'",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ))


class ContentSecurityPolicyMiddleware:
    """Send a Content-Security-Policy on every response, with a fresh nonce
    per request that templates put on the few inline ``<script>``/``<style>``
    elements they need (``{{ csp_nonce }}``, see the context processor).

    A response that already carries a policy keeps it: user content sets a
    stricter, sandboxed one (apps/core/usercontent.py)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.csp_nonce = secrets.token_urlsafe(18)
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            renderer = getattr(response, "accepted_renderer", None)
            response["Content-Security-Policy"] = content_security_policy(
                request.csp_nonce, inline_styles=getattr(renderer, "format", "") == "api")
        return response

