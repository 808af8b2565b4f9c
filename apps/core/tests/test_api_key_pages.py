"""The account's API keys page: create (the secret shown once), list, revoke."""

import hashlib
import logging
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.core.models import ApiKey, AuditEvent
from apps.core.services import _api_key_cache, api_key_authenticate, api_key_create

pytestmark = pytest.mark.django_db

PAGE = "/account/api-keys/"


@pytest.fixture(autouse=True)
def _fresh_key_cache():
    _api_key_cache.clear()
    yield
    _api_key_cache.clear()


@pytest.fixture
def scientist(make_user):
    return make_user("Data Scientist", username="ana")


@pytest.fixture
def signed_in(client, scientist):
    client.force_login(scientist)
    return client


def test_page_is_linked_from_the_user_menu(signed_in):
    page = signed_in.get("/").content.decode()
    assert f'href="{PAGE}"' in page
    assert reverse("api-keys") == PAGE


def test_created_key_is_shown_once_stored_hashed_and_never_logged(signed_in, scientist, caplog):
    caplog.set_level(logging.DEBUG)
    response = signed_in.post(PAGE, {"name": "LIMS export"})
    assert response.status_code == 200
    issued = response.context["issued"]
    raw = issued.raw_key
    assert raw in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    key = ApiKey.objects.get(user=scientist)
    assert key.name == "LIMS export"
    assert key.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in str(ApiKey.objects.filter(pk=key.pk).values().first())
    event = AuditEvent.objects.get(action="api_key.created", object_id=str(key.pk))
    assert raw not in f"{event.before} {event.after} {event.message} {event.object_repr}"
    assert raw not in caplog.text
    # Never again: not on the list, not in the session.
    again = signed_in.get(PAGE).content.decode()
    assert key.prefix in again and "LIMS export" in again
    assert raw not in again and issued.raw_key.split(".", 1)[1] not in again
    assert raw not in str(dict(signed_in.session))
    assert api_key_authenticate(raw)[1].pk == key.pk


def test_key_with_an_expiry_date(signed_in, scientist):
    day = timezone.localdate() + timedelta(days=30)
    response = signed_in.post(PAGE, {"name": "pipeline", "expires_on": day.isoformat()})
    assert response.status_code == 200
    key = ApiKey.objects.get(user=scientist)
    assert timezone.localtime(key.expires_at).date() == day
    assert day.isoformat() in signed_in.get(PAGE).content.decode()


@pytest.mark.parametrize("data, field", [
    ({"name": "   "}, "name"),
    ({"name": "old", "expires_on": "2001-01-01"}, "expires_on"),
    ({"name": "today", "expires_on": "TODAY"}, "expires_on"),
    ({"name": "x", "expires_on": "not-a-date"}, "expires_on"),
])
def test_bad_input_is_refused_with_a_reason_and_creates_nothing(signed_in, data, field):
    if data.get("expires_on") == "TODAY":
        data = {**data, "expires_on": timezone.localdate().isoformat()}
    response = signed_in.post(PAGE, data)
    assert response.status_code == 400
    assert response.context["form"].errors[field]
    assert response.context["issued"] is None
    assert not ApiKey.objects.exists()


def test_list_shows_status_last_use_and_only_own_keys(signed_in, scientist, make_user):
    other = make_user("Data Scientist", username="ben")
    theirs = api_key_create(user=other, name="ben-secret-laptop").api_key
    used = api_key_create(user=scientist, name="in use")
    api_key_authenticate(used.raw_key)
    expired = api_key_create(user=scientist, name="short-lived", expires_at=timezone.now() + timedelta(seconds=1))
    ApiKey.objects.filter(pk=expired.api_key.pk).update(expires_at=timezone.now() - timedelta(days=1))
    page = signed_in.get(PAGE)
    rows = {k.name: k for k in page.context["keys"]}
    assert set(rows) == {"in use", "short-lived"}
    assert rows["in use"].last_used_at is not None and rows["in use"].status == "active"
    assert rows["short-lived"].status == "expired"
    html = page.content.decode()
    assert theirs.prefix not in html and "ben-secret-laptop" not in html
    assert "Expired" in html and "never" in html


def test_revoke_asks_first_then_revokes_on_post(signed_in, scientist):
    issued = api_key_create(user=scientist, name="old laptop")
    url = reverse("api-key-revoke", args=[issued.api_key.pk])
    confirm = signed_in.get(url)
    assert confirm.status_code == 200 and b"Revoke API key" in confirm.content
    issued.api_key.refresh_from_db()
    assert issued.api_key.revoked_at is None  # a GET changes nothing
    response = signed_in.post(url, follow=True)
    assert response.redirect_chain[-1][0] == PAGE
    assert f"API key {issued.api_key.prefix} (old laptop) revoked." in response.content.decode()
    issued.api_key.refresh_from_db()
    assert issued.api_key.revoked_at is not None
    assert AuditEvent.objects.filter(action="api_key.revoked", object_id=str(issued.api_key.pk),
                                     actor=scientist).count() == 1
    assert api_key_authenticate(issued.raw_key) is None
    # Revoking twice is harmless and writes no second event.
    signed_in.post(url)
    assert AuditEvent.objects.filter(action="api_key.revoked").count() == 1


@pytest.mark.parametrize("role", ["Data Scientist", "Admin"])
def test_nobody_sees_or_revokes_someone_elses_key_here(client, make_user, role):
    owner = make_user("Data Scientist", username="owner")
    issued = api_key_create(user=owner, name="lims")
    intruder = make_user(role, username="intruder", is_superuser=role == "Admin")
    client.force_login(intruder)
    url = reverse("api-key-revoke", args=[issued.api_key.pk])
    assert client.get(url).status_code == 404
    assert client.post(url).status_code == 404
    assert client.post(reverse("api-key-revoke", args=[999999])).status_code == 404
    issued.api_key.refresh_from_db()
    assert issued.api_key.revoked_at is None
    assert not AuditEvent.objects.filter(action="api_key.revoked").exists()
    assert issued.api_key.prefix not in client.get(PAGE).content.decode()


def test_revoke_needs_the_csrf_token(scientist):
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(scientist)
    issued = api_key_create(user=scientist, name="lims")
    assert csrf_client.post(reverse("api-key-revoke", args=[issued.api_key.pk])).status_code == 403
    assert csrf_client.post(PAGE, {"name": "forged"}).status_code == 403
    issued.api_key.refresh_from_db()
    assert issued.api_key.revoked_at is None
    assert ApiKey.objects.count() == 1


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get(PAGE)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
