from django.urls import path

from apps.abtests import views

app_name = "abtests"
urlpatterns = [
    path("", views.ab_test_list, name="list"),
    path("new/", views.ab_test_create, name="create"),
    path("calculator/", views.calculator, name="calculator"),
    path("<int:pk>/", views.ab_test_detail, name="detail"),
    path("<int:pk>/charts/lift.json", views.ab_test_lift_chart, name="chart-lift"),
    path("<int:pk>/<str:action>/", views.ab_test_action, name="action"),
]
