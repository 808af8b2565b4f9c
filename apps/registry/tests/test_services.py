"""Registry services on the real database: registration, gates, four-eyes
approvals, stage moves, aliases, rollback, audit events and domain events."""

import io
import json
import pickle

import pytest
from django.db import transaction

from apps.core import modelio
from apps.core.errors import Conflict, InvalidState, NotFound, PermissionDenied, ValidationFailed
from apps.core.models import AuditEvent
from apps.registry import quality, services
from apps.registry.choices import ApprovalStatus, Stage, TransitionKind
from apps.registry.models import ModelAlias, ModelVersion, StageTransition
from apps.registry.tests import factories
from apps.registry.tests.helpers import approve, audit_actions, register, request

pytestmark = pytest.mark.django_db


# --- Registration ---------------------------------------------------------------------

def test_register_from_a_finished_run(people, data, make_run, registered, published):
    run = make_run()
    with published.committing():
        version = register(registered, run, people.scientist)
    assert version.version == 1
    assert version.source_run == run and version.dataset_version == data.version
    assert version.signature == factories.signature_for()
    assert len(version.input_example) == 3 and set(version.input_example[0]) == set(factories.FEATURES)
    assert set(version.metrics) == {"test_accuracy", "test_f1", "test_roc_auc", "test_log_loss"}
    assert version.metrics["test_roc_auc"] > 0.7
    artifact = run.artifacts.get(path="model/model.skops")
    assert version.artifact == artifact.file and version.sha256 == artifact.sha256
    assert version.stage == Stage.NONE and version.approval_status == ApprovalStatus.NONE
    assert audit_actions(version) == ["model_version.registered"]
    assert published == [("registry.model_version.created", {
        "registered_model": "sample-qc", "version_id": version.pk, "version": 1, "run_id": run.pk,
        "created_by": "sci"})]
    loaded = services.model_version_load(version=version)
    assert list(loaded.feature_names_in_) == factories.FEATURES


def test_version_numbers_increase_per_model(people, make_run, registered):
    other = factories.make_model(people.scientist, name="turnaround")
    run = make_run()
    numbers = [register(registered, run, people.scientist).version for _ in range(3)]
    assert numbers == [1, 2, 3]
    assert register(other, run, people.scientist).version == 1
    registered.refresh_from_db()
    assert registered.latest_version == 3


def test_only_finished_runs_with_a_model_can_be_registered(people, make_run, registered):
    with pytest.raises(InvalidState, match="only finished runs"):
        register(registered, make_run(status="running"), people.scientist)
    run = make_run()
    run.artifacts.filter(path="model/model.skops").delete()
    with pytest.raises(ValidationFailed, match=r"no model/model\.skops"):
        register(registered, run, people.scientist)
    assert not ModelVersion.objects.exists()


def test_a_pickled_model_in_a_run_is_refused(people, data, make_run, registered):
    model = factories.fit_pipeline(data.frame)
    run = make_run(model_bytes=pickle.dumps(model), metrics={"test_roc_auc": 0.9})
    with pytest.raises(modelio.ModelFileError, match="pickle or joblib") as caught:
        register(registered, run, people.scientist)
    assert caught.value.status_code == 400
    assert not ModelVersion.objects.exists()


def _identity(frame):
    return frame


def test_skops_files_with_untrusted_types_are_refused(people, data, make_run, registered):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    base = factories.fit_pipeline(data.frame)
    sneaky = make_pipeline(FunctionTransformer(_identity), base).fit(data.frame[factories.FEATURES],
                                                                     data.frame[factories.TARGET])
    run = make_run(model_bytes=modelio.dumps(sneaky), metrics={"test_roc_auc": 0.9})
    with pytest.raises(modelio.ModelFileError) as caught:
        register(registered, run, people.scientist)
    assert caught.value.code == "invalid_model_file"
    assert any("_identity" in t for t in caught.value.details["untrusted_types"])


def test_upload_accepts_skops_and_refuses_pickle(people, data, registered):
    model = factories.fit_pipeline(data.frame)
    version = services.model_version_upload(registered_model=registered, actor=people.scientist,
                                            data=modelio.dumps(model), signature=factories.signature_for(),
                                            dataset_version=data.version)
    assert version.version == 1 and version.metrics == {} and version.source_run is None
    assert services.model_version_load(version=version).predict(data.frame[factories.FEATURES][:2]).shape == (2,)
    with pytest.raises(modelio.ModelFileError, match="pickle or joblib"):
        services.model_version_upload(registered_model=registered, actor=people.scientist,
                                      data=pickle.dumps(model), signature=factories.signature_for())
    import joblib

    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    with pytest.raises(modelio.ModelFileError, match="pickle or joblib"):
        services.model_version_upload(registered_model=registered, actor=people.scientist,
                                      data=buffer.getvalue(), signature=factories.signature_for())
    assert registered.versions.count() == 1


def test_loading_checks_the_sha256(people, make_run, registered):
    version = register(registered, make_run(), people.scientist)
    ModelVersion.objects.filter(pk=version.pk).update(sha256="0" * 64)
    version.refresh_from_db()
    with pytest.raises(modelio.ModelFileError) as caught:
        services.model_version_load(version=version)
    assert caught.value.code == "model_hash_mismatch"


def test_task_type_must_match(people, make_run):
    regression = factories.make_model(people.scientist, name="turnaround")
    regression.task_type = "regression"
    regression.save()
    with pytest.raises(ValidationFailed, match="classification model"):
        register(regression, make_run(), people.scientist)


# --- Gates --------------------------------------------------------------------------------

def test_request_evaluates_and_stores_every_gate(people, make_run, registered):
    version = register(registered, make_run(), people.scientist)
    req = request(version, people.scientist)
    gates = {r["gate"]: r for r in req.gate_results}
    assert set(gates) == {"metric_threshold", "valid_signature", "valid_dataset", "max_regression"}
    assert all(r["passed"] for r in req.gate_results) and req.gates_passed
    assert gates["metric_threshold"]["value"] == pytest.approx(version.metrics["test_roc_auc"])
    assert gates["max_regression"]["skipped"]  # nothing in Production yet
    assert "predicting the input example" in gates["valid_signature"]["message"]
    version.refresh_from_db()
    assert version.approval_status == ApprovalStatus.PENDING
    assert audit_actions(req) == ["promotion_request.created"]
    with pytest.raises(Conflict, match="already has a pending"):
        request(version, people.engineer)


def test_failing_gates_are_reported(people, data, make_run, registered):
    broken_signature = factories.signature_for([*factories.FEATURES[:-1], "rin"])
    version = register(registered, make_run(model=factories.poor_pipeline(data.frame), signature=broken_signature),
                       people.scientist)
    invalid = factories.make_dataset_version(people.scientist, frame=data.frame.head(200), status="invalid")
    ModelVersion.objects.filter(pk=version.pk).update(dataset_version=invalid)
    version.refresh_from_db()
    req = request(version, people.scientist)
    gates = {r["gate"]: r for r in req.gate_results}
    assert not req.gates_passed
    assert not gates["metric_threshold"]["passed"] and gates["metric_threshold"]["value"] < 0.7
    assert not gates["valid_signature"]["passed"]
    assert "lacks: freeze_thaw_cycles" in gates["valid_signature"]["message"]
    assert "does not use: rin" in gates["valid_signature"]["message"]
    assert not gates["valid_dataset"]["passed"] and "invalid" in gates["valid_dataset"]["message"]


def test_regression_gate_compares_both_models_on_the_same_rows(people, data, make_run, registered):
    from apps.datasets.selectors import dataset_version_read_frame

    strong = register(registered, make_run(), people.scientist)
    approve(request(strong, people.scientist), people.qa)
    weak_features = ["freeze_thaw_cycles"]
    weak = register(registered, make_run(features=weak_features, seed=2), people.scientist)
    req = request(weak, people.scientist)
    gate = next(r for r in req.gate_results if r["gate"] == "max_regression")
    assert not gate["passed"] and gate["production_version"] == 1
    # Recompute by hand: both models on the weak run's test rows.
    rows = dataset_version_read_frame(version=data.version).iloc[factories.platform_split(data.frame, seed=2)[1]]
    expected_weak = quality.score_estimator(services.model_version_load(version=weak), "roc_auc",
                                            rows[weak_features], rows[factories.TARGET])
    expected_strong = quality.score_estimator(services.model_version_load(version=strong), "roc_auc",
                                              rows[factories.FEATURES], rows[factories.TARGET])
    assert gate["candidate"] == pytest.approx(expected_weak)
    assert gate["production"] == pytest.approx(expected_strong)
    assert gate["rows"] == len(rows)
    assert gate["degradation"] > 0.05

    similar = register(registered, make_run(C=0.5, seed=2), people.scientist)
    gate = next(r for r in request(similar, people.scientist).gate_results if r["gate"] == "max_regression")
    assert gate["passed"] and not gate.get("skipped")


def test_regression_gate_fails_without_a_platform_holdout(people, make_run, registered):
    approve(request(register(registered, make_run(), people.scientist), people.scientist), people.qa)
    # A run the client logged by itself, test indices and all: no platform job, so no holdout.
    version = register(registered, make_run(platform_job=False), people.scientist)
    gate = next(r for r in request(version, people.scientist).gate_results if r["gate"] == "max_regression")
    assert not gate["passed"] and services.NO_HOLDOUT in gate["message"]


# --- Aliases -----------------------------------------------------------------------------

def test_aliases_move_atomically(people, make_run, registered, published):
    v1 = register(registered, make_run(), people.scientist)
    v2 = register(registered, make_run(C=0.5), people.scientist)
    with published.committing():
        services.model_alias_set(registered_model=registered, alias="challenger", version_number=1,
                                 actor=people.scientist)
        alias = services.model_alias_set(registered_model=registered, alias="challenger", version_number=2,
                                         actor=people.scientist)
        services.model_alias_set(registered_model=registered, alias="challenger", version_number=2,
                                 actor=people.scientist)  # no move, no event
    assert alias.version == v2 and ModelAlias.objects.filter(alias="challenger").count() == 1
    moves = [p for e, p in published if e == "registry.alias.moved"]
    assert [(m["previous_version"], m["version"]) for m in moves] == [(None, 1), (1, 2)]
    assert v1.aliases.count() == 0
    with pytest.raises(NotFound):
        services.model_alias_set(registered_model=registered, alias="challenger", version_number=9,
                                 actor=people.scientist)
    with pytest.raises(ValidationFailed):
        services.model_alias_set(registered_model=registered, alias="Not Valid!", version_number=1,
                                 actor=people.scientist)
    services.model_alias_delete(registered_model=registered, alias="challenger", actor=people.scientist)
    assert not ModelAlias.objects.exists()
    with pytest.raises(PermissionDenied):
        services.model_alias_set(registered_model=registered, alias="x", version_number=1, actor=people.viewer)


# --- Rollback ---------------------------------------------------------------------------

def test_rollback_puts_the_previous_production_version_back(people, make_run, registered, published):
    v1 = register(registered, make_run(), people.scientist)
    v2 = register(registered, make_run(C=0.5), people.scientist)
    with pytest.raises(InvalidState, match="no Production version"):
        services.registered_model_rollback(registered_model=registered, actor=people.engineer, reason="x")
    approve(request(v1, people.scientist), people.qa)
    with pytest.raises(InvalidState, match="no earlier Production version"):
        services.registered_model_rollback(registered_model=registered, actor=people.engineer, reason="x")
    approve(request(v2, people.scientist), people.qa)
    with pytest.raises(ValidationFailed, match="needs a reason"):
        services.registered_model_rollback(registered_model=registered, actor=people.engineer, reason=" ")
    with pytest.raises(PermissionDenied):
        services.registered_model_rollback(registered_model=registered, actor=people.scientist, reason="x")
    published.clear()
    with published.committing():
        restored = services.registered_model_rollback(registered_model=registered, actor=people.engineer,
                                                      reason="v2 misclassifies FFPE samples")
    v1.refresh_from_db()
    v2.refresh_from_db()
    assert restored == v1 and (v1.stage, v2.stage) == (Stage.PRODUCTION, Stage.ARCHIVED)
    assert ModelAlias.objects.get(alias="champion").version == v1
    event = AuditEvent.objects.get(action="registered_model.rolled_back")
    assert event.message == "v2 misclassifies FFPE samples" and event.actor == people.engineer
    assert event.before == {"production_version": 2} and event.after == {"production_version": 1}
    assert StageTransition.objects.filter(kind=TransitionKind.ROLLBACK).count() == 2
    rolled = [p for e, p in published if e == "registry.model.rolled_back"]
    assert rolled == [{"registered_model": "sample-qc", "from_version": 2, "to_version": 1,
                       "from_version_id": v2.pk, "to_version_id": v1.pk,
                       "reason": "v2 misclassifies FFPE samples", "actor": "eng"}]


def test_quality_gate_settings_are_validated(people):
    with pytest.raises(ValidationFailed, match="op must be one of"):
        factories.make_model(people.scientist, name="bad", gates={"metrics": [{"metric": "f1", "op": "~",
                                                                              "threshold": 1}]})
    model = factories.make_model(people.scientist, name="good", gates={"metrics": [{"metric": "f1",
                                                                                   "threshold": 0.5}]})
    assert model.quality_gates["require_valid_dataset"] is True
    with pytest.raises(Conflict):
        factories.make_model(people.scientist, name="good")
    with pytest.raises(ValidationFailed):
        factories.make_model(people.scientist, name="Has Spaces")


def test_a_failed_registration_leaves_nothing(people, data, registered):
    with pytest.raises(ValidationFailed), transaction.atomic():
        services.model_version_upload(registered_model=registered, actor=people.scientist,
                                      data=modelio.dumps(factories.fit_pipeline(data.frame)), signature=[])
    registered.refresh_from_db()
    assert registered.latest_version == 0 and not AuditEvent.objects.filter(action__startswith="model_version")


def test_input_examples_are_json_rows(people, make_run, registered):
    version = register(registered, make_run(), people.scientist)
    assert json.loads(json.dumps(version.input_example)) == version.input_example


def test_a_second_rollback_goes_further_back_never_forward(people, make_run, registered):
    v1, v2, v3 = (register(registered, make_run(C=c), people.scientist) for c in (1.0, 0.5, 0.25))
    for version in (v1, v2, v3):
        approve(request(version, people.scientist), people.qa)
    first = services.registered_model_rollback(registered_model=registered, actor=people.engineer,
                                               reason="v3 misreads FFPE samples")
    assert first == v2
    second = services.registered_model_rollback(registered_model=registered, actor=people.engineer,
                                                reason="v2 is slow on RNA")
    assert second == v1, "a second rollback must go back to v1, not forward to the v3 just rolled back from"
    for version in (v1, v2, v3):
        version.refresh_from_db()
    assert (v1.stage, v2.stage, v3.stage) == (Stage.PRODUCTION, Stage.ARCHIVED, Stage.ARCHIVED)
    assert v3.rolled_back_by == people.engineer and v2.rolled_back_by == people.engineer
    assert v3.rolled_back_at <= v2.rolled_back_at and v1.rolled_back_at is None
    with pytest.raises(InvalidState, match="no earlier Production version"):
        services.registered_model_rollback(registered_model=registered, actor=people.engineer, reason="again")
    marked = AuditEvent.objects.filter(action="model_version.rolled_back").order_by("id")
    assert [(e.object_id, e.message) for e in marked] == [(str(v3.pk), "v3 misreads FFPE samples"),
                                                         (str(v2.pk), "v2 is slow on RNA")]


def test_approving_a_rolled_back_version_again_clears_its_mark(people, make_run, registered):
    v1, v2 = (register(registered, make_run(C=c), people.scientist) for c in (1.0, 0.5))
    approve(request(v1, people.scientist), people.qa)
    approve(request(v2, people.scientist), people.qa)
    services.registered_model_rollback(registered_model=registered, actor=people.engineer, reason="v2 is off")
    approve(request(v2, people.scientist), people.qa, comment="fixed upstream data; v2 is fine after all")
    v2.refresh_from_db()
    assert v2.stage == Stage.PRODUCTION and v2.rolled_back_at is None and v2.rolled_back_by is None
    assert services.registered_model_rollback(registered_model=registered, actor=people.engineer,
                                              reason="no, it is not") == v1
