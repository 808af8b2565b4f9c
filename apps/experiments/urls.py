from django.urls import path

from apps.experiments import views

app_name = "experiments"
urlpatterns = [
    path("", views.experiment_list, name="list"),
    path("<int:pk>/", views.experiment_detail, name="detail"),
    path("runs/<int:pk>/", views.run_detail, name="run"),
    path("runs/<int:pk>/chart/", views.metric_chart, name="metric-chart"),
    path("compare/", views.compare, name="compare"),
    path("training/", views.training_list, name="training-list"),
    path("training/new/", views.training_new, name="training-new"),
    path("training/<int:pk>/", views.training_job, name="training-job"),
    path("training/<int:pk>/cancel/", views.training_cancel, name="training-cancel"),
]
