from rest_framework.routers import SimpleRouter

from apps.monitoring.alerts import api as alerts
from apps.monitoring.api import views

router = SimpleRouter()
router.register("drift-reports", views.DriftReportViewSet, basename="drift-report")
router.register("alert-rules", alerts.AlertRuleViewSet, basename="alert-rule")
router.register("alerts", alerts.AlertViewSet, basename="alert")
router.register("silences", alerts.SilenceViewSet, basename="silence")

urlpatterns = router.urls
