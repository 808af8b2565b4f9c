from django.urls import NoReverseMatch, reverse

from apps.core import navigation as nav
from apps.core.permissions import has_perm


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": []}
    entries = []
    current = request.path
    for item in nav.items():
        if item.permission and not has_perm(user, item.permission):
            continue
        try:
            url = reverse(item.url_name)
        except NoReverseMatch:
            continue
        active = current == url or (url != "/" and current.startswith(url))
        entries.append({"label": item.label, "url": url, "active": active})
    return {"nav_items": entries}


def csp_nonce(request):
    """The nonce that lets an inline ``<script>`` or ``<style>`` of this
    response pass the Content-Security-Policy."""
    return {"csp_nonce": getattr(request, "csp_nonce", "")}
