from django.conf import settings
from django.contrib import admin
from django.urls import Resolver404, include, path, re_path, resolve
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from apps.core.errors import json_error_response

admin.site.site_header = "TracSeq MLOps administration"
admin.site.site_title = "TracSeq MLOps admin"
admin.site.index_title = "Approvals, users and records"

urlpatterns = [
    # Webhooks moved from the registry to core (apps.core.webhooks): old admin links still work.
    re_path(r"^admin/registry/(?P<rest>webhook(?:subscription|delivery|attempt)/.*)$",
            RedirectView.as_view(url="/admin/core/%(rest)s", permanent=True, query_string=True)),
    path("admin/", admin.site.urls),
    path("api/v1/", include("mlops_site.api_router")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("apps.core.urls")),
]
if "apps.serving" in settings.INSTALLED_APPS:
    # The predict path first: resolving it behind every other pattern costs
    # more than its ONNX model does (apps/serving/api/predict.py).
    from apps.serving.api.predict import predict_view

    urlpatterns.insert(0, path("api/v1/endpoints/<slug:slug>/predict/", predict_view))
_PAGE_PREFIXES = {"abtests": "ab-tests"}  # the pages' path, where it is not the app's label
for app in ("datasets", "experiments", "registry", "serving", "abtests", "monitoring"):
    if f"apps.{app}" in settings.INSTALLED_APPS:
        urlpatterns.append(path(f"{_PAGE_PREFIXES.get(app, app)}/", include(f"apps.{app}.urls")))
urlpatterns.append(path("", include("apps.dashboard.urls")))
if "apps.mlflow_api" in settings.INSTALLED_APPS:
    # MLflow's REST paths (/api/2.0/mlflow/...): right after /api/v1/, since
    # MLflow clients send every metric batch there, and before /api/'s JSON 404.
    after_v1 = next(i for i, p in enumerate(urlpatterns) if str(p.pattern) == "api/v1/") + 1
    urlpatterns.insert(after_v1, path("", include("apps.mlflow_api.urls")))


@csrf_exempt
def _api_not_found(request, exception=None):
    message = f"No API route matches {request.path}."
    if not request.path.endswith("/"):
        try:
            match = resolve(request.path + "/")
        except Resolver404:
            match = None
        if match is not None and match.func is not _api_not_found:
            message += f" Did you mean {request.path}/ ?"
    return json_error_response("not_found", message, 404)


# Anything else under /api/ answers JSON, never an HTML page.
urlpatterns.append(re_path(r"^api/", _api_not_found))


def handler404(request, exception=None):
    if request.path.startswith("/api/"):
        return _api_not_found(request)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def handler500(request):
    if request.path.startswith("/api/"):
        return json_error_response("server_error", "Internal server error.", 500)
    from django.views.defaults import server_error

    return server_error(request)
