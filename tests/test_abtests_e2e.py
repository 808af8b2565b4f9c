"""A/B tests end to end on PostgreSQL with a real worker: two trained
versions behind a split, lab traffic with a real difference in quality,
ground truth, the worker keeping the per-arm statistics, and the test
concluding for the better version; then a challenger that fails on live
traffic breaks the error-rate guardrail and the worker stops the test and
gives all traffic back to the control."""

import json

import pytest

from apps.abtests.models import ABTest, ABTestArmStatistic
from apps.abtests.tasks import ab_test_stats_update
from apps.core.services import api_key_create
from apps.datasets.generator import generate_submissions
from apps.registry.choices import Stage
from apps.serving import logbuffer
from apps.serving.models import Deployment, PredictionLog
from apps.serving.runtime import runtime
from apps.serving.services.health import json_value
from apps.serving.tests.factories import fit_nan_intolerant_pipeline, json_records, lab_frame, make_model_version

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
LABELS = ("qc_pass", "turnaround_hours")


def _approve(sci_api, qa_api, admin_api, version: int, stage: str) -> None:
    """Four eyes; an Admin overrides the gates the barely-trained version may fail."""
    request = sci_api.post(f"/api/v1/models/sample-qc/versions/{version}/transition-requests/",
                           {"stage": stage, "justification": f"v{version} to {stage}"}, format="json")
    assert request.status_code == 201, request.content
    body, api = {"comment": "reviewed"}, qa_api
    if not request.json()["gates_passed"]:
        body, api = {**body, "override_reason": "the A/B test will show it"}, admin_api
    decision = api.post(f"/api/v1/transition-requests/{request.json()['id']}/approve/", body, format="json")
    assert decision.status_code == 200, decision.content


def _predict(client, headers, slug: str, instances: list[dict], unit: str) -> dict:
    response = client.post(f"/api/v1/endpoints/{slug}/predict/", content_type="application/json",
                           data=json.dumps({"instances": instances, "unit_id": unit}), **headers)
    return {"status": response.status_code, **(response.json() if response.status_code == 200 else {})}


def _update_until(live_worker, test_id: int, done, what: str):
    """Ask the worker to read the log (as the beat entry does every minute) until ``done``."""
    def check():
        ab_test_stats_update.delay(test_id)
        return done()
    return live_worker.wait_for(check, timeout=180, interval=2, what=what)


def _lims_headers(user) -> dict:
    return {"HTTP_AUTHORIZATION": f"Api-Key {api_key_create(user=user, name='lims').raw_key}"}


def test_a_test_concludes_for_the_better_version(  # noqa: PLR0917 - fixtures
        live_worker, make_user, client_for, client, make_lab_version, train_through_api):
    scientist = make_user("Data Scientist", username="ab2e_sci")
    qa = make_user("Approver", username="ab2e_qa")
    engineer = make_user("ML Engineer", username="ab2e_eng")
    admin_api = client_for(make_user("Admin", username="ab2e_admin"))
    sci_api, qa_api, eng_api = client_for(scientist), client_for(qa), client_for(engineer)
    dataset_version = make_lab_version(scientist, rows=800, seed=31, name="lab-submissions-ab")
    assert sci_api.post("/api/v1/experiments/", {"name": "sample-qc-ab-e2e"}, format="json").status_code == 201
    # v1 barely learns (regularised to almost nothing); v2 is a real model.
    weak = train_through_api(sci_api, dataset_version, "logistic_regression", {"C": 1e-6},
                             experiment="sample-qc-ab-e2e")
    strong = train_through_api(sci_api, dataset_version, "random_forest", {"n_estimators": 60, "max_depth": 8},
                               experiment="sample-qc-ab-e2e")
    assert sci_api.post("/api/v1/models/", {"name": "sample-qc", "task_type": "classification"},
                        format="json").status_code == 201
    for run in (weak, strong):
        assert sci_api.post("/api/v1/models/sample-qc/versions/", {"run_id": run}, format="json").status_code == 201
    _approve(sci_api, qa_api, admin_api, 1, "production")
    _approve(sci_api, qa_api, admin_api, 2, "staging")
    assert eng_api.post("/api/v1/endpoints/", {"slug": "qc-ab", "environment": "staging"},
                        format="json").status_code == 201
    first = eng_api.post("/api/v1/endpoints/qc-ab/deployments/", {"model": "sample-qc", "version": 1},
                         format="json")
    assert first.status_code == 201, first.content
    live_worker.wait_for(lambda: Deployment.objects.filter(pk=first.json()["id"], rollout_state="completed").first(),
                         timeout=180, what="v1's deployment")

    created = eng_api.post("/api/v1/ab-tests/", {
        "endpoint": "qc-ab", "name": "random forest against the first model", "primary_metric": "accuracy",
        "guardrail_metrics": ["error_rate"], "engine": "frequentist",  # one look, at the end
        "arms": [{"model": "sample-qc", "version": 1, "weight": 50},
                 {"model": "sample-qc", "version": 2, "weight": 50}]}, format="json")
    assert created.status_code == 201, created.content
    test_id = created.json()["id"]
    started = eng_api.post(f"/api/v1/ab-tests/{test_id}/start/")
    assert started.status_code == 200 and started.json()["status"] == "running", started.content

    # Lab submissions after a freezer failure (drift: far fewer pass, which the
    # barely-trained v1, passing almost everything, cannot see), 20 samples a
    # request (a batch goes to one arm), then their ground truth.
    frame = generate_submissions(rows=2400, seed=77, scenario="freezer_failure")
    headers = _lims_headers(engineer)
    runtime.refresh(force=True)
    feedback = []
    for batch in range(120):
        rows = frame.iloc[batch * 20:(batch + 1) * 20].to_dict("records")
        instances = [{k: json_value(v) for k, v in row.items() if k not in LABELS} for row in rows]
        answer = _predict(client, headers, "qc-ab", instances, unit=f"LAB-{batch:03d}")
        assert answer["status"] == 200, answer
        feedback += [{"request_id": answer["request_id"], "index": i, "label": int(row["qc_pass"])}
                     for i, row in enumerate(rows)]
    logbuffer.flush()
    assert {a for a in PredictionLog.objects.filter(endpoint__slug="qc-ab").values_list("split_arm", flat=True)} \
        == {0, 1}
    joined = eng_api.post("/api/v1/endpoints/qc-ab/feedback/", {"feedback": feedback}, format="json")
    assert joined.status_code == 200 and joined.json()["joined"] == 2400, joined.content

    _update_until(live_worker, test_id, lambda: sum(ABTestArmStatistic.objects.filter(
        arm__ab_test_id=test_id, metric="accuracy").values_list("n", flat=True)) == 2400, what="the arm statistics")
    results = eng_api.get(f"/api/v1/ab-tests/{test_id}/results/").json()
    [comparison] = results["primary"]["comparisons"]
    assert comparison["significant"] and comparison["estimate"] > 0, results["primary"]
    assert not results["srm"]["mismatch"]
    assert ABTest.objects.get(pk=test_id).status == "running"  # no guardrail broken

    assert eng_api.post(f"/api/v1/ab-tests/{test_id}/stop/", {"reason": "enough data"},
                        format="json").status_code == 200
    concluded = eng_api.post(f"/api/v1/ab-tests/{test_id}/conclude/", {"winner": 1}, format="json")
    assert concluded.status_code == 200, concluded.content
    test = ABTest.objects.get(pk=test_id)
    assert test.status == "concluded" and test.decision["winner"] == 1
    assert test.result_snapshot["primary"]["comparisons"][0]["significant"]
    live = Deployment.objects.filter(endpoint__slug="qc-ab", traffic_weight__gt=0)
    assert [d.model_version.version for d in live] == [1]  # stopping gave the traffic back to the control


def test_a_challenger_that_fails_breaks_the_guardrail_and_the_control_is_restored(
        live_worker, make_user, client_for, client):
    engineer = make_user("ML Engineer", username="ab2e_guard")
    control = make_model_version(owner=engineer, name="sample-qc-guard", stage=Stage.PRODUCTION)
    model, signature, records = fit_nan_intolerant_pipeline()
    broken = make_model_version(owner=engineer, name="sample-qc-guard", stage=Stage.STAGING, model=model,
                                signature=signature, example=records[:3])
    eng_api = client_for(engineer)
    assert eng_api.post("/api/v1/endpoints/", {"slug": "qc-guard", "environment": "staging"},
                        format="json").status_code == 201
    first = eng_api.post("/api/v1/endpoints/qc-guard/deployments/", {"model": "sample-qc-guard", "version": 1},
                         format="json")
    assert first.status_code == 201, first.content
    live_worker.wait_for(lambda: Deployment.objects.filter(pk=first.json()["id"], rollout_state="completed").first(),
                         timeout=180, what="the control's deployment")
    created = eng_api.post("/api/v1/ab-tests/", {
        "endpoint": "qc-guard", "name": "a challenger that cannot take blanks", "primary_metric": "accuracy",
        "guardrail_metrics": ["error_rate"],
        "arms": [{"model_version_id": control.pk, "weight": 50}, {"model_version_id": broken.pk, "weight": 50}]},
        format="json")
    assert created.status_code == 201, created.content
    test_id = created.json()["id"]
    assert eng_api.post(f"/api/v1/ab-tests/{test_id}/start/").json()["status"] == "running"

    # Submission forms with the concentration left blank, as the signature allows.
    headers = _lims_headers(engineer)
    runtime.refresh(force=True)
    blanks = [{**r, "concentration_ng_ul": None} for r in json_records(lab_frame().head(200))]
    answers = [_predict(client, headers, "qc-guard", [instance], unit=f"S-{i:04d}")
               for i, instance in enumerate(blanks)]
    logbuffer.flush()
    failed = sum(a["status"] >= 500 for a in answers)
    assert 40 < failed < 160 and all(a["status"] in (200, 500, 502, 503) for a in answers)

    test = _update_until(live_worker, test_id, lambda: ABTest.objects.filter(pk=test_id, status="stopped").first(),
                         what="the guardrail to stop the test")
    assert "Guardrail broken" in test.stop_reason and "error_rate" in test.stop_reason
    live = Deployment.objects.filter(endpoint__slug="qc-guard", traffic_weight__gt=0)
    assert [d.model_version_id for d in live] == [control.pk]
    runtime.refresh(force=True)
    after = [_predict(client, headers, "qc-guard", [instance], unit=f"S-{i:04d}")
             for i, instance in enumerate(blanks[:40])]
    assert all(a["status"] == 200 and a["version"] == 1 for a in after)
