from django.urls import path

from apps.abtests.api import views

urlpatterns = [
    path("ab-tests/analyze/", views.MetricAnalysisView.as_view(), name="ab-tests-analyze"),
]
