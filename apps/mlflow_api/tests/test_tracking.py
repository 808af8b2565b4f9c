"""The MLflow tracking routes, in process: experiments, runs, logging and
search, with MLflow's error codes."""

import pytest

pytestmark = pytest.mark.django_db


def _experiment(mlflow, name="qc"):
    status, body = mlflow.post("experiments/create", name=name)
    assert status == 200, body
    return body["experiment_id"]


def _run(mlflow, experiment_id, **extra):
    status, body = mlflow.post("runs/create", experiment_id=experiment_id, start_time=1_700_000_000_000, **extra)
    assert status == 200, body
    return body["run"]


def test_experiment_create_get_and_duplicate(mlflow):
    experiment_id = _experiment(mlflow)
    assert experiment_id.isdigit()
    status, body = mlflow.get("experiments/get", experiment_id=experiment_id)
    assert status == 200
    assert body["experiment"]["name"] == "qc"
    assert body["experiment"]["artifact_location"] == f"mlflow-artifacts:/{experiment_id}"
    assert body["experiment"]["lifecycle_stage"] == "active"
    status, body = mlflow.get("experiments/get-by-name", experiment_name="qc")
    assert status == 200 and body["experiment"]["experiment_id"] == experiment_id
    status, body = mlflow.post("experiments/create", name="qc")
    assert status == 400
    assert body["error_code"] == "RESOURCE_ALREADY_EXISTS"


def test_missing_resources_are_resource_does_not_exist(mlflow):
    for route, params in [("experiments/get", {"experiment_id": "999999"}),
                          ("experiments/get", {"experiment_id": "0"}),
                          ("experiments/get-by-name", {"experiment_name": "nope"}),
                          ("runs/get", {"run_id": "999999"}),
                          ("runs/get", {"run_id": "not-a-number"})]:
        status, body = mlflow.get(route, **params)
        assert status == 404, (route, body)
        assert body["error_code"] == "RESOURCE_DOES_NOT_EXIST"
        assert body["message"]


def test_missing_parameter_is_invalid_parameter_value(mlflow):
    status, body = mlflow.get("experiments/get")
    assert status == 400
    assert body == {"error_code": "INVALID_PARAMETER_VALUE",
                    "message": "Missing value for required parameter 'experiment_id'."}


def test_experiment_rename_tag_and_search(mlflow):
    first = _experiment(mlflow, "qc-a")
    second = _experiment(mlflow, "turnaround")
    assert mlflow.post("experiments/update", experiment_id=first, new_name="qc-b")[0] == 200
    assert mlflow.post("experiments/set-experiment-tag", experiment_id=second, key="team", value="lims")[0] == 200
    status, body = mlflow.post("experiments/search", filter="name LIKE 'qc%'", max_results=10)
    assert status == 200
    assert [e["name"] for e in body["experiments"]] == ["qc-b"]
    status, body = mlflow.post("experiments/search", filter="tags.team = 'lims'")
    assert [e["experiment_id"] for e in body["experiments"]] == [second]
    status, body = mlflow.post("experiments/search", order_by=["name DESC"], max_results=1)
    assert [e["name"] for e in body["experiments"]] == ["turnaround"]
    assert body["next_page_token"]
    status, body = mlflow.post("experiments/search", order_by=["name DESC"], max_results=1,
                               page_token=body["next_page_token"])
    assert [e["name"] for e in body["experiments"]] == ["qc-b"]
    status, body = mlflow.post("experiments/update", experiment_id=second, new_name="qc-b")
    assert status == 400 and body["error_code"] == "RESOURCE_ALREADY_EXISTS"


def test_experiment_delete_is_refused_as_not_implemented(mlflow):
    experiment_id = _experiment(mlflow)
    status, body = mlflow.post("experiments/delete", experiment_id=experiment_id)
    assert status == 501 and body["error_code"] == "NOT_IMPLEMENTED"
    assert mlflow.get("experiments/get", experiment_id=experiment_id)[0] == 200


def test_run_lifecycle_and_nested_runs(mlflow):
    experiment_id = _experiment(mlflow)
    parent = _run(mlflow, experiment_id, run_name="search", tags=[{"key": "team", "value": "qc"}])
    info = parent["info"]
    assert info["run_name"] == "search" and info["status"] == "RUNNING"
    assert info["start_time"] == 1_700_000_000_000
    assert info["artifact_uri"] == f"mlflow-artifacts:/{experiment_id}/{info['run_id']}/artifacts"
    assert {"key": "team", "value": "qc"} in parent["data"]["tags"]
    child = _run(mlflow, experiment_id, tags=[{"key": "mlflow.parentRunId", "value": info["run_id"]}])
    assert child["info"]["run_name"]  # a generated name, as MLflow's server gives
    assert {"key": "mlflow.parentRunId", "value": info["run_id"]} in child["data"]["tags"]
    from apps.experiments.models import Run

    assert Run.objects.get(pk=child["info"]["run_id"]).parent_id == int(info["run_id"])

    status, body = mlflow.post("runs/update", run_id=info["run_id"], status="FINISHED", end_time=1_700_000_100_000,
                               run_name="search-done")
    assert status == 200, body
    assert body["run_info"]["status"] == "FINISHED"
    assert body["run_info"]["end_time"] == 1_700_000_100_000
    assert body["run_info"]["run_name"] == "search-done"


def test_log_metric_param_tag_and_history(mlflow):
    run_id = _run(mlflow, _experiment(mlflow))["info"]["run_id"]
    for step, value in enumerate([0.5, 0.7, 0.9]):
        assert mlflow.post("runs/log-metric", run_id=run_id, key="auc", value=value, timestamp=1_700_000_000_000 + step,
                           step=step)[0] == 200
    assert mlflow.post("runs/log-parameter", run_id=run_id, key="max_depth", value="5")[0] == 200
    assert mlflow.post("runs/set-tag", run_id=run_id, key="stage", value="dev")[0] == 200
    status, body = mlflow.get("metrics/get-history", run_id=run_id, metric_key="auc")
    assert status == 200
    assert [(m["step"], m["value"]) for m in body["metrics"]] == [(0, 0.5), (1, 0.7), (2, 0.9)]
    assert mlflow.get("metrics/get-history", run_id=run_id, metric_key="never")[1] == {"metrics": []}
    run = mlflow.get("runs/get", run_id=run_id)[1]["run"]
    assert run["data"]["metrics"] == [{"key": "auc", "value": 0.9, "timestamp": 1_700_000_000_002, "step": 2}]
    assert run["data"]["params"] == [{"key": "max_depth", "value": "5"}]
    assert {"key": "stage", "value": "dev"} in run["data"]["tags"]
    assert mlflow.post("runs/delete-tag", run_id=run_id, key="stage")[0] == 200
    run = mlflow.get("runs/get", run_id=run_id)[1]["run"]
    assert "stage" not in {t["key"] for t in run["data"]["tags"]}
    status, body = mlflow.post("runs/delete-tag", run_id=run_id, key="stage")
    assert status == 404 and body["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_set_tag_run_name_renames_the_run(mlflow):
    run_id = _run(mlflow, _experiment(mlflow), run_name="a")["info"]["run_id"]
    assert mlflow.post("runs/set-tag", run_id=run_id, key="mlflow.runName", value="b")[0] == 200
    run = mlflow.get("runs/get", run_id=run_id)[1]["run"]
    assert run["info"]["run_name"] == "b"
    assert {"key": "mlflow.runName", "value": "b"} in run["data"]["tags"]


def test_log_batch_limits_and_write_once_params(mlflow):
    run_id = _run(mlflow, _experiment(mlflow))["info"]["run_id"]
    ok = {"run_id": run_id, "params": [{"key": "lr", "value": "0.1"}],
          "metrics": [{"key": "loss", "value": 1.0, "timestamp": 1, "step": 0}], "tags": [{"key": "t", "value": "v"}]}
    assert mlflow.post("runs/log-batch", **ok)[0] == 200
    # The same param value again is accepted; another value is refused.
    assert mlflow.post("runs/log-batch", run_id=run_id, params=[{"key": "lr", "value": "0.1"}])[0] == 200
    status, body = mlflow.post("runs/log-batch", run_id=run_id, params=[{"key": "lr", "value": "0.2"}])
    assert status == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "lr" in body["message"]
    # MLflow's limits: 1000 metrics, 100 params, 100 tags, 1000 in total.
    too_many = [{"key": f"m{i}", "value": 1.0, "timestamp": 1, "step": 0} for i in range(1001)]
    status, body = mlflow.post("runs/log-batch", run_id=run_id, metrics=too_many)
    assert status == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE"
    params = [{"key": f"p{i}", "value": "x"} for i in range(101)]
    assert mlflow.post("runs/log-batch", run_id=run_id, params=params)[1]["error_code"] == "INVALID_PARAMETER_VALUE"
    total = {"metrics": too_many[:950], "params": params[:60]}
    status, body = mlflow.post("runs/log-batch", run_id=run_id, **total)
    assert status == 400 and "at most 1000" in body["message"]
    from apps.experiments.models import Metric, Param

    # Refused batches wrote nothing.
    assert Metric.objects.filter(run_id=run_id).count() == 1
    assert Param.objects.filter(run_id=run_id).count() == 1


def test_run_search_translates_mlflow_filters_and_order(mlflow):
    experiment_id = _experiment(mlflow)
    ids = []
    for index, (auc, depth) in enumerate([(0.6, "3"), (0.8, "5"), (0.9, "5")]):
        run_id = _run(mlflow, experiment_id, run_name=f"r{index}")["info"]["run_id"]
        mlflow.post("runs/log-batch", run_id=run_id, metrics=[{"key": "auc", "value": auc, "timestamp": 1, "step": 0}],
                    params=[{"key": "depth", "value": depth}], tags=[{"key": "kind", "value": "tree"}])
        ids.append(run_id)
    mlflow.post("runs/update", run_id=ids[2], status="FINISHED")

    def search(filter_string="", order_by=()):
        status, body = mlflow.post("runs/search", experiment_ids=[experiment_id], filter=filter_string,
                                   order_by=list(order_by))
        assert status == 200, body
        return [r["info"]["run_id"] for r in body.get("runs", [])]

    assert search("metrics.auc > 0.7", ["metrics.auc DESC"]) == [ids[2], ids[1]]
    assert search("params.depth = '5' and tags.kind = 'tree'", ["metrics.auc ASC"]) == [ids[1], ids[2]]
    assert search("attributes.status = 'FINISHED'") == [ids[2]]
    assert search("attributes.status != 'FINISHED'", ["attributes.run_name"]) == [ids[0], ids[1]]
    assert search("run_name = 'r1'") == [ids[1]]
    assert search("tags.mlflow.runName = 'r0'") == [ids[0]]
    assert search(f"attributes.run_id = '{ids[1]}'") == [ids[1]]
    assert search("", ["attributes.start_time ASC", "metrics.auc DESC"])[0] in ids
    status, body = mlflow.post("runs/search", experiment_ids=[experiment_id], filter="metrics.auc >")
    assert status == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE"


def test_run_search_pages(mlflow):
    experiment_id = _experiment(mlflow)
    ids = {_run(mlflow, experiment_id)["info"]["run_id"] for _ in range(3)}
    seen, token = [], None
    while True:
        body = mlflow.post("runs/search", experiment_ids=[experiment_id], max_results=2,
                           **({"page_token": token} if token else {}))[1]
        seen += [r["info"]["run_id"] for r in body["runs"]]
        token = body.get("next_page_token")
        if not token:
            break
    assert sorted(seen) == sorted(ids)


def test_bulk_interval_history_downsamples_each_run(mlflow, make_user, mlflow_as):
    from apps.core.permissions import make_private
    from apps.experiments.models import Experiment

    experiment_id = _experiment(mlflow)
    ids = []
    for _ in range(2):
        run_id = _run(mlflow, experiment_id)["info"]["run_id"]
        metrics = [{"key": "loss", "value": 1.0 / (step + 1), "timestamp": 1, "step": step} for step in range(500)]
        assert mlflow.post("runs/log-batch", run_id=run_id, metrics=metrics)[0] == 200
        ids.append(run_id)
    response = mlflow.client.get("/api/2.0/mlflow/metrics/get-history-bulk-interval",
                                 {"run_ids": ids, "metric_key": "loss", "max_results": 50})
    assert response.status_code == 200
    points = response.json()["metrics"]
    for run_id in ids:
        steps = [p["step"] for p in points if p["run_id"] == run_id]
        assert len(steps) == 50 and steps[0] == 0 and steps[-1] == 499
    response = mlflow.client.get("/api/2.0/mlflow/metrics/get-history-bulk-interval",
                                 {"run_ids": ids[:1], "metric_key": "loss", "max_results": 600, "start_step": 10,
                                  "end_step": 19})
    assert [p["step"] for p in response.json()["metrics"]] == list(range(10, 20))
    make_private(Experiment.objects.get(pk=experiment_id))
    other = mlflow_as(make_user("Data Scientist", username="other"))
    response = other.client.get("/api/2.0/mlflow/metrics/get-history-bulk-interval",
                                {"run_ids": ids, "metric_key": "loss"})
    assert response.status_code == 404
