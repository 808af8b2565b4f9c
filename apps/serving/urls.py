from django.urls import path

from apps.serving import views

app_name = "serving"
urlpatterns = [
    path("", views.endpoint_list, name="list"),
    path("new/", views.endpoint_create, name="create"),
    path("deployments/<int:pk>/<str:action>/", views.deployment_action, name="action"),
    path("<slug:slug>/", views.endpoint_detail, name="detail"),
    path("<slug:slug>/deploy/", views.endpoint_deploy, name="deploy"),
    path("<slug:slug>/follow/", views.endpoint_follow, name="follow"),
    path("<slug:slug>/predictions/", views.prediction_log, name="predictions"),
    path("<slug:slug>/charts/traffic.json", views.traffic_chart, name="chart-traffic"),
    path("<slug:slug>/charts/<str:kind>.json", views.live_chart, name="chart-live"),
    path("<slug:slug>/split.json", views.traffic_split, name="split"),
]
