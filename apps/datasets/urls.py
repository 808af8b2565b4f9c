from django.urls import path

from apps.datasets import views

app_name = "datasets"
urlpatterns = [
    path("", views.dataset_list, name="list"),
    path("<int:pk>/", views.dataset_detail, name="detail"),
    path("<int:pk>/edit/", views.dataset_edit, name="edit"),
    path("<int:pk>/upload/", views.dataset_upload, name="upload"),
    path("<int:pk>/expectations/", views.expectation_add, name="expectation-add"),
    path("<int:pk>/expectations/from-schema/", views.expectations_from_schema, name="expectations-from-schema"),
    path("<int:pk>/expectations/<int:expectation_id>/delete/", views.expectation_delete, name="expectation-delete"),
    path("<int:pk>/feature-spec/", views.feature_spec_save, name="feature-spec"),
    path("versions/<int:pk>/", views.version_detail, name="version"),
    path("versions/<int:pk>/revalidate/", views.version_revalidate, name="version-revalidate"),
]
