"""In a real browser: the training job page's header follows the job as it
starts (status, start time, worker), not only its progress bar."""

import pytest
from django.utils import timezone

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_header_follows_the_job_as_it_starts(page, browser_login, make_user, monkeypatch,
                                              make_lab_version):
    from apps.experiments import tasks
    from apps.experiments.models import TrainingJob

    # The test moves the job itself: keep it from a worker another test started.
    monkeypatch.setattr(tasks.training_job_run, "apply_async", lambda *args, **kwargs: None)
    from apps.experiments.services import experiment_create, training_job_create

    scientist = make_user("Data Scientist", username="header_sci")
    experiment = experiment_create(actor=scientist, name="header-exp")
    job = training_job_create(actor=scientist, experiment=experiment, dataset_version=make_lab_version(scientist),
                              estimator="random_forest")
    browser_login("header_sci")
    page.goto(f"/experiments/training/{job.pk}/")
    assert page.locator("#job-status").inner_text() == "queued"
    assert page.locator("#job-worker").inner_text() == "—"

    started = timezone.now().replace(microsecond=0)
    TrainingJob.objects.filter(pk=job.pk).update(status="running", started_at=started, worker="celery@trainer-1",
                                                 progress=0.3, progress_message="Fitting")
    page.locator("#job-status.badge.running").wait_for()  # the poll runs every second (no eval: the CSP)
    assert page.locator("#job-status").get_attribute("class") == "badge running"
    assert page.locator("#job-worker").inner_text() == "celery@trainer-1"
    assert page.locator("#job-started").inner_text() == f"{started:%Y-%m-%d %H:%M:%S}"
    assert page.locator("[data-progress-text]").inner_text() == "Fitting (30%)"
    assert page.errors == []
