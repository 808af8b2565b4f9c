"""What keeps run search fast at scale: the experiment denormalised onto
params, latest metrics and tags (and kept in step by every writer), a fixed
number of queries per page, the hand-built response matching the
serializer, and the permission guard when a search is scoped through its
sort key's join."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.experiments.models import LatestMetric, Param, Run, RunTag
from apps.experiments.selectors import attach_details, run_search
from apps.experiments.services import experiment_create, run_create, run_finish, run_log_batch

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
    other = experiment_create(actor=scientist, name="other")
    for exp in (experiment, other):
        run = run_create(actor=scientist, experiment=exp, name=f"in-{exp.name}", tags={"team": "qc"})
        run_log_batch(actor=scientist, run_id=run.pk, metrics=[{"key": "auc", "value": 0.5, "step": 0}],
                      params=[{"key": "estimator", "value": "svm"}], tags=[{"key": "stage", "value": "dev"}])
        # A later batch updates the latest value and overwrites a tag.
        run_log_batch(actor=scientist, run_id=run.pk, metrics=[{"key": "auc", "value": 0.6, "step": 1}],
                      tags=[{"key": "stage", "value": "review"}])
        assert set(Param.objects.filter(run=run).values_list("experiment_id", flat=True)) == {exp.pk}
        assert set(LatestMetric.objects.filter(run=run).values_list("experiment_id", flat=True)) == {exp.pk}
        assert set(RunTag.objects.filter(run=run).values_list("experiment_id", flat=True)) == {exp.pk}
    assert _rows_out_of_step() == []


def test_rows_written_without_experiment_get_their_runs(scientist, experiment):
    # Writers outside the services (other apps' factories, admin, bulk
    # loads) that name only the run still store the run's experiment.
    other = experiment_create(actor=scientist, name="other")
    run = run_create(actor=scientist, experiment=other, name="r")
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
            run = run_create(actor=scientist, experiment=experiment, name=f"run-{index}",
                             start_time=T0 + timedelta(minutes=index))
            run_log_batch(actor=scientist, run_id=run.pk,
                          metrics=[{"key": "auc", "value": 0.5 + index / 100}, {"key": "loss", "value": 1.0}],
                          params=[{"key": "estimator", "value": "random_forest" if index % 2 else "svm"}],
                          tags=[{"key": "team", "value": "qc"}])
    return _make


def test_search_page_takes_four_queries_whatever_its_size(scientist, many_runs, django_assert_num_queries):
    # Two for the permissions (the user's role, the visible experiments),
    # the page, and the page's details (params, metrics, tags, artifact
    # counts, training jobs) in one query: nothing per run.
    kwargs = {"filter_string": "metrics.auc > 0.5 and params.estimator = 'random_forest'",
              "order_by": ["metrics.auc DESC"], "max_results": 100}
    many_runs(2)
    run_search(user=scientist, **kwargs)  # warms the content-type cache
    with django_assert_num_queries(4):
        assert len(run_search(user=scientist, **kwargs).runs) == 1
    many_runs(20, start=2)
    with django_assert_num_queries(4) as captured:
        page = run_search(user=scientist, **kwargs)
    # The summary columns are read for the page only, not for every match
    # while the page query sorts.
    page_sql = next(q["sql"] for q in captured.captured_queries if 'FROM "experiments_run"' in q["sql"])
    assert "experiments_artifact" not in page_sql and "experiments_trainingjob" not in page_sql
    assert [run.name for run in page.runs] == [f"run-{i}" for i in range(21, 0, -2)]
    assert page.runs[0].param_map == {"estimator": "random_forest"}
    assert page.runs[0].metric_map == {"auc": pytest.approx(0.71), "loss": 1.0}
    assert page.runs[0].tag_map == {"team": "qc"}
    assert page.runs[0].artifact_count == 0 and page.runs[0].training_job_id is None


def test_search_api_query_count_does_not_grow_with_the_page(client_for, scientist, many_runs,
                                                            django_assert_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    api = client_for(scientist)
    body = {"filter": "metrics.auc > 0 and params.estimator != 'x'", "order_by": ["metrics.auc DESC"]}
    many_runs(2)
    with CaptureQueriesContext(connection) as few:
        assert len(api.post("/api/v1/runs/search/", body, format="json").json()["runs"]) == 2
    many_runs(30, start=2)
    with django_assert_num_queries(len(few)):
        assert len(api.post("/api/v1/runs/search/", body, format="json").json()["runs"]) == 32


def test_search_response_matches_the_run_serializer(client_for, scientist, experiment, many_runs):
    from apps.experiments.api.serializers import RunSerializer, run_payloads

    many_runs(3)
    parent = Run.objects.get(name="run-0")
    child = run_create(actor=scientist, experiment=experiment, name="child", parent=parent, note="n",
                       source_version="abc")
    run_finish(actor=scientist, run=child, status="failed")
    runs = attach_details(list(Run.objects.select_related("user").order_by("id")))
    assert run_payloads(runs) == RunSerializer(runs, many=True).data
    assert list(run_payloads(runs)[0]) == RunSerializer.Meta.fields
    response = client_for(scientist).post("/api/v1/runs/search/", {"order_by": ["attributes.run_id ASC"]},
                                          format="json").json()
    assert response["runs"] == [dict(row) for row in RunSerializer(runs, many=True).data]


def test_search_scoped_through_the_sort_join_never_shows_hidden_runs(scientist, make_user):
    """When the first sort key is required by the filter, the search is
    restricted to the visible experiments through that key's rows; even if
    a row claimed the wrong experiment, the run's own experiment decides."""
    from apps.core.permissions import make_private

    owner = make_user("Data Scientist", username="owner")
    hidden = experiment_create(actor=owner, name="hidden")
    shared = experiment_create(actor=owner, name="shared")
    make_private(hidden)
    for exp in (hidden, shared):
        run = run_create(actor=owner, experiment=exp, name=f"in-{exp.name}")
        run_log_batch(actor=owner, run_id=run.pk, metrics=[{"key": "auc", "value": 0.9}])
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
