"""POST /api/v1/ab-tests/analyze/: the statistics core over HTTP.

Every gbstats fixture case goes through the endpoint (JSON in, JSON out) and
must come back with gbstats' numbers; bad input is a 400 naming the field.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from rest_framework.test import APIClient
from scipy import stats as sps

from apps.abtests.stats import MAX_ARMS

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "gbstats_cases.json").read_text())
DATASETS = FIXTURE["datasets"]
TOL = 1e-6
URL = "/api/v1/ab-tests/analyze/"
EXAMPLE_ARMS = [
    {"name": "control", "n": 53, "sum": 5, "sum_squares": 5},
    {"name": "b", "n": 47, "sum": 7, "sum_squares": 7},
]

pytestmark = pytest.mark.django_db


@pytest.fixture
def analyst(make_user):
    return make_user("Viewer")


@pytest.fixture
def api(analyst, client_for):
    return client_for(analyst)


def post(client, body):
    return client.post(URL, data=json.dumps(body), content_type="application/json")


def no_non_finite(value) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(no_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(no_non_finite(v) for v in value)
    return True


@pytest.mark.parametrize("case", FIXTURE["analysis"], ids=lambda c: c["id"])
def test_every_gbstats_case_through_the_endpoint(case, api):
    data = DATASETS[case["dataset"]]
    body = {"metric_type": data["metric_type"], "arms": data["arms"], **case["params"]}
    if data["expected_weights"] is not None:
        body["expected_weights"] = data["expected_weights"]
    response = post(api, body)
    assert response.status_code == 200, response.content[:500]
    ours = json.loads(response.content)  # strict JSON: a NaN would not even parse back as a number here
    assert no_non_finite(ours)
    expected = case["expected"]
    assert ours["srm"]["p_value"] == pytest.approx(expected["srm_p_value"], abs=TOL)
    assert ours["srm"]["mismatch"] is (expected["srm_p_value"] < 0.001)
    assert len(ours["comparisons"]) == len(expected["comparisons"])
    engine = case["params"]["engine"]
    for got, want in zip(ours["comparisons"], expected["comparisons"], strict=True):
        assert got["arm"] == want["arm"]
        if want["error"]:
            assert got["error"] and got["estimate"] is None and got["ci"] is None and got["significant"] is False
            continue
        assert got["error"] is None
        assert got["estimate"] == pytest.approx(want["estimate"], abs=TOL)
        assert got["ci"] == pytest.approx(want["ci"], abs=TOL)
        assert got["stddev"] == pytest.approx(want["stddev"], abs=TOL)
        if engine == "bayesian":
            assert got["p_value"] is None and got["dof"] is None
            assert got["chance_to_win"] == pytest.approx(want["chance_to_win"], abs=TOL)
            assert [got["risk"]["control"], got["risk"]["treatment"]] == pytest.approx(want["risk"], abs=TOL)
            continue
        assert got["chance_to_win"] is None and got["risk"] is None
        if want["p_value"] == 0:
            # gbstats' 1 - cdf underflows to 0; ours is the survival function, still positive.
            assert 0 < got["p_value"] < 1e-12
            if engine == "frequentist":
                t_stat = abs(want["estimate"] / want["stddev"])
                assert got["p_value"] == pytest.approx(2 * sps.t.sf(t_stat, want["dof"]), rel=1e-6)
        else:
            assert got["p_value"] == pytest.approx(want["p_value"], abs=TOL)
        assert got["significant"] is (got["p_value"] < case["params"].get("alpha", 0.05))


def test_the_documented_example(api):
    response = post(api, {"metric_type": "proportion", "arms": EXAMPLE_ARMS, "expected_weights": [0.5, 0.5],
                          "engine": "frequentist", "difference": "relative", "alpha": 0.05, "correction": "none"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"srm", "comparisons"}
    assert round(body["srm"]["p_value"], 4) == 0.5485 and body["srm"]["mismatch"] is False
    (b,) = body["comparisons"]
    assert set(b) == {"arm", "estimate", "ci", "p_value", "stddev", "dof", "chance_to_win", "risk", "significant",
                      "error"}
    assert b["arm"] == "b"
    assert round(b["estimate"], 4) == 0.5787
    assert [round(x, 3) for x in b["ci"]] == [-1.147, 2.305]
    assert round(b["p_value"], 3) == 0.507
    assert round(b["stddev"], 4) == 0.8686
    assert round(b["dof"], 2) == 89.23
    assert b["chance_to_win"] is None and b["risk"] is None and b["error"] is None and b["significant"] is False


def test_defaults_are_frequentist_relative_alpha_5_percent_no_correction(api):
    minimal = post(api, {"metric_type": "proportion", "arms": EXAMPLE_ARMS}).json()
    explicit = post(api, {"metric_type": "proportion", "arms": EXAMPLE_ARMS, "engine": "frequentist",
                          "difference": "relative", "alpha": 0.05, "correction": "none",
                          "sequential_tuning": 5000, "expected_weights": [0.5, 0.5]}).json()
    assert minimal == explicit
    assert minimal["comparisons"][0]["dof"] is not None  # the Welch test, not the sequential one


def test_bayesian_answer_has_chance_to_win_and_risk_not_p_value(api):
    response = post(api, {"metric_type": "proportion", "arms": EXAMPLE_ARMS, "engine": "bayesian",
                          "prior": {"mean": 0.0, "variance": 0.01}})
    assert response.status_code == 200
    (b,) = response.json()["comparisons"]
    assert b["p_value"] is None and b["dof"] is None
    assert 0.5 < b["chance_to_win"] < 1
    assert set(b["risk"]) == {"control", "treatment"}
    assert 0 < b["risk"]["treatment"] < b["risk"]["control"]
    flat = post(api, {"metric_type": "proportion", "arms": EXAMPLE_ARMS, "engine": "bayesian"}).json()
    # A tight prior at 0 pulls the lift towards 0.
    assert abs(b["estimate"]) < abs(flat["comparisons"][0]["estimate"])


def test_bh_is_the_benjamini_hochberg_correction(api):
    data = DATASETS["mean_4_arms"]
    answers = {}
    for correction in ("none", "bh", "benjamini-hochberg", "holm"):
        response = post(api, {"metric_type": "mean", "arms": data["arms"], "correction": correction})
        assert response.status_code == 200, response.content
        answers[correction] = [c["p_value"] for c in response.json()["comparisons"]]
    assert answers["bh"] == answers["benjamini-hochberg"]
    assert answers["bh"] != answers["none"] and answers["holm"] != answers["none"]
    assert all(adj >= raw for adj, raw in zip(answers["holm"], answers["none"], strict=True))


def test_zero_control_mean_relative_is_a_comparison_error_not_a_500(api):
    arms = [{"name": "control", "n": 100, "sum": 0, "sum_squares": 0}, {"name": "b", "n": 100, "sum": 3}]
    response = post(api, {"metric_type": "proportion", "arms": arms})
    assert response.status_code == 200
    (b,) = response.json()["comparisons"]
    assert b["error"].startswith("zero_control_mean")
    assert b["estimate"] is None and b["ci"] is None and b["p_value"] is None and b["significant"] is False


def test_extreme_sums_come_back_as_an_error_never_nan(api):
    arms = [{"name": "control", "n": 10**15, "sum": 1e150, "sum_squares": 1e300},
            {"name": "b", "n": 10**15, "sum": 2e150, "sum_squares": 1e300}]
    response = post(api, {"metric_type": "mean", "arms": arms, "engine": "bayesian"})
    assert response.status_code in (200, 400), response.content
    assert b"NaN" not in response.content and b"Infinity" not in response.content


def _arms(**changes):
    arms = [dict(arm) for arm in EXAMPLE_ARMS]
    for key, value in changes.items():
        index, field = key.split("__")
        if value is ...:
            del arms[int(index)][field]
        else:
            arms[int(index)][field] = value
    return arms


BASE = {"metric_type": "proportion", "arms": EXAMPLE_ARMS}
BAD_INPUT = [
    ("n below 2", {**BASE, "arms": _arms(**{"1__n": 1})}, "arms[1].n"),
    ("n not whole", {**BASE, "arms": _arms(**{"0__n": 52.5})}, "arms[0].n"),
    ("n a string", {**BASE, "arms": _arms(**{"0__n": "53"})}, "arms[0].n"),
    ("n a boolean", {**BASE, "arms": _arms(**{"1__n": True})}, "arms[1].n"),
    ("n missing", {**BASE, "arms": _arms(**{"1__n": ...})}, "arms[1].n"),
    ("sum missing", {**BASE, "arms": _arms(**{"0__sum": ...})}, "arms[0].sum"),
    ("name missing", {**BASE, "arms": _arms(**{"0__name": ...})}, "arms[0].name"),
    ("duplicate names", {**BASE, "arms": _arms(**{"1__name": "control"})}, "arms"),
    ("proportion sum_squares differs from sum", {**BASE, "arms": _arms(**{"1__sum_squares": 9})},
     "arms[1].sum_squares"),
    ("proportion sum above n", {**BASE, "arms": _arms(**{"1__sum": 48, "1__sum_squares": 48})}, "arms[1].sum"),
    ("mean sum_squares below sum^2/n", {"metric_type": "mean",
                                       "arms": [{"name": "a", "n": 10, "sum": 10, "sum_squares": 5},
                                                {"name": "b", "n": 10, "sum": 10, "sum_squares": 20}]},
     "arms[0].sum_squares"),
    ("mean sum_squares missing", {"metric_type": "mean", "arms": _arms(**{"1__sum_squares": ...})},
     "arms[1].sum_squares"),
    ("weights not summing to 1", {**BASE, "expected_weights": [0.5, 0.6]}, "expected_weights"),
    ("weights of the wrong count", {**BASE, "expected_weights": [0.2, 0.3, 0.5]}, "expected_weights"),
    ("negative weight", {**BASE, "expected_weights": [1.5, -0.5]}, "expected_weights[1]"),
    ("unknown engine", {**BASE, "engine": "magic"}, "engine"),
    ("unknown difference", {**BASE, "difference": "ratio"}, "difference"),
    ("unknown correction", {**BASE, "correction": "bonferroni"}, "correction"),
    ("correction under bayesian", {**BASE, "engine": "bayesian", "correction": "holm"}, "correction"),
    ("unknown metric type", {**BASE, "metric_type": "count"}, "metric_type"),
    ("metric type missing", {"arms": EXAMPLE_ARMS}, "metric_type"),
    ("arms missing", {"metric_type": "proportion"}, "arms"),
    ("arms not a list", {**BASE, "arms": {"name": "control"}}, "arms"),
    ("arm not an object", {**BASE, "arms": [EXAMPLE_ARMS[0], 7]}, "arms[1]"),
    ("one arm", {**BASE, "arms": EXAMPLE_ARMS[:1]}, "arms"),
    ("too many arms", {**BASE, "arms": [{"name": f"arm{i}", "n": 10, "sum": 1} for i in range(MAX_ARMS + 1)]},
     "arms"),
    ("alpha of 1", {**BASE, "alpha": 1}, "alpha"),
    ("alpha a string", {**BASE, "alpha": "0.05"}, "alpha"),
    ("prior without variance", {**BASE, "engine": "bayesian", "prior": {"mean": 0}}, "prior.variance"),
    ("prior with zero variance", {**BASE, "engine": "bayesian", "prior": {"variance": 0}}, "prior.variance"),
    ("prior for the frequentist engine", {**BASE, "prior": {"mean": 0, "variance": 0.1}}, "prior"),
    ("negative tuning", {**BASE, "engine": "sequential", "sequential_tuning": -5}, "sequential_tuning"),
    ("number beyond float", {**BASE, "arms": _arms(**{"0__sum": 10**400})}, "arms[0].sum"),
]


@pytest.mark.parametrize(("body", "field"), [case[1:] for case in BAD_INPUT], ids=[case[0] for case in BAD_INPUT])
def test_bad_input_is_a_400_naming_the_field(body, field, api):
    response = post(api, body)
    assert response.status_code == 400, response.content[:300]
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == "validation_failed"
    assert field in error["details"]["fields"], error
    assert error["message"].startswith(f"{field}: ")


@pytest.mark.parametrize("content", ["{not json", '{"metric_type": "mean", "arms": [], "alpha": NaN}', "[1, 2]"])
def test_malformed_bodies_are_400s(content, api):
    response = api.post(URL, data=content, content_type="application/json")
    assert response.status_code == 400
    assert set(response.json()["error"]) == {"code", "message", "details"}


def test_an_oversized_body_is_refused_before_it_is_read(api):
    arms = [{"name": "x" * 90 + str(i), "n": 10, "sum": 1} for i in range(800)]
    response = post(api, {"metric_type": "proportion", "arms": arms})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_anonymous_is_a_401():
    response = post(APIClient(), {"metric_type": "proportion", "arms": EXAMPLE_ARMS})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_api_key_and_jwt_callers_get_the_analysis(analyst, api_client):
    from apps.core.services import api_key_create

    key = api_key_create(user=analyst, name="analysis").raw_key
    by_key = api_client.post(URL, data={"metric_type": "proportion", "arms": EXAMPLE_ARMS}, format="json",
                             HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert by_key.status_code == 200
    tokens = api_client.post("/api/v1/auth/token/", {"username": analyst.username, "password": "pw-Secret-123"},
                             format="json").json()
    by_jwt = APIClient().post(URL, data={"metric_type": "proportion", "arms": EXAMPLE_ARMS}, format="json",
                              HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert by_jwt.status_code == 200
    assert by_jwt.json() == by_key.json()


def test_a_browser_session_is_enough(analyst):
    client = APIClient(enforce_csrf_checks=False)
    client.force_login(analyst)
    assert post(client, {"metric_type": "proportion", "arms": EXAMPLE_ARMS}).status_code == 200


def test_the_schema_documents_the_operation(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/v1/ab-tests/analyze/"]["post"]
    assert set(operation["responses"]) == {"200", "400", "401", "403", "413", "415"}
    body = operation["requestBody"]["content"]["application/json"]
    assert body["schema"]["$ref"].endswith("/MetricAnalysisRequest")
    assert body["examples"]
    request = schema["components"]["schemas"]["MetricAnalysisRequest"]
    assert set(request["required"]) == {"metric_type", "arms"}
    assert request["properties"]["arms"]["maxItems"] == MAX_ARMS
