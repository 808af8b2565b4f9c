import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.test import override_settings

from apps.core.choices import Role
from apps.core.errors import NotFound, PermissionDenied
from apps.core.permissions import filter_visible, grant, has_perm, make_private, require_perm
from apps.core.roles import role_matrix

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clear_throttle():
    cache.clear()
    yield
    cache.clear()


def test_roles_exist_with_their_permissions():
    names = set(Group.objects.values_list("name", flat=True))
    assert set(Role.values) <= names
    viewer = set(Group.objects.get(name=Role.VIEWER).permissions.values_list("codename", flat=True))
    approver = set(Group.objects.get(name=Role.APPROVER).permissions.values_list("codename", flat=True))
    assert "view_auditevent" in approver
    assert "view_auditevent" not in viewer
    assert not any(c.startswith(("change_", "delete_")) and c != "delete_apikey" for c in viewer)
    admin = Group.objects.get(name=Role.ADMIN).permissions.count()
    from django.contrib.auth.models import Permission

    assert admin == Permission.objects.count()


def test_matrix_inherits_lower_roles():
    matrix = role_matrix()
    assert matrix[Role.VIEWER] <= matrix[Role.DATA_SCIENTIST] <= matrix[Role.ML_ENGINEER]
    assert matrix[Role.VIEWER] <= matrix[Role.APPROVER]


def test_viewer_cannot_write(make_user):
    viewer = make_user("Viewer")
    other = make_user("Viewer")
    assert has_perm(viewer, "core.view_user")
    assert not has_perm(viewer, "core.change_user")
    assert not has_perm(viewer, "core.change_user", other)
    with pytest.raises((PermissionDenied, NotFound)):
        require_perm(viewer, "core.change_user", other)


def test_object_access_needs_capability_and_scope(make_user):
    viewer = make_user("Viewer")
    target = make_user("Viewer")
    # Capability (role) alone is not enough for an object...
    assert has_perm(viewer, "core.view_user")
    assert not has_perm(viewer, "core.view_user", target)
    with pytest.raises(NotFound):
        require_perm(viewer, "core.view_user", target)
    # ...scope alone is not either, when the role lacks the capability.
    grant(target, perms=["change_user"], user=viewer)
    assert not has_perm(viewer, "core.change_user", target)
    grant(target, perms=["view_user"], user=viewer)
    assert has_perm(viewer, "core.view_user", target)
    from apps.core.models import User

    assert list(filter_visible(viewer, User.objects.all())) == [target]


def test_group_grants_and_make_private(make_user):
    viewer = make_user("Viewer")
    target = make_user("Viewer")
    grant(target, perms=["view_user"], group=Group.objects.get(name=Role.VIEWER))
    assert has_perm(viewer, "core.view_user", target)
    make_private(target)
    assert not has_perm(viewer, "core.view_user", target)


def test_admin_role_has_everything(make_user):
    admin = make_user("Admin")
    target = make_user("Viewer")
    assert has_perm(admin, "core.change_user", target)
    from apps.core.models import User

    assert filter_visible(admin, User.objects.all()).count() == User.objects.count()


def test_inactive_user_has_nothing(make_user):
    admin = make_user("Admin")
    admin.is_active = False
    admin.save()
    assert not has_perm(admin, "core.view_user")


def test_jwt_obtain_use_and_refresh(make_user, api_client):
    make_user("Viewer", username="jwtuser")
    response = api_client.post("/api/v1/auth/token/", {"username": "jwtuser", "password": "pw-Secret-123"},
                               format="json")
    assert response.status_code == 200
    tokens = response.json()
    me = api_client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert me.status_code == 200 and me.json()["username"] == "jwtuser"
    refreshed = api_client.post("/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json")
    assert refreshed.status_code == 200 and "access" in refreshed.json()
    bad = api_client.get("/api/v1/me/", HTTP_AUTHORIZATION="Bearer not.a.token")
    assert bad.status_code == 401
    assert set(bad.json()["error"]) == {"code", "message", "details"}


def test_wrong_password_is_401(make_user, api_client):
    make_user("Viewer", username="someone")
    response = api_client.post("/api/v1/auth/token/", {"username": "someone", "password": "wrong"}, format="json")
    assert response.status_code == 401


@override_settings(LOGIN_FAILURE_LIMIT=3)
def test_failed_api_logins_are_rate_limited(make_user, api_client):
    make_user("Viewer", username="target")
    for _ in range(3):
        api_client.post("/api/v1/auth/token/", {"username": "target", "password": "wrong"}, format="json")
    response = api_client.post("/api/v1/auth/token/", {"username": "target", "password": "pw-Secret-123"},
                               format="json")
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    # Another account from the same address is not locked.
    make_user("Viewer", username="bystander")
    ok = api_client.post("/api/v1/auth/token/", {"username": "bystander", "password": "pw-Secret-123"},
                         format="json")
    assert ok.status_code == 200


@override_settings(LOGIN_FAILURE_LIMIT=2)
def test_failed_browser_logins_are_rate_limited(make_user, client):
    make_user("Viewer", username="labtech")
    for _ in range(2):
        client.post("/accounts/login/", {"username": "labtech", "password": "nope"})
    response = client.post("/accounts/login/", {"username": "labtech", "password": "pw-Secret-123"})
    assert response.status_code == 200
    assert b"Too many failed sign-in attempts" in response.content
    assert "_auth_user_id" not in client.session


def test_browser_pages_require_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_login_page_and_overview(make_user, client):
    make_user("Viewer", username="viewer1")
    assert client.get("/accounts/login/").status_code == 200
    response = client.post("/accounts/login/", {"username": "viewer1", "password": "pw-Secret-123"}, follow=True)
    assert response.status_code == 200
    assert b"Overview" in response.content
    assert b"/static/js/tables.js" in response.content


def test_plotly_is_served_locally(client):
    response = client.get("/static/vendor/plotly.min.js")
    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert b"plotly" in body[:2000].lower()
