from rest_framework.routers import SimpleRouter

from apps.monitoring.api import views

router = SimpleRouter()
router.register("drift-reports", views.DriftReportViewSet, basename="drift-report")

urlpatterns = router.urls
