"""Drift reports of an endpoint's logged inputs over a window, against the
training data of the model version serving it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.models import AuditEvent
from apps.monitoring import services, tasks
from apps.monitoring.models import DriftReport

from .conftest import make_version

URL = "/api/v1/drift-reports/"
SLUG = "sample-qc"


@pytest.fixture
def engineer(make_user):
    return make_user("ML Engineer", username="eng")


def _signature(version) -> dict:
    from apps.datasets.features import default_feature_spec, input_signature

    spec = default_feature_spec(schema=version.schema, target="qc_pass")
    return input_signature(spec=spec, schema=version.schema, target="qc_pass", task="classification")


def _model_version(owner, *, trained_on=None, signature=None, name="sample-qc"):
    """A registered version trained on ``trained_on`` (the lineage the registry records)."""
    from apps.core.permissions import grant_on_create
    from apps.registry.models import ModelVersion, RegisteredModel

    registered, created = RegisteredModel.objects.get_or_create(name=name, defaults={"owner": owner})
    if created:
        grant_on_create(registered, owner=owner)
    number = registered.versions.count() + 1
    return ModelVersion.objects.create(
        registered_model=registered, version=number, artifact=f"tests/{name}/v{number}.skops", sha256="0" * 64,
        signature=signature if signature is not None else _signature(trained_on), dataset_version=trained_on,
        created_by=owner)


def _endpoint(owner, version, *, slug=SLUG):
    from apps.serving.models import Deployment
    from apps.serving.services import endpoint_create

    endpoint = endpoint_create(actor=owner, slug=slug, name=slug, environment="production")
    deployment = Deployment.objects.create(endpoint=endpoint, model_version=version, traffic_weight=1.0,
                                           status="healthy", created_by=owner)
    return endpoint, deployment


def _log(deployment, frame, *, minutes_ago: float = 10, batch: int = 20, status_code: int = 200):
    """Log ``frame``'s rows as requests of ``batch`` instances, as the predict path does."""
    from apps.serving.models import PredictionLog
    from apps.serving.tests.factories import json_records

    records = json_records(frame)
    when = timezone.now() - timedelta(minutes=minutes_ago)
    PredictionLog.objects.bulk_create([
        PredictionLog(endpoint=deployment.endpoint, deployment=deployment, model_version=deployment.model_version,
                      request_id=f"r{minutes_ago}-{i}", n_instances=len(records[i:i + batch]),
                      inputs=records[i:i + batch], latency_ms=1.0, status_code=status_code,
                      created_at=when + timedelta(seconds=i // batch))
        for i in range(0, len(records), batch)])


def _submissions(*, rows, seed, scenario="reference"):
    from apps.datasets.generator import generate_submissions

    return generate_submissions(rows=rows, seed=seed, scenario=scenario).drop(columns=["qc_pass"])


@pytest.fixture
def served(engineer, reference_version):
    version = _model_version(engineer, trained_on=reference_version)
    endpoint, deployment = _endpoint(engineer, version)
    return endpoint, deployment, version


def _run(api, **body):
    response = api.post(URL, {"endpoint": SLUG, **body}, format="json")
    assert response.status_code == 201, response.content
    assert response.json() == {"id": response.json()["id"], "status": "queued"}
    assert tasks.drift_report_compute(response.json()["id"]) == "done"
    return api.get(f"{URL}{response.json()['id']}/").json()


def test_shifted_traffic_drifts_against_the_training_data(api, served, reference_version):
    _, deployment, version = served
    _log(deployment, _submissions(rows=900, seed=21, scenario="freezer_failure"))
    report = _run(api)
    assert report["endpoint"] == SLUG and report["reference_version_id"] == reference_version.pk
    assert report["current_version_id"] is None
    assert report["model_version"] == {"id": version.pk, "name": str(version)}
    assert report["current_rows"] == 900
    until = timezone.datetime.fromisoformat(report["until"])
    assert timezone.datetime.fromisoformat(report["since"]) == until - timedelta(hours=1)
    columns = {c["name"]: c for c in report["columns"]}
    # Tested: the signature's inputs; the target and the identifier are not inputs.
    assert set(columns) == {i["name"] for i in version.signature["inputs"]} & set(columns)
    assert "qc_pass" not in columns and "sample_id" not in columns and report["target"] is None
    assert columns["rin"]["drifted"] and columns["rin"]["current_count"] > 0
    assert report["dataset_drift"] is not None
    audit = AuditEvent.objects.get(action="drift_report.created", object_id=str(report["id"]))
    assert audit.after["endpoint"] == SLUG and audit.after["model_version"] == version.pk


def test_unshifted_traffic_does_not_drift(api, served):
    _, deployment, _ = served
    _log(deployment, _submissions(rows=900, seed=22))
    report = _run(api)
    assert not report["dataset_drift"]
    assert not any(c["drifted"] for c in report["columns"] if c["name"] in ("rin", "a260_280", "concentration_ng_ul"))


def test_the_window_selects_the_logged_inputs(api, served):
    """Only the window's requests count, invalid requests included, non-object instances not."""
    from apps.serving.models import PredictionLog

    _, deployment, _ = served
    _log(deployment, _submissions(rows=300, seed=23, scenario="freezer_failure"), minutes_ago=60 * 5)
    _log(deployment, _submissions(rows=300, seed=24), minutes_ago=30)
    _log(deployment, _submissions(rows=40, seed=25), minutes_ago=20, status_code=422)
    PredictionLog.objects.create(endpoint=deployment.endpoint, deployment=deployment,
                                 model_version=deployment.model_version, request_id="junk", inputs=[1, "x"],
                                 latency_ms=1.0, status_code=422, created_at=timezone.now() - timedelta(minutes=5))
    recent = _run(api)
    assert recent["current_rows"] == 340 and not recent["columns"][0]["current_count"] > 340
    since = (timezone.now() - timedelta(hours=6)).isoformat()
    until = (timezone.now() - timedelta(hours=2)).isoformat()
    older = _run(api, since=since, until=until)
    assert older["current_rows"] == 300
    assert {c["name"]: c for c in older["columns"]}["rin"]["drifted"]


def test_an_explicit_reference_overrides_the_training_data(api, scientist, served):
    _, deployment, _ = served
    _log(deployment, _submissions(rows=300, seed=26))
    other = make_version(scientist, rows=400, seed=9, scenario="freezer_failure", name="other-submissions")
    report = _run(api, reference_version_id=other.pk, columns=["rin"])
    assert report["reference_version_id"] == other.pk
    assert [c["name"] for c in report["columns"]] == ["rin"]


def test_the_training_data_is_found_through_the_run(api, engineer, scientist, reference_version):
    """A version registered from a run without its own dataset link: the run's dataset version."""
    from apps.experiments.models import Experiment, Run

    experiment = Experiment.objects.create(name="qc", owner=engineer)
    run = Run.objects.create(experiment=experiment, user=engineer, dataset_version=reference_version,
                             start_time=timezone.now())
    version = _model_version(engineer, signature=_signature(reference_version))
    version.source_run = run
    version.save(update_fields=["source_run"])
    _, deployment = _endpoint(engineer, version)
    _log(deployment, _submissions(rows=200, seed=27))
    assert _run(api)["reference_version_id"] == reference_version.pk


@pytest.mark.parametrize(("body", "field"), [
    ({"since": "yesterday"}, "since"),
    ({"until": "2026-13-40T00:00:00Z"}, "until"),
    ({"since": "2026-03-02T00:00:00Z", "until": "2026-03-01T00:00:00Z"}, "since"),
    ({"since": "2026-01-01T00:00:00Z", "until": "2026-03-01T00:00:00Z"}, "since"),
])
def test_bad_windows_are_refused_naming_the_field(api, served, body, field):
    response = api.post(URL, {"endpoint": SLUG, **body}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["details"]["field"] == field
    assert not DriftReport.objects.exists()


@pytest.mark.parametrize(("body", "field"), [
    ({"endpoint": SLUG, "current_version_id": 1}, "current_version_id"),
    ({"since": "2026-03-01T00:00:00Z", "reference_version_id": 1, "current_version_id": 2}, "since"),
    ({"reference_version_id": 1}, "current_version_id"),
])
def test_mixed_modes_are_refused(api, body, field):
    response = api.post(URL, body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["details"]["fields"]


def test_an_empty_window_is_refused_at_creation(api, served):
    _, deployment, _ = served
    _log(deployment, _submissions(rows=50, seed=28), minutes_ago=60 * 3)
    response = api.post(URL, {"endpoint": SLUG}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "empty_window"
    assert not DriftReport.objects.exists()


def test_a_window_with_no_input_object_fails_with_the_reason(scientist, served):
    from apps.serving.models import PredictionLog

    _, deployment, _ = served
    PredictionLog.objects.create(endpoint=deployment.endpoint, deployment=deployment,
                                 model_version=deployment.model_version, request_id="junk", inputs=["x"],
                                 latency_ms=1.0, status_code=422, created_at=timezone.now() - timedelta(minutes=5))
    report = services.drift_report_create_for_endpoint(actor=scientist, endpoint=SLUG)
    assert tasks.drift_report_compute(report.pk) == "failed"
    report.refresh_from_db()
    assert "no input object" in report.error


def test_a_version_without_training_data_needs_an_explicit_reference(api, engineer, reference_version):
    version = _model_version(engineer, signature=_signature(reference_version))
    _, deployment = _endpoint(engineer, version)
    _log(deployment, _submissions(rows=100, seed=29))
    response = api.post(URL, {"endpoint": SLUG}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "no_reference" and "reference_version_id" in error["message"]
    assert _run(api, reference_version_id=reference_version.pk)["reference_version_id"] == reference_version.pk


def test_unknown_and_hidden_endpoints_are_not_found(api, engineer, served):
    from apps.core.permissions import make_private

    assert api.post(URL, {"endpoint": "nope"}, format="json").json()["error"]["details"]["field"] == "endpoint"
    endpoint, deployment, _ = served
    _log(deployment, _submissions(rows=100, seed=30))
    make_private(endpoint)
    response = api.post(URL, {"endpoint": SLUG}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["details"] == {"field": "endpoint", "endpoint": SLUG}


def test_reports_are_visible_to_who_may_see_the_endpoint_and_the_reference(  # noqa: PLR0917 - fixtures
        api, client_for, engineer, scientist, served, reference_version):
    from django.test import Client

    from apps.core.permissions import make_private

    endpoint, deployment, _ = served
    _log(deployment, _submissions(rows=100, seed=31))
    report = services.drift_report_create_for_endpoint(actor=engineer, endpoint=SLUG)
    assert api.get(f"{URL}{report.pk}/").status_code == 200  # the lab shares both
    assert [r["id"] for r in api.get(URL).json()["results"]] == [report.pk]
    make_private(endpoint)
    assert api.get(f"{URL}{report.pk}/").status_code == 404
    assert api.get(URL).json()["results"] == []
    owner = client_for(engineer)
    assert owner.get(f"{URL}{report.pk}/").status_code == 200
    page = Client()
    page.force_login(scientist)
    assert page.get(f"/monitoring/drift-reports/{report.pk}/").status_code == 404


def test_the_training_data_must_be_visible(client_for, make_user, served):
    from apps.core.permissions import make_private

    _, deployment, version = served
    _log(deployment, _submissions(rows=100, seed=32))
    make_private(version.dataset_version.dataset)  # the lab still sees the endpoint, not the training data
    colleague = client_for(make_user("Data Scientist", username="colleague"))
    response = colleague.post(URL, {"endpoint": SLUG}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["details"]["field"] == "reference_version_id"


def test_the_endpoint_page_checks_the_last_hour_and_the_report_shows_the_window(scientist, served):
    from django.test import Client

    _, deployment, version = served
    _log(deployment, _submissions(rows=200, seed=33, scenario="freezer_failure"))
    page = Client()
    page.force_login(scientist)
    detail = page.get(f"/serving/{SLUG}/")
    assert detail.status_code == 200 and b'id="check-drift"' in detail.content
    response = page.post(f"/monitoring/drift-reports/endpoint/{SLUG}/")
    report = DriftReport.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/monitoring/drift-reports/{report.pk}/"
    assert report.endpoint_slug == SLUG and report.window_end - report.window_start == timedelta(hours=1)
    tasks.drift_report_compute(report.pk)
    html = page.get(response["Location"]).content.decode()
    assert 'id="report-endpoint"' in html and f"/serving/{SLUG}/" in html
    assert report.window_start.isoformat()[:19] in html and str(version) in html and "200 instances" in html
    assert f"endpoint {SLUG}" in page.get("/monitoring/drift-reports/").content.decode()
    # An empty window: back to the endpoint page with the reason, nothing created.
    DriftReport.objects.all().delete()
    from apps.serving.models import PredictionLog

    PredictionLog.objects.all().delete()
    response = page.post(f"/monitoring/drift-reports/endpoint/{SLUG}/", follow=True)
    assert "logged no request" in response.content.decode() and not DriftReport.objects.exists()
    assert page.post("/monitoring/drift-reports/endpoint/nope/").status_code == 404
