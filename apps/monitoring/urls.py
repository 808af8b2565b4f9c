from django.urls import path

from apps.monitoring import views

app_name = "monitoring"
urlpatterns = [
    path("drift-reports/", views.drift_report_list, name="drift-report-list"),
    path("drift-reports/new/", views.drift_report_create, name="drift-report-create"),
    path("drift-reports/endpoint/<slug:slug>/", views.drift_report_create_for_endpoint,
         name="drift-report-create-for-endpoint"),
    path("drift-reports/<int:pk>/", views.drift_report_detail, name="drift-report-detail"),
]
