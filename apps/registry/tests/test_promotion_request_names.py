"""One name for promotion requests: the primary path and its MLflow-style
alias answer alike, the alias is marked as such in the schema, the events
are spelled like the audit actions, and subscriptions to the old event names
are carried over by the data migration."""

import importlib

import pytest
from django.db import transaction

from apps.core import events
from apps.core.models import AuditEvent, WebhookDelivery, WebhookSubscription
from apps.registry import services
from apps.registry.stages import stages_servable_in

pytestmark = pytest.mark.django_db

VERSION_PATH = "/api/v1/models/sample-qc/versions/{n}/{name}/"


@pytest.fixture
def two_versions(people, make_run, registered):
    return [services.model_version_register(registered_model=registered, run=make_run(), actor=people.scientist)
            for _ in range(2)]


@pytest.mark.parametrize("name", ["promotion-requests", "transition-requests"])
def test_both_paths_serve_every_promotion_request_action(name, people, client_for, two_versions):
    sci, qa = client_for(people.scientist), client_for(people.qa)
    created = sci.post(VERSION_PATH.format(n=1, name=name), {"stage": "staging", "justification": "canary"},
                       format="json")
    assert created.status_code == 201, created.content
    first = created.json()
    assert [r["id"] for r in sci.get(VERSION_PATH.format(n=1, name=name)).json()] == [first["id"]]
    assert sci.get(f"/api/v1/{name}/{first['id']}/").json()["target_stage"] == "staging"
    assert [r["id"] for r in qa.get(f"/api/v1/{name}/?status=pending").json()["results"]] == [first["id"]]
    approved = qa.post(f"/api/v1/{name}/{first['id']}/approve/", {"comment": "fine"}, format="json")
    assert approved.status_code == 200 and approved.json()["status"] == "approved"

    second = sci.post(VERSION_PATH.format(n=2, name=name), {"stage": "staging", "justification": "x"},
                      format="json").json()
    rejected = qa.post(f"/api/v1/{name}/{second['id']}/reject/", {"comment": "no"}, format="json")
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    third = sci.post(VERSION_PATH.format(n=2, name=name), {"stage": "staging", "justification": "again"},
                     format="json").json()
    cancelled = sci.post(f"/api/v1/{name}/{third['id']}/cancel/", format="json")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert sci.get(f"/api/v1/{name}/999999/").status_code == 404


def test_the_alias_and_the_primary_path_return_the_same_shapes(people, client_for, two_versions):
    sci = client_for(people.scientist)
    created = sci.post(VERSION_PATH.format(n=1, name="promotion-requests"),
                       {"stage": "staging", "justification": "canary"}, format="json").json()
    primary = sci.get(f"/api/v1/promotion-requests/{created['id']}/").json()
    assert sci.get(f"/api/v1/transition-requests/{created['id']}/").json() == primary
    assert sci.get("/api/v1/transition-requests/").json() == sci.get("/api/v1/promotion-requests/").json()


def test_the_schema_marks_the_alias_and_keeps_operation_ids_unique(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    operations = [(path, method, operation) for path, item in schema["paths"].items()
                  for method, operation in item.items() if method in {"get", "post", "put", "patch", "delete"}]
    ids = [operation["operationId"] for *_, operation in operations]
    assert len(ids) == len(set(ids))
    alias = [(path, op) for path, _m, op in operations if "transition-requests" in path]
    primary = [(path, op) for path, _m, op in operations if "promotion-requests" in path]
    assert len(alias) == len(primary) == 7  # nested GET/POST, list, retrieve, approve, reject, cancel
    assert all("MLflow-style alias" in op.get("description", "") for _p, op in alias)
    assert not any("alias" in op.get("description", "") for _p, op in primary)


def test_events_are_spelled_like_the_audit_actions(people, make_run, registered, django_capture_on_commit_callbacks):
    version = services.model_version_register(registered_model=registered, run=make_run(), actor=people.scientist)
    published = []

    def seen(event, payload):
        published.append(event)

    events.subscribe("*", seen)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            request = services.promotion_request_create(version=version, actor=people.scientist,
                                                        target_stage="staging", justification="try")
        with django_capture_on_commit_callbacks(execute=True):
            services.promotion_request_cancel(promotion_request=request, actor=people.scientist)
    finally:
        events.unsubscribe("*", seen)
    actions = set(AuditEvent.objects.filter(action__startswith="promotion_request.").values_list("action", flat=True))
    assert actions == {"promotion_request.created", "promotion_request.cancelled"}
    assert [e for e in published if e.startswith("registry.promotion_request.")] == [
        "registry.promotion_request.created", "registry.promotion_request.cancelled"]
    assert {e for e in published if e.startswith("registry.promotion")} == {f"registry.{a}" for a in actions}


class _AppsWithSubscriptionsInCore:
    def get_model(self, app_label, model_name):
        assert (app_label, model_name) == ("registry", "WebhookSubscription")
        return WebhookSubscription


def test_subscriptions_to_the_old_event_names_are_rewritten(people, make_run, registered):
    migration = importlib.import_module("apps.registry.migrations.0006_promotion_request_event_names")
    # The migration ran on the registry's table; the rows live in core now (same fields).
    fake_apps = _AppsWithSubscriptionsInCore()
    old = WebhookSubscription.objects.create(
        name="old", url="https://hooks.example.org/a", secret="s" * 32, created_by=people.admin,
        events=["registry.alias.moved", "registry.promotion.approved", "registry.promotion.requested"])
    every = WebhookSubscription.objects.create(name="all", url="https://hooks.example.org/b", secret="s" * 32,
                                               created_by=people.admin, events=[])
    migration.forwards(fake_apps, None)
    old.refresh_from_db()
    every.refresh_from_db()
    assert old.events == ["registry.alias.moved", "registry.promotion_request.approved",
                          "registry.promotion_request.created"]
    assert every.events == []

    version = services.model_version_register(registered_model=registered, run=make_run(), actor=people.scientist)
    with transaction.atomic():
        services.promotion_request_create(version=version, actor=people.scientist, target_stage="staging",
                                          justification="try")
    assert WebhookDelivery.objects.filter(subscription=old, event="registry.promotion_request.created").exists()

    migration.backwards(fake_apps, None)
    old.refresh_from_db()
    assert old.events == ["registry.alias.moved", "registry.promotion.approved", "registry.promotion.requested"]


def test_one_rule_says_which_stages_an_environment_serves():
    assert stages_servable_in("production") == ("production",)
    assert stages_servable_in("staging") == ("staging", "production")
    with pytest.raises(ValueError):
        stages_servable_in("qa")
