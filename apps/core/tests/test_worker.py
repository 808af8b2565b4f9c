"""A real worker process over the real broker (Redis in CI, the filesystem
transport otherwise) executes a task and its result lands in the database."""

import pytest
from django_celery_results.models import TaskResult

from apps.core.tasks import ping


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_real_worker_runs_a_task_and_stores_its_result(live_worker):
    result = ping.delay("hello from the test")
    row = live_worker.wait_for(lambda: TaskResult.objects.filter(task_id=result.id, status="SUCCESS").first(),
                               timeout=60, what="the ping task result")
    assert row.result == '"hello from the test"'
    assert row.task_name == "apps.core.tasks.ping"
    assert "session@" in (row.worker or "")


def test_task_functions_run_directly_in_unit_tests():
    assert ping.run("x") == "x"


def test_celery_is_never_eager():
    from celery_app import app

    assert app.conf.task_always_eager is False
    assert {q.name for q in app.conf.task_queues} == {"default", "training", "monitoring", "rollouts"}
    assert app.conf.task_serializer == "json"
    assert app.conf.result_backend == "django-db"
