"""Who may label a prediction: the principal that made it (its API key, or
its user), or whoever holds ``send_feedback_endpoint`` on the endpoint. The
predict right alone does not let one client overwrite another's ground truth
and so bend live accuracy, alerts and retraining."""

import json

import pytest
from django.test import Client

from apps.registry.choices import Stage
from apps.serving import logbuffer, services
from apps.serving.models import Feedback, PredictionLog
from apps.serving.tests.factories import deploy, make_endpoint, make_model_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(make_user, engineer, api_key_for):
    version = make_model_version(owner=engineer, stage=Stage.PRODUCTION)
    endpoint = make_endpoint(owner=engineer)
    deploy(endpoint=endpoint, version=version, actor=engineer)
    alice = make_user("Data Scientist", username="alice")
    bob = make_user("Data Scientist", username="bob")
    carol = make_user("ML Engineer", username="carol")  # sends the lab's ground truth
    return {"version": version, "endpoint": endpoint, "alice": alice, "bob": bob, "carol": carol,
            "alice_key": api_key_for(alice), "alice_other_key": api_key_for(alice), "bob_key": api_key_for(bob),
            "carol_key": api_key_for(carol)}


def predict(setup, headers: dict) -> str:
    response = Client().post("/api/v1/endpoints/sample-qc/predict/", content_type="application/json",
                             data=json.dumps({"instances": setup["version"].input_example[:1]}), **headers)
    assert response.status_code == 200, response.content
    return response.json()["request_id"]


def send_feedback(headers: dict, *request_ids, label=1):
    return Client().post("/api/v1/endpoints/sample-qc/feedback/", content_type="application/json",
                         data=json.dumps({"feedback": [{"request_id": r, "label": label} for r in request_ids]}),
                         **headers)


def test_the_prediction_log_records_who_predicted(setup):
    from apps.core.models import ApiKey

    request_id = predict(setup, setup["alice_key"])
    logbuffer.flush()
    row = PredictionLog.objects.get(request_id=request_id)
    key = ApiKey.objects.filter(user=setup["alice"]).order_by("id").first()
    assert (row.principal_user_id, row.principal_api_key_id) == (setup["alice"].pk, key.pk)


def test_only_the_predicting_principal_or_a_feedback_sender_may_label_a_prediction(setup):
    alices = predict(setup, setup["alice_key"])
    bobs = predict(setup, setup["bob_key"])

    # Bob may predict on the endpoint, but Alice's answer is not his to label,
    # alone or hidden among his own.
    for request_ids in ([alices], [bobs, alices]):
        refused = send_feedback(setup["bob_key"], *request_ids, label=0)
        assert refused.status_code == 403, refused.content
        assert refused.json()["error"]["code"] == "permission_denied"
        assert not Feedback.objects.exists()
    # Another key of Alice's speaks for its own predictions only.
    assert send_feedback(setup["alice_other_key"], alices).status_code == 403
    assert not Feedback.objects.exists()

    assert send_feedback(setup["bob_key"], bobs).json()["joined"] == 1
    assert send_feedback(setup["alice_key"], alices, label=1).json()["joined"] == 1
    assert Feedback.objects.get(request_id=alices).label == 1
    # Carol holds send_feedback on the endpoint: she labels anyone's predictions.
    assert send_feedback(setup["carol_key"], alices, bobs, label=0).json() == {"received": 2, "joined": 2,
                                                                                "unknown": 0}
    assert Feedback.objects.get(request_id=alices).label == 0


def test_a_user_labels_the_predictions_of_their_own_keys_from_a_session(setup):
    alices = predict(setup, setup["alice_key"])
    browser = Client()
    browser.force_login(setup["alice"])
    response = browser.post("/api/v1/endpoints/sample-qc/feedback/", content_type="application/json",
                            data=json.dumps({"feedback": [{"request_id": alices, "label": 1}]}))
    assert response.status_code == 200 and response.json()["joined"] == 1
    session_prediction = browser.post("/api/v1/endpoints/sample-qc/predict/", content_type="application/json",
                                      data=json.dumps({"instances": setup["version"].input_example[:1]}))
    assert session_prediction.status_code == 200
    # Her API key did not make that one.
    assert send_feedback(setup["alice_key"], session_prediction.json()["request_id"]).status_code == 403


def test_early_feedback_is_joined_only_to_its_senders_prediction(setup):
    """Feedback that arrives before the prediction's log row is kept, and the
    later join applies the same rule."""
    alices = predict(setup, setup["alice_key"])
    pending = logbuffer.buffer._rows[:]
    logbuffer.buffer.clear()  # as if another process still held the log row
    assert send_feedback(setup["bob_key"], alices, label=0).json() == {"received": 1, "joined": 0, "unknown": 1}
    for row in pending:
        logbuffer.buffer.append(row)
    logbuffer.flush()
    assert services.feedback_join_pending() == 0
    assert Feedback.objects.get().joined_at is None
    # Alice's own label replaces Bob's and joins.
    assert send_feedback(setup["alice_key"], alices, label=1).json()["joined"] == 1
    assert Feedback.objects.get().label == 1


def test_the_owner_of_a_new_endpoint_may_send_feedback(setup, engineer):
    from apps.core.permissions import has_perm

    assert has_perm(engineer, "serving.send_feedback_endpoint", setup["endpoint"])
    assert has_perm(setup["carol"], "serving.send_feedback_endpoint", setup["endpoint"])
    assert not has_perm(setup["bob"], "serving.send_feedback_endpoint", setup["endpoint"])


def test_early_feedback_is_replaced_only_by_its_sender(setup):
    alices = predict(setup, setup["alice_key"])
    logbuffer.buffer.clear()  # the prediction's log row is not written yet
    assert send_feedback(setup["alice_key"], alices, label=1).json()["unknown"] == 1
    assert send_feedback(setup["bob_key"], alices, label=0).status_code == 403
    assert Feedback.objects.get().label == 1
