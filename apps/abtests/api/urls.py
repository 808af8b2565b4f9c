from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.abtests.api import views

router = SimpleRouter()
router.register("ab-tests", views.ABTestViewSet, basename="ab-test")

urlpatterns = [
    # Before the router, so that "analyze" is never read as a test id.
    path("ab-tests/analyze/", views.MetricAnalysisView.as_view(), name="ab-tests-analyze"),
    *router.urls,
]
