"""The requester cannot shape the evidence that judges their request:
quality gates and the holdout are set by Approvers and Admins only, a change
re-evaluates pending requests, approval re-evaluates, and metric gates are
scored by the platform on its own holdout, never read from what a run logged
or from test indices it stored."""

import json

import pytest
from django.test import Client

from apps.core import modelio
from apps.core.errors import Conflict, PermissionDenied
from apps.core.models import AuditEvent
from apps.datasets.selectors import dataset_version_read_frame
from apps.registry import quality, services
from apps.registry.choices import RequestStatus
from apps.registry.models import RegisteredModel
from apps.registry.tests import factories

pytestmark = pytest.mark.django_db

WEAK = {"metrics": [{"metric": "test_roc_auc", "op": ">=", "threshold": 0.5}]}
STRICT = {"metrics": [{"metric": "test_roc_auc", "op": ">=", "threshold": 0.99}]}


def _request(version, actor):
    return services.promotion_request_create(version=version, actor=actor, target_stage="production",
                                             justification="ready")


def _threshold(request) -> dict:
    return next(r for r in request.gate_results if r["gate"] == "metric_threshold")


# --- Who sets the gates ----------------------------------------------------------------------

def test_a_data_scientist_cannot_clear_the_gates_of_their_own_model(people, registered, client_for):
    before = RegisteredModel.objects.get(pk=registered.pk).quality_gates
    with pytest.raises(PermissionDenied) as caught:
        services.registered_model_update(registered_model=registered, actor=people.scientist, quality_gates={})
    assert caught.value.code == "governance_requires_approver"
    response = client_for(people.scientist).patch("/api/v1/models/sample-qc/", {"quality_gates": {}}, format="json")
    assert response.status_code == 403, response.content
    assert response.json()["error"]["code"] == "governance_requires_approver"
    holdout = client_for(people.scientist).patch("/api/v1/models/sample-qc/",
                                                 {"evaluation_dataset_version_id": None, "evaluation_target": "x"},
                                                 format="json")
    assert holdout.status_code == 403
    assert RegisteredModel.objects.get(pk=registered.pk).quality_gates == before
    # The model's own settings stay the owner's to change.
    assert client_for(people.scientist).patch("/api/v1/models/sample-qc/", {"description": "QC"},
                                              format="json").status_code == 200


def test_a_data_scientist_cannot_clear_gates_on_the_page_or_in_the_admin(people, registered):
    before = RegisteredModel.objects.get(pk=registered.pk).quality_gates
    page = Client()
    page.force_login(people.scientist)
    detail = page.get("/registry/models/sample-qc/").content.decode()
    assert 'id="governance"' not in detail
    response = page.post("/registry/models/sample-qc/gates/", {"quality_gates": "{}"}, follow=True)
    assert "only an Approver or an Admin" in response.content.decode()
    assert RegisteredModel.objects.get(pk=registered.pk).quality_gates == before
    # A staff Data Scientist in the admin: the gates are read-only, a forged field is ignored.
    people.scientist.is_staff = True
    people.scientist.save(update_fields=["is_staff"])
    admin = Client()
    admin.force_login(people.scientist)
    url = f"/admin/registry/registeredmodel/{registered.pk}/change/"
    form = admin.get(url)
    assert form.status_code == 200
    assert 'name="quality_gates"' not in form.content.decode()
    admin.post(url, {"description": "mine", "tags": "{}", "quality_gates": "{}",
                     "champion_follows_production": "on"})
    assert RegisteredModel.objects.get(pk=registered.pk).quality_gates == before


def test_an_approver_sets_the_gates_on_the_page_and_in_the_admin(people, registered):
    page = Client()
    page.force_login(people.qa)
    assert 'id="governance"' in page.get("/registry/models/sample-qc/").content.decode()
    page.post("/registry/models/sample-qc/gates/", {"quality_gates": json.dumps(STRICT)})
    assert RegisteredModel.objects.get(pk=registered.pk).quality_gates["metrics"][0]["threshold"] == 0.99
    url = f"/admin/registry/registeredmodel/{registered.pk}/change/"
    assert 'name="quality_gates"' in page.get(url).content.decode()
    page.post(url, {"quality_gates": json.dumps(WEAK), "evaluation_target": ""})
    assert RegisteredModel.objects.get(pk=registered.pk).quality_gates["metrics"][0]["threshold"] == 0.5
    event = AuditEvent.objects.filter(action="registered_model.quality_gates_changed").order_by("id").last()
    assert event.actor == people.qa
    assert event.before["quality_gates"]["metrics"][0]["threshold"] == 0.99
    assert event.after["quality_gates"]["metrics"][0]["threshold"] == 0.5


def test_tightened_gates_re_evaluate_pending_requests(people, make_run, registered):
    version = services.model_version_register(registered_model=registered, run=make_run(), actor=people.scientist)
    pending = _request(version, people.scientist)
    assert pending.gates_passed
    services.registered_model_update(registered_model=registered, actor=people.qa, quality_gates=STRICT)
    pending.refresh_from_db()
    assert not pending.gates_passed and not _threshold(pending)["passed"]
    assert _threshold(pending)["threshold"] == 0.99
    changed = AuditEvent.objects.get(action="registered_model.quality_gates_changed")
    assert changed.before["quality_gates"]["metrics"][0]["threshold"] == 0.7
    assert changed.after["quality_gates"]["metrics"][0]["threshold"] == 0.99
    reevaluated = AuditEvent.objects.get(action="promotion_request.gates_reevaluated")
    assert reevaluated.actor == people.qa
    assert reevaluated.before["gates_passed"] is True and reevaluated.after["gates_passed"] is False
    with pytest.raises(Conflict) as caught:
        services.promotion_request_approve(promotion_request=pending, actor=people.qa2, comment="ok")
    assert caught.value.code == "quality_gates_failed"


def test_a_request_judged_under_weaker_gates_is_evaluated_again_at_approval(people, make_run, registered):
    version = services.model_version_register(registered_model=registered, run=make_run(), actor=people.scientist)
    pending = _request(version, people.scientist)
    assert pending.gates_passed
    # The gates tightened behind the service's back (a restore, a raw SQL fix):
    # the stored results are stale and must not carry the approval.
    RegisteredModel.objects.filter(pk=registered.pk).update(quality_gates=STRICT)
    with pytest.raises(Conflict) as caught:
        services.promotion_request_approve(promotion_request=pending, actor=people.qa, comment="looks fine")
    assert caught.value.code == "quality_gates_failed"
    pending.refresh_from_db()
    assert pending.status == RequestStatus.PENDING and not pending.gates_passed
    assert AuditEvent.objects.filter(action="promotion_request.gates_reevaluated", actor=people.qa).exists()


def test_gates_changed_during_an_approval_are_judged_before_it_completes(people, make_run, registered,
                                                                         monkeypatch):
    """The gates tighten between the approval's evaluation and its lock: the
    approval evaluates again under the new gates instead of using the old
    results; gates that keep changing make it give up."""

    from apps.registry.services import promotion_requests

    version = services.model_version_register(registered_model=registered, run=make_run(), actor=people.scientist)
    pending = _request(version, people.scientist)
    real = promotion_requests.promotion_request_reevaluate
    settings = iter([STRICT])

    def reevaluate_then_gates_change(**kwargs):
        result = real(**kwargs)
        if (gates := next(settings, None)) is not None:
            RegisteredModel.objects.filter(pk=registered.pk).update(quality_gates=gates)
        return result

    monkeypatch.setattr(promotion_requests, "promotion_request_reevaluate", reevaluate_then_gates_change)
    with pytest.raises(Conflict) as caught:
        services.promotion_request_approve(promotion_request=pending, actor=people.qa, comment="ok")
    assert caught.value.code == "quality_gates_failed"
    pending.refresh_from_db()
    assert pending.status == RequestStatus.PENDING and _threshold(pending)["threshold"] == 0.99

    settings = iter([WEAK, STRICT, WEAK, STRICT])
    with pytest.raises(Conflict) as caught:
        services.promotion_request_approve(promotion_request=pending, actor=people.qa, comment="ok")
    assert caught.value.code == "stale_gate_evaluation"
    pending.refresh_from_db()
    assert pending.status == RequestStatus.PENDING


# --- What the gates judge ---------------------------------------------------------------------

def test_a_logged_fake_metric_does_not_pass_the_threshold_gate(people, data, make_run, registered, client_for):
    poor = factories.poor_pipeline(data.frame)
    run = make_run(model=poor, metrics={"test_roc_auc": 0.999})
    version = services.model_version_register(registered_model=registered, run=run, actor=people.scientist)
    assert version.metrics["test_roc_auc"] == 0.999
    pending = _request(version, people.scientist)
    gate = _threshold(pending)
    assert not pending.gates_passed and not gate["passed"]
    assert gate["reported_value"] == 0.999 and gate["value"] < 0.5
    assert "training job" in gate["holdout"]
    body = client_for(people.qa).get(f"/api/v1/models/sample-qc/versions/{version.version}/").json()
    assert body["metrics"]["test_roc_auc"] == 0.999 and body["metrics_source"] == "reported by the client"


def test_supplied_test_indices_change_nothing(people, data, make_run, registered):
    """A run's owner can store any evaluation/test_indices.json; the gates use
    the split the platform's job recorded, recomputed."""
    poor = factories.poor_pipeline(data.frame)
    frame = dataset_version_read_frame(version=data.version)
    # The rows where the poor model happens to be right, as a cheater would pick them.
    correct = [i for i, ok in enumerate(poor.predict(frame[factories.FEATURES]) == frame[factories.TARGET]) if ok]
    honest = make_run(model=poor)
    cheating = make_run(model=poor, with_test_indices=False)
    factories._store_artifact(cheating, "evaluation/test_indices.json", json.dumps(correct).encode(),
                              "application/json")
    values = []
    for run in (honest, cheating):
        version = services.model_version_register(registered_model=registered, run=run, actor=people.scientist)
        values.append(_threshold(_request(version, people.scientist))["value"])
    platform_rows = frame.iloc[factories.platform_split(data.frame)[1]]
    expected = quality.score_estimator(poor, "roc_auc", platform_rows[factories.FEATURES],
                                       platform_rows[factories.TARGET])
    assert values == [pytest.approx(expected), pytest.approx(expected)]
    assert services.evaluation_rows(version).index.tolist() == platform_rows.index.tolist()


def test_an_uploaded_version_needs_an_evaluation_dataset_set_by_an_approver(people, data, registered, client_for):
    good = factories.fit_pipeline(data.frame.iloc[:300])
    upload = services.model_version_upload(registered_model=registered, actor=people.scientist,
                                           data=modelio.dumps(good), signature=factories.signature_for(),
                                           dataset_version=data.version)
    pending = _request(upload, people.scientist)
    gate = _threshold(pending)
    assert not gate["passed"] and services.NO_HOLDOUT in gate["message"]
    holdout = factories.make_dataset_version(people.qa, frame=factories.sample_frame(rows=300, seed=7),
                                             name="qa-holdout")
    holdout.schema = {"columns": [{"name": c, "type": "integer" if dtype.kind == "i" else "float"}
                                  for c, dtype in factories.sample_frame(rows=1).dtypes.items()]}
    holdout.save(update_fields=["schema"])
    refused = client_for(people.scientist).patch("/api/v1/models/sample-qc/",
                                                 {"evaluation_dataset_version_id": holdout.pk}, format="json")
    assert refused.status_code == 403
    response = client_for(people.qa).patch("/api/v1/models/sample-qc/",
                                           {"evaluation_dataset_version_id": holdout.pk}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["evaluation_dataset_version"] == holdout.pk
    assert response.json()["evaluation_target"] == factories.TARGET
    pending.refresh_from_db()
    gate = _threshold(pending)
    assert pending.gates_passed and gate["passed"] and "qa-holdout" in gate["holdout"]
    rows = factories.sample_frame(rows=300, seed=7)
    assert gate["value"] == pytest.approx(quality.score_estimator(good, "roc_auc", rows[factories.FEATURES],
                                                                  rows[factories.TARGET]))


def test_a_client_logged_run_cannot_pass_metric_gates_without_a_platform_holdout(people, make_run, registered):
    run = make_run(platform_job=False, metrics={"test_roc_auc": 0.999})
    version = services.model_version_register(registered_model=registered, run=run, actor=people.scientist)
    gate = _threshold(_request(version, people.scientist))
    assert not gate["passed"] and services.NO_HOLDOUT in gate["message"] and gate["reported_value"] == 0.999


def test_the_version_page_labels_logged_metrics(people, make_run, registered):
    services.model_version_register(registered_model=registered, run=make_run(), actor=people.scientist)
    page = Client()
    page.force_login(people.viewer)
    assert "reported by the client" in page.get("/registry/models/sample-qc/versions/1/").content.decode()

