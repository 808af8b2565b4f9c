"""The inbox: sending notifications (with email by preference), reading and
marking them in the browser and through the API, each user their own only."""

import pytest
from django.core import mail
from django.test import Client

from apps.core import services
from apps.core.models import AuditEvent, Notification, NotificationPreference

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(make_user):
    return make_user("Data Scientist", username="alice", email="alice@lab.example")


@pytest.fixture
def bob(make_user):
    return make_user("Approver", username="bob", email="bob@lab.example")


def send(*users, text="sample-qc v2 waits for your approval.", url="/registry/approvals/"):
    return services.notifications_send(recipients=list(users), verb="registry.promotion_request.created", text=text,
                                       url=url, object_type="registry.promotionrequest", object_id=7)


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def email_on(user, on=True):
    services.notification_preference_set(actor=user, email=on)


# --- Sending and email ----------------------------------------------------------------

def test_send_creates_one_notification_per_active_recipient(alice, bob, make_user):
    gone = make_user("Viewer", username="gone")
    gone.is_active = False
    gone.save()
    created = send(alice, bob, alice, gone, None)
    assert sorted(n.recipient.username for n in created) == ["alice", "bob"]
    stored = Notification.objects.get(recipient=alice)
    assert (stored.verb, stored.object_type, stored.object_id, stored.url, stored.read_at) == (
        "registry.promotion_request.created", "registry.promotionrequest", "7", "/registry/approvals/", None)


def test_email_is_sent_when_the_preference_is_on_and_not_when_off(alice, bob, settings):
    settings.SITE_URL = "https://mlops.lab.example"
    email_on(alice)
    email_on(bob, on=False)
    send(alice, bob)
    assert [m.to for m in mail.outbox] == [["alice@lab.example"]]
    message = mail.outbox[0]
    assert message.subject == "[TracSeq MLOps] sample-qc v2 waits for your approval."
    assert "sample-qc v2 waits for your approval." in message.body
    assert "https://mlops.lab.example/registry/approvals/" in message.body


def test_no_email_by_default_nor_without_an_address(make_user, alice):
    nomail = make_user("Viewer", username="nomail")
    email_on(nomail)
    send(alice, nomail)
    assert mail.outbox == []
    assert Notification.objects.count() == 2


def test_a_mail_outage_is_logged_and_keeps_the_notifications(alice, monkeypatch, caplog):
    email_on(alice)

    class Broken:
        def send_messages(self, messages):
            raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr(services, "get_connection", Broken)
    send(alice)
    assert Notification.objects.filter(recipient=alice).count() == 1
    assert "notification email" in caplog.text


def test_preference_change_is_audited(alice):
    email_on(alice)
    email_on(alice)  # no change, no second event
    email_on(alice, on=False)
    events = AuditEvent.objects.filter(action="notification_preference.updated").order_by("id")
    assert [(e.before, e.after) for e in events] == [({"email": False}, {"email": True}),
                                                     ({"email": True}, {"email": False})]
    assert NotificationPreference.objects.get(user=alice).email is False


# --- The inbox page ----------------------------------------------------------------------

def test_inbox_page_lists_own_notifications_and_marks_all_read(alice, bob):
    send(alice, text="for alice")
    send(bob, text="for bob")
    client = signed_in(alice)
    page = client.get("/inbox/").content.decode()
    assert "for alice" in page and "for bob" not in page
    assert 'id="inbox-bell"' in page and 'data-unread="1"' in page
    response = client.post("/inbox/read-all/")
    assert response.status_code == 302
    assert not Notification.objects.filter(recipient=alice, read_at__isnull=True).exists()
    assert Notification.objects.get(recipient=bob).read_at is None
    page = client.get("/inbox/").content.decode()
    assert "data-unread" not in page and "1 notification marked read." in page


def test_inbox_marks_one_read_and_hides_other_peoples(alice, bob):
    mine, = send(alice)
    theirs, = send(bob)
    client = signed_in(alice)
    assert client.post(f"/inbox/{theirs.pk}/read/").status_code == 404
    assert client.post(f"/inbox/{mine.pk}/read/").status_code == 302
    theirs.refresh_from_db()
    mine.refresh_from_db()
    assert mine.read_at is not None and theirs.read_at is None
    assert client.get(f"/inbox/{mine.pk}/read/").status_code == 405


def test_inbox_posts_need_the_csrf_token(alice):
    send(alice)
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post("/inbox/read-all/").status_code == 403
    assert client.post("/inbox/preferences/", {"email": "on"}).status_code == 403
    assert Notification.objects.get(recipient=alice).read_at is None
    assert not NotificationPreference.objects.filter(user=alice).exists()


def test_inbox_saves_the_email_preference(alice):
    client = signed_in(alice)
    client.post("/inbox/preferences/", {"email": "on"})
    assert NotificationPreference.objects.get(user=alice).email is True
    assert 'id="id_email" checked' in client.get("/inbox/").content.decode()
    client.post("/inbox/preferences/", {})
    assert NotificationPreference.objects.get(user=alice).email is False


def test_inbox_needs_sign_in(client):
    response = client.get("/inbox/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


# --- API ---------------------------------------------------------------------------------

def test_api_lists_only_the_callers_notifications(alice, bob, client_for):
    send(alice, text="a1")
    send(alice, text="a2")
    send(bob, text="b1")
    body = client_for(alice).get("/api/v1/notifications/").json()
    assert [n["text"] for n in body["results"]] == ["a2", "a1"]
    assert set(body["results"][0]) == {"id", "verb", "text", "object_type", "object_id", "url", "created_at",
                                       "read_at", "is_read"}


def test_api_read_and_read_all_touch_only_own(alice, bob, client_for):
    first, = send(alice)
    second, = send(alice)
    theirs, = send(bob)
    client = client_for(alice)
    other = client.post(f"/api/v1/notifications/{theirs.pk}/read/")
    assert other.status_code == 404 and other.json()["error"]["code"] == "not_found"
    assert client.get(f"/api/v1/notifications/{theirs.pk}/").status_code == 404
    response = client.post(f"/api/v1/notifications/{first.pk}/read/")
    assert response.status_code == 200 and response.json()["is_read"] is True
    unread = client.get("/api/v1/notifications/?unread=true").json()["results"]
    assert [n["id"] for n in unread] == [second.pk]
    assert client.post("/api/v1/notifications/read-all/").json() == {"marked": 1}
    assert client.post("/api/v1/notifications/read-all/").json() == {"marked": 0}
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_api_refuses_a_bad_filter_and_anonymous_callers(alice, client_for, api_client):
    response = client_for(alice).get("/api/v1/notifications/?unread=maybe")
    assert response.status_code == 400 and response.json()["error"]["code"] == "validation_failed"
    assert api_client.get("/api/v1/notifications/").status_code == 401

