"""The one project router for /api/v1/: each app contributes its api/urls.py."""

from importlib import import_module

from django.conf import settings
from django.urls import include, path

API_APPS = ["apps.core", "apps.datasets", "apps.experiments", "apps.registry", "apps.serving",
            "apps.abtests", "apps.monitoring", "apps.dashboard"]


def _app_patterns():
    for app in API_APPS:
        if app not in settings.INSTALLED_APPS:
            continue
        try:
            module = import_module(f"{app}.api.urls")
        except ModuleNotFoundError as exc:
            if exc.name in (f"{app}.api", f"{app}.api.urls"):
                continue
            raise
        yield path("", include(module))


urlpatterns = list(_app_patterns())
