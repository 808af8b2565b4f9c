from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.monitoring.api import views
from apps.monitoring.api.series import EndpointSeriesView

router = SimpleRouter()
router.register("drift-reports", views.DriftReportViewSet, basename="drift-report")

urlpatterns = [
    path("endpoints/<slug:slug>/series/", EndpointSeriesView.as_view(), name="endpoint-series"),
    *router.urls,
]
