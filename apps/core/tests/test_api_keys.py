import hashlib

import pytest
from django.utils import timezone

from apps.core.models import ApiKey, AuditEvent
from apps.core.services import _api_key_cache, api_key_create

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_key_cache():
    _api_key_cache.clear()
    yield
    _api_key_cache.clear()


def test_key_is_shown_once_and_stored_hashed(make_user, client_for):
    user = make_user("Data Scientist")
    response = client_for(user).post("/api/v1/api-keys/", {"name": "lims"}, format="json")
    assert response.status_code == 201
    raw = response.json()["key"]
    stored = ApiKey.objects.get(pk=response.json()["id"])
    assert stored.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in str(ApiKey.objects.filter(pk=stored.pk).values().first())
    assert raw.startswith(stored.prefix + ".")
    listed = client_for(user).get("/api/v1/api-keys/").json()["results"]
    assert [k["prefix"] for k in listed] == [stored.prefix]
    assert "key" not in listed[0]
    assert AuditEvent.objects.filter(action="api_key.created", object_id=str(stored.pk)).count() == 1


def test_key_authenticates_and_records_last_use(make_user, api_client):
    user = make_user("Viewer")
    issued = api_key_create(user=user, name="pipeline")
    response = api_client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Api-Key {issued.raw_key}")
    assert response.status_code == 200
    assert response.json()["username"] == user.username
    assert response.json()["roles"] == ["Viewer"]
    issued.api_key.refresh_from_db()
    assert issued.api_key.last_used_at is not None


def test_revoked_key_no_longer_authenticates(make_user, api_client, client_for):
    user = make_user("Viewer")
    issued = api_key_create(user=user, name="old")
    header = {"HTTP_AUTHORIZATION": f"Api-Key {issued.raw_key}"}
    assert api_client.get("/api/v1/me/", **header).status_code == 200
    assert client_for(user).post(f"/api/v1/api-keys/{issued.api_key.pk}/revoke/").status_code == 200
    response = api_client.get("/api/v1/me/", **header)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


@pytest.mark.parametrize("header", ["Api-Key tsk_00000000.nope", "Api-Key garbage", "Api-Key "])
def test_unknown_keys_are_refused(api_client, header):
    response = api_client.get("/api/v1/me/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert set(response.json()["error"]) == {"code", "message", "details"}


def test_expired_key_is_refused(make_user, api_client):
    user = make_user("Viewer")
    issued = api_key_create(user=user, name="short")
    ApiKey.objects.filter(pk=issued.api_key.pk).update(expires_at=timezone.now())
    assert api_client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Api-Key {issued.raw_key}").status_code == 401


def test_cannot_revoke_someone_elses_key(make_user, client_for):
    owner = make_user("Viewer")
    other = make_user("Viewer")
    issued = api_key_create(user=owner, name="mine")
    response = client_for(other).post(f"/api/v1/api-keys/{issued.api_key.pk}/revoke/")
    assert response.status_code == 404
    issued.api_key.refresh_from_db()
    assert issued.api_key.revoked_at is None


def test_key_without_name_is_a_clear_400(make_user, client_for):
    response = client_for(make_user("Viewer")).post("/api/v1/api-keys/", {}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_failed"
    assert "name" in response.json()["error"]["message"]
    assert ApiKey.objects.count() == 0
