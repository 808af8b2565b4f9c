"""The client against a live server: runs, buffering, flush on exit, failure
handling, 4xx errors, search paging, metric history and artifacts."""

from __future__ import annotations

import threading
import time

import pytest
from client_testkit import wait_until

from mlops_client import BatchRejectedError, MlopsApiError, MlopsClient, MlopsError, RetryPolicy

pytestmark = pytest.mark.django_db(transaction=True)

FAST_RETRY = RetryPolicy(max_attempts=3, backoff_base=0.05, backoff_max=0.2)


def make_client(server, **kwargs) -> MlopsClient:
    kwargs.setdefault("retry", FAST_RETRY)
    return MlopsClient(server.url, api_key=server.api_key, **kwargs)


def history_values(client: MlopsClient, run_id: int, key: str) -> list[float]:
    return [point["value"] for point in client.get_metric_history(run_id, key)]


def stored_points(client: MlopsClient, run_id: int, key: str) -> int:
    """How many points of ``key`` the server holds (0 before the first)."""
    try:
        return len(client.get_metric_history(run_id, key))
    except MlopsApiError as exc:
        if exc.status == 404:
            return 0
        raise


def test_run_block_records_params_metrics_tags_and_artifacts(tracking_server, tmp_path):
    client = make_client(tracking_server)
    report = tmp_path / "report.txt"
    report.write_text("library prep QC: 42 samples\n")

    with client.start_run(experiment="qc-model", name="rf-baseline", tags={"team": "library-prep"}) as run:
        run.log_params({"estimator": "random_forest", "n_estimators": 200})
        run.log_param("max_depth", 8)
        for step in range(5):
            run.log_metric("val_auc", 0.80 + step * 0.01, step=step)
        run.log_metrics({"test_accuracy": 0.9, "test_f1": 0.85})
        run.set_tag("stage", "review")
        artifact = run.log_artifact(report, artifact_path="reports")

    assert artifact["path"] == "reports/report.txt"
    stored = client.get_run(run.id)
    assert stored["status"] == "finished"
    assert stored["name"] == "rf-baseline"
    assert stored["params"] == {"estimator": "random_forest", "n_estimators": "200", "max_depth": "8"}
    assert stored["metrics"]["val_auc"] == pytest.approx(0.84)
    assert stored["metrics"]["test_f1"] == pytest.approx(0.85)
    assert stored["tags"]["team"] == "library-prep"
    assert stored["tags"]["stage"] == "review"
    assert history_values(client, run.id, "val_auc") == pytest.approx([0.80, 0.81, 0.82, 0.83, 0.84])

    listed = client.list_artifacts(run.id)
    assert [a["path"] for a in listed] == ["reports/report.txt"]
    downloaded = client.download_artifact(run.id, "reports/report.txt", tmp_path / "copy.txt")
    assert downloaded.read_text() == report.read_text()
    into_dir = client.download_artifact(run.id, "reports/report.txt", tmp_path)
    assert into_dir == tmp_path / "report.txt"


def test_start_run_gets_or_creates_the_experiment_by_name(tracking_server):
    client = make_client(tracking_server)
    with client.start_run(experiment="turnaround-time") as first:
        pass
    with client.start_run(experiment="turnaround-time") as second:
        pass
    assert first.experiment_id == second.experiment_id
    assert client.get_experiment_by_name("turnaround-time")["id"] == first.experiment_id
    assert client.get_experiment_by_name("no-such-experiment") is None


def test_many_metric_calls_become_few_log_batch_requests(tracking_server, counting_session):
    # A long flush interval so that only the size trigger and the exit flush
    # send: 2500 points are exactly 3 requests (1000 + 1000 + 500).
    client = make_client(tracking_server, session=counting_session, flush_interval=60)
    with client.start_run(experiment="buffering") as run:
        for step in range(2500):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
    assert counting_session.count("POST", "/log-batch/") == 3
    history = client.get_metric_history(run.id, "loss")
    assert [point["step"] for point in history] == list(range(2500))


def test_a_trickle_of_metrics_is_sent_within_the_flush_interval(tracking_server, counting_session):
    client = make_client(tracking_server, session=counting_session, flush_interval=0.3)
    with client.start_run(experiment="trickle") as run:
        run.log_metric("throughput", 12.5, step=1)
        run.log_metric("throughput", 13.0, step=2)
        # Still inside the block: the background thread sends on its own.
        wait_until(lambda: stored_points(client, run.id, "throughput") == 2, timeout=10,
                   what="the buffered points to reach the server")
        assert counting_session.count("POST", "/log-batch/") == 1
    assert client.get_run(run.id)["status"] == "finished"


def test_no_metric_is_lost_when_threads_log_concurrently(tracking_server):
    client = make_client(tracking_server, flush_interval=0.2)
    threads, per_thread = 4, 1500
    with client.start_run(experiment="concurrency") as run:
        def log(worker: int) -> None:
            for i in range(per_thread):
                run.log_metric(f"worker_{worker}", float(i), step=i)

        pool = [threading.Thread(target=log, args=(n,)) for n in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
    for worker in range(threads):
        assert history_values(client, run.id, f"worker_{worker}") == [float(i) for i in range(per_thread)]


def test_exception_in_the_block_marks_the_run_failed_and_propagates(tracking_server):
    client = make_client(tracking_server)
    with pytest.raises(RuntimeError, match="sequencer offline"), client.start_run(experiment="failures") as run:
        run.log_metric("val_auc", 0.7, step=0)
        raise RuntimeError("sequencer offline")
    stored = client.get_run(run.id)
    assert stored["status"] == "failed"
    assert "RuntimeError: sequencer offline" in stored["status_reason"]
    # What was logged before the failure still reached the server.
    assert history_values(client, run.id, "val_auc") == [0.7]


def test_ctrl_c_marks_the_run_killed(tracking_server):
    client = make_client(tracking_server)
    with pytest.raises(KeyboardInterrupt), client.start_run(experiment="failures") as run:
        raise KeyboardInterrupt
    assert client.get_run(run.id)["status"] == "killed"


def test_a_rejected_batch_is_raised_on_the_next_call_and_fails_the_run(tracking_server):
    client = make_client(tracking_server)
    run = client.start_run(experiment="rejections")
    # Someone else wrote the param first; the server keeps params write-once.
    client.log_batch(run.id, params=[{"key": "learning_rate", "value": "0.1"}])
    run.log_param("learning_rate", 0.2)
    run.log_metric("loss", 0.5, step=0)  # in the same batch, so discarded with it
    with pytest.raises(BatchRejectedError) as caught:
        run.flush()
    error = caught.value
    assert 400 <= error.status < 500
    assert "learning_rate" in str(error)
    assert error.discarded == {"metrics": 1, "params": 1, "tags": 0}
    # Raised once: logging goes on afterwards.
    run.log_metric("loss", 0.4, step=1)
    run.end()
    assert client.get_run(run.id)["status"] == "finished"
    assert history_values(client, run.id, "loss") == [0.4]


def test_a_rejection_pending_at_exit_is_raised_and_the_run_marked_failed(tracking_server):
    client = make_client(tracking_server, flush_interval=60)
    with pytest.raises(BatchRejectedError, match="learning_rate"), client.start_run(experiment="rejections") as run:
        client.log_batch(run.id, params=[{"key": "learning_rate", "value": "0.1"}])
        run.log_param("learning_rate", 0.2)
    stored = client.get_run(run.id)
    assert stored["status"] == "failed"
    assert "logging failed" in stored["status_reason"]


def test_write_once_params_are_checked_at_the_call(tracking_server):
    client = make_client(tracking_server)
    with client.start_run(experiment="params") as run:
        run.log_param("estimator", "ridge")
        run.log_param("estimator", "ridge")  # the same value again is fine
        with pytest.raises(ValueError, match="write-once"):
            run.log_param("estimator", "svm")
        with pytest.raises(ValueError, match="finite"):
            run.log_metric("loss", float("nan"))
        with pytest.raises(ValueError, match="number"):
            run.log_metric("loss", "low")
    assert client.get_run(run.id)["params"] == {"estimator": "ridge"}


def test_api_errors_carry_status_code_and_message(tracking_server):
    client = make_client(tracking_server)
    with pytest.raises(MlopsApiError) as caught:
        client.get_run(987654)
    assert caught.value.status == 404
    assert caught.value.code == "not_found"
    assert "HTTP 404" in str(caught.value) and "/runs/987654/" in str(caught.value)

    with pytest.raises(MlopsApiError) as caught:
        client.create_run(experiment_id=987654)
    assert caught.value.status == 404

    wrong_key = MlopsClient(tracking_server.url, api_key="tsk_00000000.not-a-key", retry=FAST_RETRY)
    with pytest.raises(MlopsApiError) as caught:
        wrong_key.get_experiment_by_name("qc-model")
    assert caught.value.status in (401, 403)
    assert caught.value.code == "invalid_api_key"


def test_logging_after_the_run_ended_is_refused(tracking_server):
    client = make_client(tracking_server)
    with client.start_run(experiment="ended") as run:
        run.log_metric("loss", 1.0)
    with pytest.raises(MlopsError, match="ended"):
        run.log_metric("loss", 0.5)


def test_search_follows_pages_in_order(tracking_server, counting_session):
    client = make_client(tracking_server, session=counting_session)
    experiment = client.create_experiment("search-paging")
    aucs = [0.61, 0.95, 0.72, 0.88, 0.55, 0.91, 0.79]
    for index, auc in enumerate(aucs):
        with client.start_run(experiment_id=experiment["id"], name=f"run-{index}") as run:
            run.log_metric("test_roc_auc", auc)
            run.log_param("estimator", "random_forest" if index % 2 == 0 else "svm")
    other = client.create_experiment("search-paging-other")
    with client.start_run(experiment_id=other["id"], name="elsewhere") as run:
        run.log_metric("test_roc_auc", 0.99)

    before = counting_session.count("POST", "/runs/search/")
    found = client.search_runs(experiment["id"], filter="metrics.test_roc_auc > 0.6",
                               order_by=["metrics.test_roc_auc DESC"], page_size=2)
    assert [run["metrics"]["test_roc_auc"] for run in found] == [0.95, 0.91, 0.88, 0.79, 0.72, 0.61]
    assert counting_session.count("POST", "/runs/search/") - before == 3

    limited = client.search_runs(experiment["id"], order_by="metrics.test_roc_auc DESC", max_results=3, page_size=2)
    assert [run["name"] for run in limited] == ["run-1", "run-5", "run-3"]

    both = client.search_runs([experiment["id"], other["id"]],
                              filter="metrics.test_roc_auc > 0.9 or params.estimator = 'svm'",
                              order_by=["metrics.test_roc_auc DESC"])
    assert [run["name"] for run in both] == ["elsewhere", "run-1", "run-5", "run-3"]

    with pytest.raises(MlopsApiError) as caught:
        client.search_runs(experiment["id"], filter="metrics.test_roc_auc >> 0.5")
    assert caught.value.status == 400


def test_metric_history_downsamples_on_request(tracking_server):
    client = make_client(tracking_server, flush_interval=60)
    with client.start_run(experiment="history") as run:
        for step in range(1200):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
    full = client.get_metric_history(run.id, "loss")
    assert len(full) == 1200
    small = client.get_metric_history(run.id, "loss", max_points=100)
    assert 3 <= len(small) <= 100
    assert small[0]["step"] == 0 and small[-1]["step"] == 1199


def test_log_batch_splits_at_the_server_limits(tracking_server, counting_session):
    client = make_client(tracking_server, session=counting_session)
    run = client.start_run(experiment="direct")
    now = int(time.time() * 1000)
    metrics = [{"key": "m", "value": float(i), "step": i, "timestamp": now} for i in range(2300)]
    params = [{"key": f"p{i}", "value": str(i)} for i in range(150)]
    assert client.log_batch(run.id, metrics=metrics, params=params) == {"metrics": 2300, "params": 150, "tags": 0}
    assert counting_session.count("POST", "/log-batch/") == 3
    run.end()
    assert len(client.get_run(run.id)["params"]) == 150


SCRIPT_WITHOUT_WITH = """
import os, sys
from mlops_client import MlopsClient

client = MlopsClient(os.environ["MLOPS_URL"], api_key=os.environ["MLOPS_API_KEY"], flush_interval=60)
run = client.start_run(experiment="scripts", name=sys.argv[1])
for step in range(300):
    run.log_metric("loss", 1 / (step + 1), step=step)
if sys.argv[1] == "crashes":
    raise ValueError("bad sample sheet")
"""


@pytest.mark.parametrize(("name", "status"), [("exits", "finished"), ("crashes", "failed")])
def test_runs_left_open_are_flushed_and_ended_when_the_program_exits(tracking_server, name, status):
    import subprocess
    import sys

    from apps.experiments.models import Run

    result = subprocess.run(
        [sys.executable, "-c", SCRIPT_WITHOUT_WITH, name],
        env={"MLOPS_URL": tracking_server.url, "MLOPS_API_KEY": tracking_server.api_key, "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert (result.returncode == 0) == (status == "finished"), result.stderr
    run = Run.objects.get(name=name)
    assert run.status == status
    assert run.metrics.count() == 300
    if status == "failed":
        assert "ValueError: bad sample sheet" in run.status_reason


def test_a_colleagues_client_cannot_write_into_another_persons_run(tracking_server, make_user, tmp_path):
    from apps.core.services import api_key_create

    owner = make_client(tracking_server)
    with owner.start_run(experiment="shared-qc") as run:
        run.log_metric("loss", 1.0)
        colleague_user = make_user("Data Scientist", username="client_colleague")
        colleague = MlopsClient(tracking_server.url, api_key=api_key_create(user=colleague_user, name="c").raw_key,
                                retry=FAST_RETRY)
        assert colleague.get_run(run.id)["id"] == run.id  # the lab reads it
        with pytest.raises(MlopsApiError) as caught:
            colleague.log_batch(run.id, metrics=[{"key": "test_roc_auc", "value": 0.999}])
        assert caught.value.status == 403 and caught.value.code == "not_run_owner"
        indices = tmp_path / "test_indices.json"
        indices.write_text("[1, 2, 3]")
        with pytest.raises(MlopsApiError) as caught:
            colleague.log_artifact(run.id, indices, "evaluation")
        assert caught.value.status == 403
    assert stored_points(owner, run.id, "test_roc_auc") == 0
