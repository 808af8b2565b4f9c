import pytest
from django.db import IntegrityError, InternalError, OperationalError, connection, transaction

from apps.core.models import AuditEvent
from apps.core.services import api_key_create, audit_record

pytestmark = pytest.mark.django_db


def test_a_change_writes_exactly_one_event(make_user):
    user = make_user("Viewer")
    before = AuditEvent.objects.count()
    issued = api_key_create(user=user, name="ci")
    events = AuditEvent.objects.all()[: AuditEvent.objects.count() - before]
    assert [e.action for e in events] == ["api_key.created"]
    event = events[0]
    assert event.actor == user
    assert event.object_type == "core.apikey"
    assert event.object_id == str(issued.api_key.pk)
    assert event.after["prefix"] == issued.api_key.prefix


def test_audit_event_rolls_back_with_the_change(make_user):
    user = make_user("Viewer")
    before = AuditEvent.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_record(actor=user, action="thing.changed", object_type="x", object_id=1)
        raise RuntimeError("the change failed")
    assert AuditEvent.objects.count() == before


def test_events_cannot_be_changed_or_deleted_through_the_orm(make_user):
    api_key_create(user=make_user("Viewer"), name="k")
    event = AuditEvent.objects.first()
    event.action = "tampered"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).update(action="tampered")
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).delete()


def test_the_database_refuses_updates_underneath_the_orm(make_user):
    api_key_create(user=make_user("Viewer"), name="k")
    event = AuditEvent.objects.first()
    with pytest.raises((IntegrityError, InternalError, OperationalError)), transaction.atomic(), \
            connection.cursor() as cursor:
        cursor.execute("UPDATE core_auditevent SET action = 'tampered' WHERE id = %s", [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).action == "api_key.created"


@pytest.mark.postgres
def test_postgres_refuses_deletes_too(make_user):
    api_key_create(user=make_user("Viewer"), name="k")
    event = AuditEvent.objects.first()
    with pytest.raises((IntegrityError, InternalError)), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM core_auditevent WHERE id = %s", [event.pk])
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_audit_must_be_written_inside_the_change_transaction(monkeypatch):
    from types import SimpleNamespace

    monkeypatch.setattr(transaction, "get_connection", lambda using=None: SimpleNamespace(in_atomic_block=False))
    with pytest.raises(RuntimeError, match="inside the transaction"):
        audit_record(actor=None, action="x", object_type="y", object_id=1)


def test_admin_cannot_edit_or_delete_an_event(make_user, client):
    admin = make_user("Admin", username="root", is_superuser=True)
    api_key_create(user=admin, name="k")
    event = AuditEvent.objects.first()
    client.force_login(admin)
    assert client.get("/admin/core/auditevent/").status_code == 200
    detail = client.get(f"/admin/core/auditevent/{event.pk}/change/")
    assert detail.status_code == 200
    assert b'name="_save"' not in detail.content
    response = client.post(f"/admin/core/auditevent/{event.pk}/change/", {"action": "tampered"})
    assert response.status_code == 403
    response = client.post(f"/admin/core/auditevent/{event.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    response = client.post("/admin/core/auditevent/", {"action": "delete_selected", "_selected_action": [event.pk],
                                                       "post": "yes"})
    assert AuditEvent.objects.filter(pk=event.pk, action="api_key.created").exists()
    assert client.get("/admin/core/auditevent/add/").status_code == 403


def test_audit_api_filters(make_user, client_for):
    approver = make_user("Approver")
    viewer = make_user("Viewer")
    api_key_create(user=viewer, name="a")
    api_key_create(user=approver, name="b")
    everything = client_for(approver).get("/api/v1/audit-events/", {"action": "api_key.created"}).json()
    assert everything["count"] == 2
    mine = client_for(viewer).get("/api/v1/audit-events/").json()
    assert {e["actor_username"] for e in mine["results"]} == {viewer.username}
    by_actor = client_for(approver).get("/api/v1/audit-events/", {"actor": viewer.username}).json()
    assert by_actor["count"] == 1
