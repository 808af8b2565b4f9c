"""Retries, backoff and an unreachable server, over real sockets: the client
talks to the live server through a proxy that injects 503/429 answers or
drops connections."""

from __future__ import annotations

import itertools

import pytest
from client_testkit import wait_until

from mlops_client import MlopsApiError, MlopsClient, MlopsConnectionError, RetryPolicy

pytestmark = pytest.mark.django_db(transaction=True)


def proxied_client(server, proxy, **kwargs) -> MlopsClient:
    kwargs.setdefault("retry", RetryPolicy(max_attempts=4, backoff_base=0.2, backoff_max=1.0))
    return MlopsClient(proxy.url, api_key=server.api_key, **kwargs)


def test_log_batch_is_retried_with_backoff_after_503s(tracking_server, faulty_proxy):
    client = proxied_client(tracking_server, faulty_proxy)
    faulty_proxy.fail_next("/log-batch/", (503, {}), (503, {}))
    with client.start_run(experiment="retries") as run:
        for step in range(10):
            run.log_metric("loss", 1.0 - step / 10, step=step)
    attempts = faulty_proxy.requests_to("/log-batch/")
    assert [a.answer for a in attempts] == ["(503, {})", "(503, {})", "forward"]
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(attempts)]
    # Waits of at least half of 0.2 s, then of 0.4 s (jittered exponential backoff).
    assert gaps[0] >= 0.1
    assert gaps[1] >= 0.2
    history = client.get_metric_history(run.id, "loss")
    assert len(history) == 10
    assert client.get_run(run.id)["status"] == "finished"


def test_retry_after_is_honoured_on_429(tracking_server, faulty_proxy):
    client = proxied_client(tracking_server, faulty_proxy)
    faulty_proxy.fail_next("/runs/", (429, {"Retry-After": "1"}))
    run = client.start_run(experiment="throttled")
    first, second = faulty_proxy.requests_to("/api/v1/runs/")[:2]
    assert second.at - first.at >= 0.95
    run.end()


def test_other_4xx_answers_are_not_retried(tracking_server, faulty_proxy):
    client = proxied_client(tracking_server, faulty_proxy)
    with pytest.raises(MlopsApiError) as caught:
        client.get_run(424242)
    assert caught.value.status == 404
    assert len(faulty_proxy.requests_to("/runs/424242/")) == 1


def test_persistent_5xx_surfaces_after_the_last_attempt(tracking_server, faulty_proxy):
    client = proxied_client(tracking_server, faulty_proxy, retry=RetryPolicy(max_attempts=3, backoff_base=0.05))
    faulty_proxy.fail_next("/experiments/", *[(503, {})] * 5)
    with pytest.raises(MlopsApiError) as caught:
        client.get_experiment_by_name("qc-model")
    assert caught.value.status == 503
    assert len(faulty_proxy.requests_to("/experiments/")) == 3


def test_metrics_logged_while_the_server_is_down_arrive_when_it_is_back(tracking_server, faulty_proxy):
    client = proxied_client(tracking_server, faulty_proxy, flush_interval=0.1,
                            retry=RetryPolicy(max_attempts=2, backoff_base=0.05, backoff_max=0.1))
    run = client.start_run(experiment="outage")
    faulty_proxy.set_down(True)
    for step in range(50):
        run.log_metric("loss", step / 100, step=step)
    # The sender gives up a round of retries; the next call says so, once.
    wait_until(lambda: run._sender._unreachable is not None, what="the sender to find the server down")
    with pytest.raises(MlopsConnectionError):
        run.log_metric("loss", 0.5, step=50)
    run.log_metric("loss", 0.51, step=51)  # buffered: the error was raised once
    faulty_proxy.set_down(False)
    run.end()
    steps = [point["step"] for point in client.get_metric_history(run.id, "loss")]
    assert steps == [*range(50), 51]
    assert client.get_run(run.id)["status"] == "finished"


def test_memory_is_bounded_while_the_server_is_unreachable(tracking_server, faulty_proxy):
    client = proxied_client(tracking_server, faulty_proxy, flush_interval=0.05, max_buffered_metrics=1000,
                            retry=RetryPolicy(max_attempts=2, backoff_base=0.05, backoff_max=0.1))
    run = client.start_run(experiment="outage")
    faulty_proxy.set_down(True)
    with pytest.raises(MlopsConnectionError) as caught:
        for step in range(5000):
            try:
                run.log_metric("loss", 0.1, step=step)
            except MlopsConnectionError as exc:
                if "max_buffered_metrics" in str(exc):
                    raise
                # The once-only "server unreachable" notice; keep logging.
    assert "1000 metrics are buffered" in str(caught.value)
    assert run._sender.buffered_count() == 1000
    faulty_proxy.set_down(False)
    run.end()
    assert len(client.get_metric_history(run.id, "loss")) == 1000


def test_the_end_of_a_run_reports_what_could_not_be_sent(tracking_server, faulty_proxy):
    client = proxied_client(tracking_server, faulty_proxy, flush_interval=60,
                            retry=RetryPolicy(max_attempts=2, backoff_base=0.05, backoff_max=0.1))
    run = client.start_run(experiment="outage")
    run.log_metric("loss", 0.3)
    faulty_proxy.set_down(True)
    with pytest.raises(MlopsConnectionError, match="1 buffered items could not be sent"):
        run.end()


def test_backoff_grows_exponentially_and_is_capped():
    policy = RetryPolicy(backoff_base=0.5, backoff_max=4.0)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (8, 4.0)]:
        waits = [policy.delay(attempt) for _ in range(200)]
        assert min(waits) >= ceiling / 2
        assert max(waits) <= ceiling
    assert policy.delay(1, retry_after=3.0) >= 3.0
    assert policy.delay(1, retry_after=60.0) == 4.0


def test_flush_reports_an_outage_instead_of_waiting_for_it_to_end(tracking_server, faulty_proxy):
    client = proxied_client(tracking_server, faulty_proxy, flush_interval=60,
                            retry=RetryPolicy(max_attempts=2, backoff_base=0.05, backoff_max=0.1))
    run = client.start_run(experiment="outage")
    faulty_proxy.set_down(True)
    run.log_metric("loss", 0.3)
    with pytest.raises(MlopsConnectionError):
        run.flush(timeout=30)
    # A second flush during the same outage fails the same way, not forever.
    with pytest.raises(MlopsConnectionError, match="1 buffered items could not be sent"):
        run.flush(timeout=30)
    faulty_proxy.set_down(False)
    run.flush(timeout=30)
    run.end()
    assert [p["value"] for p in client.get_metric_history(run.id, "loss")] == [0.3]
