from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.monitoring.alerts import api as alerts
from apps.monitoring.api import views
from apps.monitoring.api.series import EndpointSeriesView

router = SimpleRouter()
router.register("drift-reports", views.DriftReportViewSet, basename="drift-report")
router.register("alert-rules", alerts.AlertRuleViewSet, basename="alert-rule")
router.register("alerts", alerts.AlertViewSet, basename="alert")
router.register("silences", alerts.SilenceViewSet, basename="silence")

urlpatterns = [
    path("endpoints/<slug:slug>/series/", EndpointSeriesView.as_view(), name="endpoint-series"),
    *router.urls,
]
