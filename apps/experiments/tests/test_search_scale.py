"""What keeps run search fast at scale: the experiment denormalised onto
params, latest metrics and tags, kept in step by every writer."""

import pytest
from django.utils import timezone

from apps.experiments.models import LatestMetric, Param, Run, RunTag
from apps.experiments.services import experiment_create, run_create, run_log_batch

pytestmark = pytest.mark.django_db


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
