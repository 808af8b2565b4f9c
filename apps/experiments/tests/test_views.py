"""The experiments pages through Django's test client (the browser flows
with a real Chromium are in tests/test_experiments_browser.py)."""

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from apps.experiments import selectors
from apps.experiments.models import Metric, TrainingJob
from apps.experiments.services import artifact_log, run_log_batch

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser_client(client, scientist):
    client.force_login(scientist)
    return client


@pytest.fixture
def runs(scientist, make_run):
    made = []
    for index, (estimator, auc) in enumerate([("random_forest", 0.91), ("logistic_regression", 0.72),
                                              ("random_forest", 0.83)]):
        run = make_run(name=f"r{index}")
        run_log_batch(actor=scientist, run_id=run.pk,
                      metrics=[{"key": "test_roc_auc", "value": auc},
                               *[{"key": "loss", "value": 1.0 / (s + 1), "step": s} for s in range(20)]],
                      params=[{"key": "estimator", "value": estimator}, {"key": "max_depth", "value": str(index)}])
        made.append(run)
    return made


def test_experiment_list_and_create(browser_client):
    page = browser_client.get(reverse("experiments:list"))
    assert page.status_code == 200 and b"New experiment" in page.content
    response = browser_client.post(reverse("experiments:list"), {"name": "tat-model", "description": "turnaround"})
    assert response.status_code == 302
    assert b"tat-model" in browser_client.get(reverse("experiments:list")).content


def test_experiment_page_filters_and_sorts_on_the_server(browser_client, experiment, runs):
    url = reverse("experiments:detail", args=[experiment.pk])
    page = browser_client.get(url, {"filter": "params.estimator = 'random_forest'",
                                    "order_by": "metrics.test_roc_auc ASC"}).content.decode()
    assert page.index("r2 #") < page.index("r0 #")
    assert "r1 #" not in page
    page = browser_client.get(url, {"filter": "metrics.test_roc_auc > 0.8 or params.max_depth = 1",
                                    "order_by": "metrics.test_roc_auc DESC"}).content.decode()
    assert page.index("r0 #") < page.index("r2 #") < page.index("r1 #")
    error = browser_client.get(url, {"filter": "metrics.test_roc_auc >> 1"}).content.decode()
    assert "position 22" in error and 'id="filter-error"' in error


def test_experiment_page_pages_with_a_token(browser_client, experiment, runs, monkeypatch):
    from apps.experiments import views

    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    url = reverse("experiments:detail", args=[experiment.pk])
    first = browser_client.get(url, {"order_by": "metrics.test_roc_auc DESC"}).content.decode()
    assert "r0 #" in first and "r2 #" in first and "r1 #" not in first
    next_link = first.split('id="next-page"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    second = browser_client.get(url + next_link).content.decode()
    assert "r1 #" in second and "r0 #" not in second


def test_run_page_shows_params_metrics_charts_and_plot_previews(browser_client, scientist, runs):
    import io

    run = runs[0]
    artifact_log(actor=scientist, run=run, fileobj=io.BytesIO(b'{"data": [], "layout": {}}'),
                 path="plots/roc_curve.json")
    page = browser_client.get(reverse("experiments:run", args=[run.pk])).content.decode()
    assert "random_forest" in page and "test_roc_auc" in page
    assert 'class="chart metric-chart"' in page and "key=loss" in page
    assert 'class="chart plot-preview"' in page and "inline=1" in page
    chart = browser_client.get(reverse("experiments:metric-chart", args=[run.pk]), {"key": "loss"}).json()
    assert chart["data"][0]["y"][0] == 1.0 and len(chart["data"][0]["x"]) == 20
    assert browser_client.get(reverse("experiments:metric-chart", args=[run.pk]), {"key": "nope"}).status_code == 404


def test_compare_across_experiments(browser_client, scientist, runs):
    from apps.experiments.services import experiment_create, run_create

    other = experiment_create(actor=scientist, name="other-experiment")
    foreign = run_create(actor=scientist, experiment=other, name="foreign")
    run_log_batch(actor=scientist, run_id=foreign.pk, metrics=[{"key": "test_roc_auc", "value": 0.5}],
                  params=[{"key": "estimator", "value": "svm"}, {"key": "C", "value": "2.0"}])
    ids = f"{runs[0].pk},{runs[1].pk},{foreign.pk}"
    page = browser_client.get(reverse("experiments:compare"), {"runs": ids}).content.decode()
    assert "other-experiment" in page and "qc-model" in page
    assert 'id="param-diff"' in page and "differs" in page
    assert 'data-plotly="overlay-fig"' in page and 'data-plotly="parallel-fig"' in page
    parallel = _figure(page, "parallel-fig")
    # SVG lines over normalised axes (no WebGL parcoords): one trace per run,
    # axis names as annotations, truncated, in full on hover.
    assert {trace["type"] for trace in parallel["data"]} == {"scatter"}
    assert [t["name"] for t in parallel["data"] if t.get("showlegend") is not False] == [
        f"r0 #{runs[0].pk}", f"r1 #{runs[1].pk}", f"foreign #{foreign.pk}"]
    names = [a["hovertext"] for a in parallel["layout"]["annotations"] if a.get("hovertext")]
    assert names[-1] == "test_roc_auc" and "estimator" in names
    assert "title" not in parallel["layout"] or not parallel["layout"]["title"].get("text")


def _figure(page: str, element_id: str) -> dict:
    return json.loads(page.split(f'id="{element_id}" type="application/json">')[1].split("</script>", maxsplit=1)[0])


def test_compare_draws_one_line_per_run_with_a_legend(browser_client, runs):
    ids = ",".join(str(run.pk) for run in runs)
    page = browser_client.get(reverse("experiments:compare"), {"runs": ids, "history": "loss"}).content.decode()
    overlay = _figure(page, "overlay-fig")
    assert [trace["name"] for trace in overlay["data"]] == [f"r{i} #{run.pk}" for i, run in enumerate(runs)]
    assert overlay["layout"]["showlegend"] is True
    assert "title" not in overlay["layout"] or not overlay["layout"]["title"].get("text")  # the card's heading is


def test_compare_draws_cross_validation_folds_as_a_box_per_run(browser_client, scientist, runs):
    for index, run in enumerate(runs[:2]):
        run_log_batch(actor=scientist, run_id=run.pk, metrics=[
            *[{"key": "cv_roc_auc", "value": 0.7 + index / 10 + fold / 100, "step": fold} for fold in range(5)],
            {"key": "cv_roc_auc_mean", "value": 0.72 + index / 10}])
    ids = ",".join(str(run.pk) for run in runs)
    page = browser_client.get(reverse("experiments:compare"), {"runs": ids}).content.decode()
    folds = _figure(page, "cv-fig")
    assert [trace["type"] for trace in folds["data"]] == ["box", "box"]
    assert [len(trace["y"]) for trace in folds["data"]] == [5, 5]
    assert 'id="cv-select"' in page
    # The folds are not offered as a curve over steps.
    overlay = _figure(page, "overlay-fig")
    assert all(trace["name"] for trace in overlay["data"])
    assert '<option value="cv_roc_auc"' not in page.split('id="history-select"')[1].split("</select>")[0]


def test_a_fold_metric_on_the_run_page_is_a_bar_per_fold(browser_client, scientist, make_run):
    run = make_run(name="cv")
    run_log_batch(actor=scientist, run_id=run.pk,
                  metrics=[{"key": "cv_accuracy", "value": 0.8 + fold / 100, "step": fold} for fold in range(4)])
    figure = browser_client.get(reverse("experiments:metric-chart", args=[run.pk]), {"key": "cv_accuracy"}).json()
    assert figure["data"][0]["type"] == "bar"
    assert figure["data"][0]["x"] == ["fold 0", "fold 1", "fold 2", "fold 3"]


def test_the_runs_table_has_a_column_chooser_and_scrolls_inside_its_card(browser_client, runs, experiment):
    page = browser_client.get(reverse("experiments:detail", args=[experiment.pk])).content.decode()
    assert 'class="table-scroll"' in page and 'id="column-chooser"' in page
    assert 'data-column="params.estimator"' in page and 'data-column="metrics.test_roc_auc"' in page
    assert "experiments/runs-table.js" in page


def test_compare_hides_runs_the_user_cannot_see(client, make_user, scientist, runs, experiment):
    from apps.core.permissions import make_private

    make_private(experiment)
    outsider = make_user("Data Scientist", username="outsider")
    client.force_login(outsider)
    page = client.get(reverse("experiments:compare"), {"runs": str(runs[0].pk)}).content.decode()
    assert "random_forest" not in page and "not found or not visible" in page
    assert client.get(reverse("experiments:run", args=[runs[0].pk])).status_code == 404


def test_training_form_queues_a_job_and_shows_errors(browser_client, experiment, lab_version):
    url = reverse("experiments:training-new")
    form = browser_client.get(url, {"experiment": experiment.pk}).content.decode()
    assert str(lab_version) .split(" v")[0] in form and "hist_gradient_boosting" in form
    data = {"experiment": experiment.pk, "dataset_version": lab_version.pk, "target_column": "", "task": "",
            "estimator": "random_forest", "hyperparameters": '{"n_estimators": 5}', "test_size": 0.2,
            "validation_size": 0.1, "seed": 1, "stratify": "on", "cv_folds": 0, "search_kind": "none",
            "search_space": "", "n_iter": 8, "search_metric": "", "run_name": "from the form"}
    bad = browser_client.post(url, {**data, "hyperparameters": '{"n_trees": 5}'}).content.decode()
    assert "n_trees" in bad and not TrainingJob.objects.exists()
    bad_json = browser_client.post(url, {**data, "hyperparameters": "{oops"}).content.decode()
    assert "not valid JSON" in bad_json
    response = browser_client.post(url, data)
    job = TrainingJob.objects.get()
    assert response.status_code == 302 and response.url == reverse("experiments:training-job", args=[job.pk])
    assert job.target_column == "qc_pass" and job.hyperparameters == {"n_estimators": 5}
    page = browser_client.get(response.url).content.decode()
    assert "data-progress-url" in page and 'id="cancel-job"' in page
    browser_client.post(reverse("experiments:training-cancel", args=[job.pk]), {"next": "https://evil.example/"})
    job.refresh_from_db()
    assert job.status == "cancelled"
    assert "cancelled" in browser_client.get(reverse("experiments:training-list")).content.decode()


def test_aggregated_history_keeps_extremes_and_ends(scientist, make_run, monkeypatch):
    from apps.experiments.selectors import tracking

    monkeypatch.setattr(tracking, "HISTORY_EXACT_LIMIT", 1000)
    run = make_run()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    values = [((i * 37) % 101) / 100.0 for i in range(5000)]
    values[1234], values[4321] = 9.0, -9.0
    Metric.objects.bulk_create([Metric(run=run, key="loss", value=v, step=i, timestamp=start + timedelta(seconds=i))
                                for i, v in enumerate(values)], batch_size=1000)
    history = selectors.metric_history(run=run, key="loss", max_points=200)
    assert history["method"] == "minmax+lttb" and history["total"] == 5000
    assert len(history["points"]) == 200
    assert history["points"][0]["step"] == 0 and history["points"][-1]["step"] == 4999
    got = [p["value"] for p in history["points"]]
    assert max(got) == 9.0 and min(got) == -9.0
    steps = [p["step"] for p in history["points"]]
    assert steps == sorted(steps)


@pytest.mark.postgres
@pytest.mark.slow
def test_a_million_point_history_charts_quickly(browser_client, scientist, make_run):
    from django.db import transaction

    from apps.experiments.services import run_finish
    from apps.experiments.services.metrics import _append_history

    run = make_run()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for chunk in range(10):
        rows = [("loss", 1.0 / (1 + i) + (i % 1000) / 1e5, i, start + timedelta(milliseconds=i))
                for i in range(chunk * 100_000, (chunk + 1) * 100_000)]
        with transaction.atomic():
            _append_history(run.pk, rows)
    run_log_batch(actor=scientist, run_id=run.pk, metrics=[{"key": "loss", "value": 0.5, "step": 1_000_000}])
    url = reverse("experiments:metric-chart", args=[run.pk])
    began = time.perf_counter()
    figure = browser_client.get(url, {"key": "loss", "max_points": 1000}).json()
    elapsed = time.perf_counter() - began
    assert len(figure["data"][0]["x"]) == 1000
    assert "1,000,001 points" in figure["layout"]["title"]["text"]
    assert figure["data"][0]["y"][0] == 1.0 and figure["data"][0]["x"][-1] == 1_000_000
    # One aggregate query rather than a million rows through Python; the
    # bound is loose because CI machines are busy.
    assert elapsed < 10.0, elapsed
    history = selectors.metric_history(run=run, key="loss", max_points=1000)
    assert history["method"] == "minmax+lttb" and history["total"] == 1_000_001
    # An ended run's histories are cached: the next chart costs nothing.
    run_finish(actor=scientist, run=run, status="finished")
    browser_client.get(url, {"key": "loss", "max_points": 1000})
    began = time.perf_counter()
    again = browser_client.get(url, {"key": "loss", "max_points": 1000}).json()
    assert time.perf_counter() - began < 1.0
    assert again["data"][0]["x"] == figure["data"][0]["x"]


def test_overview_card(scientist, make_user, runs):
    card = selectors.overview_card(user=scientist)
    stats = dict(card["stats"])
    assert card["url"] == reverse("experiments:list")
    assert stats["Experiments"] == 1 and stats["Runs"] == 3 and stats["Running"] == 3
    assert selectors.overview_card(user=make_user()) is None


def test_a_finished_run_with_a_model_links_to_registering_it(browser_client, client, scientist, make_user, runs):
    import io

    from apps.experiments.services import run_finish

    run = runs[0]
    url = reverse("experiments:run", args=[run.pk])
    assert 'id="register-model"' not in browser_client.get(url).content.decode()  # no model yet
    artifact_log(actor=scientist, run=run, fileobj=io.BytesIO(b"model bytes"), path="model/model.skops")
    assert 'id="register-model"' not in browser_client.get(url).content.decode()  # still running
    run_finish(actor=scientist, run=run, status="finished")
    page = browser_client.get(url).content.decode()
    assert f'{reverse("registry:register_from_run")}?run={run.pk}' in page
    client.force_login(make_user("Viewer", username="looker"))  # may look, may not register
    assert 'id="register-model"' not in client.get(url).content.decode()
