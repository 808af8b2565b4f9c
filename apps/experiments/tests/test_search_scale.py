"""What keeps run search fast at scale: the experiment denormalised onto
params, latest metrics and tags (and kept in step by every writer), and the
permission guard when a search is scoped through its sort key's join."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.experiments.models import LatestMetric, Param, Run, RunTag
from apps.experiments.selectors import run_search
from apps.experiments.services import experiment_create, run_create, run_log_batch

pytestmark = pytest.mark.django_db

T0 = timezone.now() - timedelta(days=1)


def _rows_out_of_step():
    """Rows whose experiment differs from their run's."""
    found = []
    for model in (Param, LatestMetric, RunTag):
        for row in model.objects.select_related("run"):
            if row.experiment_id != row.run.experiment_id:
                found.append((model.__name__, row.pk))
    return found


def test_writers_keep_experiment_id_in_step(scientist, experiment):
    other = experiment_create(user=scientist, name="other")
    for exp in (experiment, other):
        run = run_create(user=scientist, experiment=exp, name=f"in-{exp.name}", tags={"team": "qc"})
        run_log_batch(user=scientist, run_id=run.pk, metrics=[{"key": "auc", "value": 0.5, "step": 0}],
                      params=[{"key": "estimator", "value": "svm"}], tags=[{"key": "stage", "value": "dev"}])
        # A later batch updates the latest value and overwrites a tag.
        run_log_batch(user=scientist, run_id=run.pk, metrics=[{"key": "auc", "value": 0.6, "step": 1}],
                      tags=[{"key": "stage", "value": "review"}])
        assert set(Param.objects.filter(run=run).values_list("experiment_id", flat=True)) == {exp.pk}
        assert set(LatestMetric.objects.filter(run=run).values_list("experiment_id", flat=True)) == {exp.pk}
        assert set(RunTag.objects.filter(run=run).values_list("experiment_id", flat=True)) == {exp.pk}
    assert _rows_out_of_step() == []


def test_rows_written_without_experiment_get_their_runs(scientist, experiment):
    # Writers outside the services (other apps' factories, admin, bulk
    # loads) that name only the run still store the run's experiment.
    other = experiment_create(user=scientist, name="other")
    run = run_create(user=scientist, experiment=other, name="r")
    LatestMetric.objects.create(run=run, key="auc", value=0.9, step=0, timestamp=timezone.now())
    RunTag.objects.update_or_create(run=run, key="worker", defaults={"value": "w1"})
    Param.objects.bulk_create([Param(run_id=run.pk, key="a", value="1")])
    unloaded = Run.objects.only("pk").get(pk=run.pk)
    Param.objects.bulk_create([Param(run=unloaded, key="b", value="2")])
    assert set(Param.objects.filter(run=run).values_list("experiment_id", flat=True)) == {other.pk}
    assert LatestMetric.objects.get(run=run).experiment_id == other.pk
    assert RunTag.objects.get(run=run, key="worker").experiment_id == other.pk
    assert _rows_out_of_step() == []


@pytest.fixture
def many_runs(scientist, experiment):
    def _make(count, start=0):
        for index in range(start, start + count):
            run = run_create(user=scientist, experiment=experiment, name=f"run-{index}",
                             start_time=T0 + timedelta(minutes=index))
            run_log_batch(user=scientist, run_id=run.pk,
                          metrics=[{"key": "auc", "value": 0.5 + index / 100}, {"key": "loss", "value": 1.0}],
                          params=[{"key": "estimator", "value": "random_forest" if index % 2 else "svm"}],
                          tags=[{"key": "team", "value": "qc"}])
    return _make


def test_search_scoped_through_the_sort_join_never_shows_hidden_runs(scientist, make_user):
    """When the first sort key is required by the filter, the search is
    restricted to the visible experiments through that key's rows; even if
    a row claimed the wrong experiment, the run's own experiment decides."""
    from apps.core.permissions import make_private

    owner = make_user("Data Scientist", username="owner")
    hidden = experiment_create(user=owner, name="hidden")
    shared = experiment_create(user=owner, name="shared")
    make_private(hidden)
    for exp in (hidden, shared):
        run = run_create(user=owner, experiment=exp, name=f"in-{exp.name}")
        run_log_batch(user=owner, run_id=run.pk, metrics=[{"key": "auc", "value": 0.9}])
    LatestMetric.objects.filter(run__experiment=hidden).update(experiment_id=shared.pk)  # out of step on purpose
    for filter_string in ("metrics.auc > 0", ""):
        page = run_search(user=scientist, filter_string=filter_string, order_by=["metrics.auc DESC"])
        assert [run.name for run in page.runs] == ["in-shared"]
    both = run_search(user=owner, filter_string="metrics.auc > 0", order_by=["metrics.auc DESC"])
    assert sorted(run.name for run in both.runs) == ["in-hidden", "in-shared"]


@pytest.mark.parametrize("order_by", [["metrics.auc DESC"], ["metrics.auc ASC"], ["params.estimator DESC",
                                                                                    "metrics.auc DESC"]])
def test_pagination_with_filter_on_the_sort_key(scientist, many_runs, order_by):
    many_runs(9)
    text = "metrics.auc > 0.52 and params.estimator in ('random_forest', 'svm') and tags.team is not null"
    expected = [r.pk for r in run_search(user=scientist, filter_string=text, order_by=order_by,
                                         max_results=1000).runs]
    assert len(expected) == 6
    seen, token = [], None
    while True:
        page = run_search(user=scientist, filter_string=text, order_by=order_by, max_results=2, page_token=token)
        seen.extend(r.pk for r in page.runs)
        token = page.next_page_token
        if token is None:
            break
    assert seen == expected
