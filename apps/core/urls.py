from django.contrib.auth import views as auth_views
from django.urls import path

from apps.core import views

urlpatterns = [
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/api-keys/", views.api_key_list, name="api-keys"),
    path("account/api-keys/<int:pk>/revoke/", views.api_key_revoke, name="api-key-revoke"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("inbox/", views.inbox, name="inbox"),
    path("inbox/read-all/", views.inbox_read_all, name="inbox-read-all"),
    path("inbox/preferences/", views.inbox_preferences, name="inbox-preferences"),
    path("inbox/<int:pk>/read/", views.inbox_read, name="inbox-read"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics, name="metrics"),
]
