from django.urls import path

from apps.registry import views

app_name = "registry"
urlpatterns = [
    path("", views.model_list, name="list"),
    path("approvals/", views.approval_queue, name="approvals"),
    path("register/", views.register_from_run, name="register_from_run"),
    path("models/<slug:name>/", views.model_detail, name="detail"),
    path("models/<slug:name>/rollback/", views.rollback, name="rollback"),
    path("models/<slug:name>/aliases/", views.set_alias, name="set_alias"),
    path("models/<slug:name>/gates/", views.set_gates, name="set_gates"),
    path("models/<slug:name>/versions/<int:version>/", views.version_detail, name="version"),
    path("models/<slug:name>/versions/<int:version>/request/", views.request_transition, name="request"),
    path("requests/<int:pk>/approve/", views.approve_request, name="approve"),
    path("requests/<int:pk>/reject/", views.reject_request, name="reject"),
    path("requests/<int:pk>/cancel/", views.cancel_request, name="cancel"),
    path("webhooks/<int:pk>/test/", views.send_test_event, name="webhook_test"),
]
