"""Values the API fuzz found reaching a query or a service unchecked, each
now a 400 with the error shape instead of a 500: numbers too large for the
database in bodies and query strings, and a metric key that is an object."""

import pytest

HUGE = 10**25

CASES = [
    ("post", "/api/v1/runs/{run}/log-batch/", {"metrics": [{"key": {"a": 1}, "value": 1}]}),
    ("get", "/api/v1/training-jobs/?parent_job_id=-1.189326623993305e%2B68", None),
    ("get", f"/api/v1/runs/?experiment_id={HUGE}", None),
    ("get", f"/api/v1/dataset-versions/?dataset={HUGE}", None),
    ("post", "/api/v1/runs/", {"experiment_id": HUGE}),
    ("post", "/api/v1/runs/", {"experiment": "fuzz-experiment", "dataset_version_id": HUGE}),
    ("post", "/api/v1/models/sample-qc/versions/", {"run_id": HUGE}),
    ("put", "/api/v1/models/sample-qc/aliases/champion/", {"version": HUGE}),
    ("post", "/api/v1/endpoints/sample-qc/deployments/", {"model_version_id": HUGE}),
    ("post", "/api/v1/endpoints/sample-qc/feedback/", {"feedback": [{"request_id": "r1", "index": HUGE, "label": 1}]}),
]


@pytest.mark.parametrize(("method", "url", "body"), CASES, ids=[f"{m} {u}" for m, u, _ in CASES])
def test_out_of_range_input_is_a_400(method, url, body, api_objects, db):
    from rest_framework.test import APIClient

    client = APIClient(headers=api_objects.headers["superuser"])
    url = url.format(run=api_objects.ids["runs"])
    response = getattr(client, method)(url, data=body, format="json") if body is not None else client.get(url)
    assert response.status_code == 400, (response.status_code, response.content[:300])
    assert set(response.json()["error"]) == {"code", "message", "details"}
