"""The tracking API end to end through DRF: experiments, runs, log-batch
(write-once params, append-only metrics, all-or-nothing), finish, artifacts
and histories."""

import io
import time

import pytest

from apps.experiments.models import LatestMetric, Metric, Param, Run, RunTag

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(client_for, scientist):
    return client_for(scientist)


def _run(api, **extra):
    body = {"experiment": "qc-model", "name": "r1", **extra}
    response = api.post("/api/v1/runs/", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_create_experiment_then_find_it_by_name(api):
    response = api.post("/api/v1/experiments/", {"name": "turnaround", "description": "TAT",
                                                 "tags": {"team": "qc"}}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "turnaround" and body["tags"] == {"team": "qc"} and body["owner"] == "sci"
    found = api.get("/api/v1/experiments/", {"name": "turnaround"}).json()
    assert [e["id"] for e in found["results"]] == [body["id"]]
    api.post("/api/v1/runs/", {"experiment_id": body["id"]}, format="json")
    assert api.get(f"/api/v1/experiments/{body['id']}/").json()["run_count"] == 1


def test_duplicate_experiment_name_is_a_conflict_with_the_error_shape(api, experiment):
    response = api.post("/api/v1/experiments/", {"name": "qc-model"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "duplicate_name"


def test_viewer_cannot_create_experiments(client_for, make_user):
    response = client_for(make_user("Viewer")).post("/api/v1/experiments/", {"name": "x"}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_create_run_by_experiment_name_and_read_it_back(api, experiment):
    run = _run(api, tags={"team": "qc"}, source_version="abc123", start_time=1_700_000_000_000)
    assert run["status"] == "running" and run["experiment_id"] == experiment.pk
    assert run["tags"] == {"team": "qc"} and run["params"] == {} and run["metrics"] == {}
    assert run["start_time"].startswith("2023-11-14T22:13:20")
    detail = api.get(f"/api/v1/runs/{run['id']}/").json()
    assert detail["source_version"] == "abc123" and detail["artifacts_count"] == 0


def test_log_batch_writes_everything_and_moves_latest_values(api, experiment):
    run = _run(api)
    batch = {
        "metrics": [{"key": "loss", "value": 1.0 / (s + 1), "step": s, "timestamp": 1_700_000_000_000 + s}
                    for s in range(10)] + [{"key": "acc", "value": 0.9}],
        "params": [{"key": "lr", "value": "0.01"}, {"key": "depth", "value": 5}],
        "tags": [{"key": "stage", "value": "dev"}],
    }
    response = api.post(f"/api/v1/runs/{run['id']}/log-batch/", batch, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {"metrics": 11, "params": 2, "tags": 1}
    detail = api.get(f"/api/v1/runs/{run['id']}/").json()
    assert detail["params"] == {"depth": "5", "lr": "0.01"}
    assert detail["metrics"] == {"acc": 0.9, "loss": 0.1}
    assert detail["tags"] == {"stage": "dev"}
    # An older step logged later does not move the latest value back.
    api.post(f"/api/v1/runs/{run['id']}/log-batch/", {"metrics": [{"key": "loss", "value": 9.0, "step": 3}]},
             format="json")
    assert LatestMetric.objects.get(run_id=run["id"], key="loss").value == pytest.approx(0.1)
    assert Metric.objects.filter(run_id=run["id"], key="loss").count() == 11  # appended, never replaced


def test_params_are_write_once(api, experiment):
    run = _run(api)
    url = f"/api/v1/runs/{run['id']}/log-batch/"
    assert api.post(url, {"params": [{"key": "lr", "value": "0.01"}]}, format="json").status_code == 200
    assert api.post(url, {"params": [{"key": "lr", "value": "0.01"}]}, format="json").status_code == 200
    response = api.post(url, {"metrics": [{"key": "m", "value": 1}],
                              "params": [{"key": "other", "value": "x"}, {"key": "lr", "value": "0.02"}]},
                        format="json")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "param_conflict" and error["details"]["key"] == "lr"
    assert error["details"]["item"] == "params[1]"
    # Nothing of the refused batch was written.
    assert not Param.objects.filter(run_id=run["id"], key="other").exists()
    assert not Metric.objects.filter(run_id=run["id"], key="m").exists()


def test_a_bad_item_rejects_the_whole_batch_and_is_named(api, experiment):
    run = _run(api)
    metrics = [{"key": "loss", "value": 0.5, "step": i} for i in range(30)]
    metrics[17] = {"key": "loss", "value": "high", "step": 17}
    response = api.post(f"/api/v1/runs/{run['id']}/log-batch/",
                        {"metrics": metrics, "params": [{"key": "a", "value": "1"}],
                         "tags": [{"key": "t", "value": "v"}]}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["details"]["item"] == "metrics[17]" and "metrics[17]" in error["message"]
    assert Metric.objects.filter(run_id=run["id"]).count() == 0
    assert not Param.objects.filter(run_id=run["id"]).exists()
    assert not RunTag.objects.filter(run_id=run["id"]).exists()


@pytest.mark.parametrize("item, field", [
    ({"key": "bad key!", "value": 1}, "key"),
    ({"key": "x", "value": 1, "step": 1.5}, "step"),
    ({"key": "x", "value": True}, "value"),
    ({"key": "x", "value": 1, "timestamp": "yesterday"}, None),
])
def test_invalid_metric_items(api, experiment, item, field):
    run = _run(api)
    response = api.post(f"/api/v1/runs/{run['id']}/log-batch/", {"metrics": [item]}, format="json")
    assert response.status_code == 400
    details = response.json()["error"]["details"]
    assert details["item"].startswith("metrics[0]")
    if field:
        assert details["field"] == field


def test_non_finite_values_are_refused_clearly(experiment, scientist, make_run):
    from apps.core.errors import ValidationFailed
    from apps.experiments.services import run_log_batch

    run = make_run()
    with pytest.raises(ValidationFailed) as caught:
        run_log_batch(actor=scientist, run_id=run.pk, metrics=[{"key": "loss", "value": float("nan")}])
    assert caught.value.details["reason"] == "non_finite"


def test_batch_limits(api, experiment):
    run = _run(api)
    response = api.post(f"/api/v1/runs/{run['id']}/log-batch/",
                        {"metrics": [{"key": "m", "value": 1, "step": i} for i in range(1001)]}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["details"]["limit"] == 1000


def test_finish_run_and_refuse_more_metrics(api, experiment):
    run = _run(api)
    response = api.post(f"/api/v1/runs/{run['id']}/finish/", {"status": "failed", "reason": "OOM"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "failed" and body["status_reason"] == "OOM" and body["end_time"]
    again = api.post(f"/api/v1/runs/{run['id']}/finish/", {"status": "failed"}, format="json")
    assert again.status_code == 200
    conflict = api.post(f"/api/v1/runs/{run['id']}/finish/", {"status": "finished"}, format="json")
    assert conflict.status_code == 409
    refused = api.post(f"/api/v1/runs/{run['id']}/log-batch/", {"metrics": [{"key": "m", "value": 1}]},
                       format="json")
    assert refused.status_code == 409
    tags_ok = api.post(f"/api/v1/runs/{run['id']}/log-batch/", {"tags": [{"key": "reviewed", "value": "yes"}]},
                       format="json")
    assert tags_ok.status_code == 200


def test_finishing_publishes_an_event(experiment, scientist, make_run, django_capture_on_commit_callbacks):
    from apps.core import events
    from apps.experiments.services import run_finish

    seen = []

    def handler(event, payload):
        seen.append((event, payload))

    events.subscribe("experiments.run.finished", handler)
    try:
        run = make_run()
        with django_capture_on_commit_callbacks(execute=True):
            run_finish(actor=scientist, run=run, status="finished")
    finally:
        events.unsubscribe("experiments.run.finished", handler)
    assert seen == [("experiments.run.finished", {"run_id": run.pk, "status": "finished"})]


def test_artifact_upload_list_download(api, experiment):
    run = _run(api)
    url = f"/api/v1/runs/{run['id']}/artifacts/"
    upload = io.BytesIO(b'{"data": []}')
    upload.name = "fig.json"
    response = api.post(url, {"file": upload, "path": "plots/fig.json"}, format="multipart")
    assert response.status_code == 201, response.content
    artifact = response.json()
    assert artifact["path"] == "plots/fig.json" and artifact["size_bytes"] == 12
    listed = api.get(url).json()
    assert [a["path"] for a in listed] == ["plots/fig.json"]
    download = api.get(artifact["download_url"])
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == b'{"data": []}'
    again = io.BytesIO(b"x")
    again.name = "fig.json"
    assert api.post(url, {"file": again, "path": "plots/fig.json"}, format="multipart").status_code == 409
    evil = io.BytesIO(b"x")
    evil.name = "x"
    assert api.post(url, {"file": evil, "path": "../../etc/passwd"}, format="multipart").status_code == 400
    missing = api.get(f"/api/v1/runs/{run['id']}/artifacts/download/", {"path": "nope"})
    assert missing.status_code == 404


def test_metric_history_full_and_downsampled(api, experiment):
    run = _run(api)
    url = f"/api/v1/runs/{run['id']}/log-batch/"
    for start in range(0, 3000, 1000):
        api.post(url, {"metrics": [{"key": "loss", "value": (i % 97) / 97.0, "step": i}
                                   for i in range(start, start + 1000)]}, format="json")
    full = api.get(f"/api/v1/runs/{run['id']}/metrics/loss/history/").json()
    assert full["total"] == 3000 and len(full["points"]) == 3000 and not full["downsampled"]
    assert [p["step"] for p in full["points"][:3]] == [0, 1, 2]
    small = api.get(f"/api/v1/runs/{run['id']}/metrics/loss/history/", {"max_points": 100}).json()
    assert small["downsampled"] and len(small["points"]) == 100
    assert small["points"][0]["step"] == 0 and small["points"][-1]["step"] == 2999
    assert max(p["value"] for p in small["points"]) == pytest.approx(96 / 97)
    assert api.get(f"/api/v1/runs/{run['id']}/metrics/nope/history/").status_code == 404
    assert api.get(f"/api/v1/runs/{run['id']}/metrics/loss/history/", {"max_points": "x"}).status_code == 400


def test_metric_keys_with_slashes_work_in_the_history_url(api, experiment):
    run = _run(api)
    api.post(f"/api/v1/runs/{run['id']}/log-batch/", {"metrics": [{"key": "val/loss", "value": 1.0}]},
             format="json")
    body = api.get(f"/api/v1/runs/{run['id']}/metrics/val%2Floss/history/").json()
    assert body["key"] == "val/loss" and body["total"] == 1


def test_other_users_without_access_get_404(client_for, make_user, api, experiment):
    from apps.core.permissions import make_private

    run = _run(api)
    make_private(experiment)
    outsider = client_for(make_user("Data Scientist", username="outsider"))
    assert outsider.get(f"/api/v1/runs/{run['id']}/").status_code == 404
    response = outsider.post(f"/api/v1/runs/{run['id']}/log-batch/", {"metrics": [{"key": "m", "value": 1}]},
                             format="json")
    assert response.status_code == 404
    assert outsider.get("/api/v1/runs/").json()["count"] == 0


def test_viewer_can_read_but_not_write(client_for, make_user, api, experiment):
    run = _run(api)
    viewer = client_for(make_user("Viewer"))
    assert viewer.get(f"/api/v1/runs/{run['id']}/").status_code == 200
    response = viewer.post(f"/api/v1/runs/{run['id']}/log-batch/", {"metrics": [{"key": "m", "value": 1}]},
                           format="json")
    assert response.status_code == 403


def test_list_endpoints_have_fixed_query_counts(api, experiment, make_run, django_assert_num_queries, scientist):
    from apps.experiments.services import run_log_batch

    for i in range(3):
        run = make_run(name=f"r{i}")
        run_log_batch(actor=scientist, run_id=run.pk, metrics=[{"key": "m", "value": i}],
                      params=[{"key": "p", "value": str(i)}], tags=[{"key": "t", "value": "x"}])

    def count_for(path):
        api.get(path)  # warm per-process caches (content types)
        from django.db import connection, reset_queries
        from django.test.utils import CaptureQueriesContext

        reset_queries()  # the client's request_started signal empties the log mid-capture otherwise
        with CaptureQueriesContext(connection) as ctx:
            assert api.get(path).status_code == 200
        return len(ctx.captured_queries)

    baseline_runs = count_for("/api/v1/runs/")
    baseline_experiments = count_for("/api/v1/experiments/")
    for i in range(3, 8):
        run = make_run(name=f"r{i}")
        run_log_batch(actor=scientist, run_id=run.pk, metrics=[{"key": "m", "value": i}],
                      params=[{"key": "p", "value": str(i)}])
    with django_assert_num_queries(baseline_runs):
        assert len(api.get("/api/v1/runs/").json()["results"]) == 8
    with django_assert_num_queries(baseline_experiments):
        api.get("/api/v1/experiments/")
    assert baseline_runs <= 12


def test_log_batch_of_1000_metrics_is_quick(api, experiment):
    run = _run(api)
    url = f"/api/v1/runs/{run['id']}/log-batch/"
    body = {"metrics": [{"key": f"m{i % 10}", "value": float(i), "step": i // 10} for i in range(1000)]}
    api.post(url, body, format="json")
    start = time.perf_counter()
    response = api.post(url, {"metrics": [{**m, "step": m["step"] + 100} for m in body["metrics"]]}, format="json")
    elapsed = time.perf_counter() - start
    assert response.status_code == 200
    assert Run.objects.get(pk=run["id"]).metrics.count() == 2000
    assert elapsed < 2.0
