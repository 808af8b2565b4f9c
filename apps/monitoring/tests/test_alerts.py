"""Alert rules on the database: evaluation with a fake metric source,
transitions and audit, silences, grouped email, webhooks, default rules,
and the API's permissions and error shape."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from apps.core.models import AuditEvent, NotificationPreference, WebhookDelivery, WebhookSubscription
from apps.monitoring.alerts import selectors, services
from apps.monitoring.alerts.models import Alert, AlertRule, AlertTransition
from apps.serving.services import endpoints as endpoint_services

pytestmark = pytest.mark.django_db


@pytest.fixture
def engineer(make_user):
    user = make_user("ML Engineer", username="eng", email="eng@example.org")
    NotificationPreference.objects.create(user=user, email=True)
    return user


@pytest.fixture
def endpoint(engineer):
    return endpoint_services.endpoint_create(actor=engineer, slug="qc-alerts")


@pytest.fixture
def rule(engineer, endpoint):
    return services.alert_rule_create(actor=engineer, endpoint=endpoint, name="errors", metric="error_rate",
                                      comparison=">", warning_threshold=0.05, critical_threshold=0.10,
                                      for_seconds=120, keep_firing_for_seconds=0)


class FakeMetrics:
    """A metric source the test sets by hand."""

    def __init__(self):
        self.values = {}

    def __call__(self, *, endpoint, deployment, metric, window_seconds, now):
        return self.values.get((endpoint.slug, metric))


def evaluate_minutes(metrics, values, *, start):
    """One evaluation a minute, the metric at each of ``values``."""
    results = []
    for minute, value in enumerate(values):
        metrics.values[("qc-alerts", "error_rate")] = value
        results.append(services.alert_rules_evaluate(now=start + timedelta(minutes=minute), provider=metrics))
    return results


def test_evaluation_moves_the_alert_through_pending_firing_resolved_with_transitions_and_audit(rule):
    metrics, start = FakeMetrics(), timezone.now()
    evaluate_minutes(metrics, [0.2, 0.2, 0.2, 0.01], start=start)
    alert = Alert.objects.get(rule=rule)
    assert alert.state == "resolved" and alert.value == 0.01
    steps = list(AlertTransition.objects.filter(alert=alert).order_by("at").values_list("from_state", "to_state"))
    assert steps == [("inactive", "pending"), ("pending", "firing"), ("firing", "resolved")]
    actions = list(AuditEvent.objects.filter(object_type="monitoring.alert").order_by("id")
                   .values_list("action", flat=True))
    assert actions == ["alert.pending", "alert.firing", "alert.resolved"]


def test_a_rule_evaluated_less_than_a_minute_ago_is_not_due(rule):
    metrics, start = FakeMetrics(), timezone.now()
    metrics.values[("qc-alerts", "error_rate")] = 0.2
    assert services.alert_rules_evaluate(now=start, provider=metrics)["evaluated"] == 1
    assert services.alert_rules_evaluate(now=start + timedelta(seconds=20), provider=metrics)["evaluated"] == 0


def test_firing_and_resolving_become_signed_webhook_deliveries(engineer, rule):
    hook = WebhookSubscription.objects.create(name="pager", url="https://hooks.example.org/alerts",
                                              events=["alert.*"], created_by=engineer, secret="s" * 32)
    evaluate_minutes(FakeMetrics(), [0.2, 0.2, 0.2, 0.0], start=timezone.now())
    deliveries = list(WebhookDelivery.objects.filter(subscription=hook).order_by("id"))
    assert [d.event for d in deliveries] == ["alert.firing", "alert.resolved"]
    assert '"severity": "critical"' in deliveries[0].body or '"severity":"critical"' in deliveries[0].body


def test_one_grouped_email_per_endpoint_and_window(engineer, endpoint, rule):
    services.alert_rule_create(actor=engineer, endpoint=endpoint, name="errors too", metric="error_rate",
                               warning_threshold=0.05, for_seconds=0)
    metrics, start = FakeMetrics(), timezone.now()
    evaluate_minutes(metrics, [0.2, 0.2, 0.2], start=start)
    # "errors too" fired at minute 0 (one email), "errors" at minute 2: inside the window, so it waits.
    assert len(mail.outbox) == 1 and "errors too" in mail.outbox[0].body
    assert mail.outbox[0].to == ["eng@example.org"]
    evaluate_minutes(metrics, [0.2], start=start + timedelta(minutes=5))
    assert len(mail.outbox) == 2
    assert "[FIRING] errors (critical)" in mail.outbox[1].body and "errors too" not in mail.outbox[1].body


def test_silenced_alerts_notify_nobody_but_still_change_state(engineer, endpoint, rule):
    hook = WebhookSubscription.objects.create(name="pager", url="https://hooks.example.org/alerts",
                                              events=["alert.*"], created_by=engineer, secret="s" * 32)
    start = timezone.now()
    services.silence_create(actor=engineer, endpoint=endpoint, ends_at=start + timedelta(hours=1),
                            reason="maintenance", starts_at=start - timedelta(minutes=1))
    evaluate_minutes(FakeMetrics(), [0.2, 0.2, 0.2], start=start)
    assert Alert.objects.get(rule=rule).state == "firing"
    assert mail.outbox == [] and not WebhookDelivery.objects.filter(subscription=hook).exists()
    assert AlertTransition.objects.filter(alert__rule=rule, to_state="firing", silenced=True).exists()


def test_endpoint_health_follows_the_firing_alerts(endpoint, rule):
    assert selectors.endpoint_health(endpoint=endpoint) == "healthy"
    evaluate_minutes(FakeMetrics(), [0.07, 0.07, 0.07], start=timezone.now())
    assert selectors.endpoint_health(endpoint=endpoint) == "warning"


def test_default_rules_are_created_once(engineer, endpoint):
    first = services.alert_rules_ensure_defaults(endpoint=endpoint, actor=None)
    assert {r.metric for r in first} == {"error_rate", "latency_p95", "accuracy", "dataset_drift"}
    assert services.alert_rules_ensure_defaults(endpoint=endpoint, actor=None) == []
    error_rule = AlertRule.objects.get(endpoint=endpoint, metric="error_rate")
    assert (error_rule.warning_threshold, error_rule.critical_threshold) == (0.05, 0.10)


def test_a_new_endpoint_announces_itself_for_its_default_rules(engineer, django_capture_on_commit_callbacks,
                                                               monkeypatch):
    from apps.monitoring import tasks

    queued = []
    monkeypatch.setattr(tasks.alert_rules_ensure_defaults, "delay", queued.append)
    with django_capture_on_commit_callbacks(execute=True):
        created = endpoint_services.endpoint_create(actor=engineer, slug="fresh")
    assert queued == [created.pk]
    assert tasks.alert_rules_ensure_defaults(created.pk) == 4


# --- API ---------------------------------------------------------------------------

RULE = {"endpoint": "qc-alerts", "name": "slow", "metric": "latency_p95", "comparison": ">",
        "warning_threshold": 200, "critical_threshold": 500, "window_seconds": 300}


def test_the_api_creates_lists_and_changes_rules(client_for, engineer, endpoint):
    api = client_for(engineer)
    created = api.post("/api/v1/alert-rules/", RULE, format="json")
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    assert api.get("/api/v1/alert-rules/").json()["results"][0]["name"] == "slow"
    changed = api.patch(f"/api/v1/alert-rules/{pk}/", {"critical_threshold": 800}, format="json")
    assert changed.status_code == 200 and changed.json()["critical_threshold"] == 800
    assert AuditEvent.objects.filter(action="alert_rule.updated", object_id=str(pk)).exists()


@pytest.mark.parametrize(("change", "field"), [
    ({"metric": "vibes"}, "metric"),
    ({"warning_threshold": 500, "critical_threshold": 200}, "critical_threshold"),
    ({"window_seconds": -5}, "window_seconds"),
    ({"for_seconds": -1}, "for_seconds"),
])
def test_bad_rules_get_the_error_shape_naming_the_field(client_for, engineer, endpoint, change, field):
    response = client_for(engineer).post("/api/v1/alert-rules/", {**RULE, **change}, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]["fields"]
    assert not AlertRule.objects.exists()


def test_someone_elses_endpoint_is_a_404_and_a_viewer_cannot_change(client_for, make_user, engineer, endpoint,
                                                                    rule):
    from apps.core.permissions import make_private

    viewer = make_user("Viewer", username="looker")
    assert client_for(viewer).get(f"/api/v1/alert-rules/{rule.pk}/").status_code == 200
    assert client_for(viewer).patch(f"/api/v1/alert-rules/{rule.pk}/", {"enabled": False},
                                    format="json").status_code == 403
    other = make_user("ML Engineer", username="other")
    make_private(endpoint)
    api = client_for(other)
    assert api.get(f"/api/v1/alert-rules/{rule.pk}/").status_code == 404
    assert api.post("/api/v1/alert-rules/", RULE, format="json").status_code == 404
    assert api.post(f"/api/v1/alerts/{rule.alert.pk}/acknowledge/").status_code == 404
    assert api.get("/api/v1/alerts/").json()["results"] == []


def test_acknowledging_and_silencing_through_the_api(client_for, engineer, endpoint, rule):
    evaluate_minutes(FakeMetrics(), [0.2, 0.2, 0.2], start=timezone.now())
    api = client_for(engineer)
    firing = api.get("/api/v1/alerts/", {"state": "firing", "endpoint": "qc-alerts"}).json()["results"]
    assert [a["rule"] for a in firing] == ["errors"]
    acked = api.post(f"/api/v1/alerts/{firing[0]['id']}/acknowledge/")
    assert acked.status_code == 200 and acked.json()["acked_by"] == "eng"
    assert api.post(f"/api/v1/alerts/{firing[0]['id']}/acknowledge/").status_code == 409
    ends = (timezone.now() + timedelta(hours=2)).isoformat()
    silence = api.post("/api/v1/silences/", {"endpoint": "qc-alerts", "rule_id": rule.pk, "ends_at": ends,
                                             "reason": "deploying a fix"}, format="json")
    assert silence.status_code == 201, silence.content
    expired = api.post(f"/api/v1/silences/{silence.json()['id']}/expire/")
    assert expired.status_code == 200
    assert api.post(f"/api/v1/silences/{silence.json()['id']}/expire/").status_code == 409
    assert {"alert.acknowledged", "silence.created", "silence.expired"} <= set(
        AuditEvent.objects.values_list("action", flat=True))


# --- Drift ---------------------------------------------------------------------------

def test_drift_found_on_an_endpoint_is_published_and_read_by_the_drift_metric(engineer, endpoint):
    from apps.datasets.models import Dataset, DatasetVersion
    from apps.monitoring import services as monitoring
    from apps.monitoring.alerts import values
    from apps.monitoring.models import DriftReport

    hook = WebhookSubscription.objects.create(name="drift", url="https://hooks.example.org/drift",
                                              events=["drift.detected"], created_by=engineer, secret="s" * 32)
    dataset = Dataset.objects.create(name="subs", owner=engineer, target_column="qc_pass")
    version = DatasetVersion.objects.create(dataset=dataset, version=1, file="datasets/x.csv",
                                            original_filename="x.csv", file_format="csv", sha256="0" * 64,
                                            size_bytes=1, created_by=engineer)
    now = timezone.now()
    assert values.metric_value(endpoint=endpoint, metric="dataset_drift", window_seconds=60, now=now) is None
    report = DriftReport.objects.create(owner=engineer, reference_version=version, endpoint_slug=endpoint.slug,
                                        status="running", window_start=now - timedelta(hours=1), window_end=now)
    monitoring._finish(report.pk, result={"dataset_drift": True})
    assert list(WebhookDelivery.objects.filter(subscription=hook).values_list("event", flat=True)) == [
        "drift.detected"]
    assert values.metric_value(endpoint=endpoint, metric="dataset_drift", window_seconds=60, now=now) == 1.0


def test_the_fallback_metrics_read_servings_window_stats(endpoint):
    from apps.monitoring.alerts import values

    now = timezone.now()
    assert values.metric_value(endpoint=endpoint, metric="request_rate", window_seconds=60, now=now) == 0.0
    assert values.metric_value(endpoint=endpoint, metric="error_rate", window_seconds=60, now=now) is None


def test_list_endpoints_do_not_query_per_row(client_for, engineer, endpoint):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    api = client_for(engineer)

    def queries(path):
        with CaptureQueriesContext(connection) as ctx:
            assert api.get(path).status_code == 200
        return len(ctx.captured_queries)

    services.alert_rules_ensure_defaults(endpoint=endpoint, actor=None)
    services.silence_create(actor=engineer, endpoint=endpoint, ends_at=timezone.now() + timedelta(hours=1),
                            reason="one")
    paths = ("/api/v1/alert-rules/", "/api/v1/alerts/", "/api/v1/silences/")
    [queries(p) for p in paths]  # warm the content-type cache
    few = [queries(p) for p in paths]
    other = endpoint_services.endpoint_create(actor=engineer, slug="qc-more")
    services.alert_rules_ensure_defaults(endpoint=other, actor=None)
    services.silence_create(actor=engineer, endpoint=other, ends_at=timezone.now() + timedelta(hours=1),
                            reason="two")
    assert [queries(p) for p in paths] == few


def test_the_command_gives_existing_endpoints_their_default_rules(endpoint):
    from io import StringIO

    from django.core.management import CommandError, call_command

    out = StringIO()
    call_command("alert_rules_ensure_defaults", stdout=out)
    assert "qc-alerts: 4 rule(s) created" in out.getvalue()
    call_command("alert_rules_ensure_defaults", "qc-alerts", stdout=out)
    assert AlertRule.objects.filter(endpoint=endpoint).count() == 4
    with pytest.raises(CommandError):
        call_command("alert_rules_ensure_defaults", "nope")
