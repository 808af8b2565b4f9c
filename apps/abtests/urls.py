from django.urls import path

from apps.abtests import views

app_name = "abtests"
urlpatterns = [
    path("calculator/", views.calculator, name="calculator"),
]
