"""Registry pages read right: "No stage" rather than "None", what a pending
approval is for, stage names in words, plural forms."""

import pytest
from django.test import Client
from django.urls import reverse

from apps.registry import services
from apps.registry.templatetags.registry_labels import stage_label

pytestmark = pytest.mark.django_db


@pytest.fixture
def pending_production(people, make_run, registered):
    """v1 in no stage, with a request for Production waiting for a decision."""
    version = services.model_version_register(registered_model=registered, run=make_run(), actor=people.scientist)
    services.promotion_request_create(version=version, actor=people.scientist, target_stage="production",
                                      justification="ready")
    client = Client()
    client.force_login(people.viewer)
    return client


def test_stage_label():
    assert [stage_label(v) for v in ("none", "", None, "staging", "production", "archived")] == [
        "No stage", "No stage", "No stage", "Staging", "Production", "Archived"]


def test_version_page_says_no_stage_and_what_approval_is_pending(pending_production):
    html = pending_production.get(reverse("registry:version", args=["sample-qc", 1])).content.decode()
    assert '<span class="badge none" id="stage-badge">No stage</span>' in html
    assert '<span class="badge pending" id="approval-badge">Pending approval for Production</span>' in html
    assert "A request to <strong>Production</strong>" in html
    assert ">None<" not in html
    assert "400 rows," in html


def test_model_page_says_no_stage_and_what_approval_is_pending(pending_production):
    html = pending_production.get(reverse("registry:detail", args=["sample-qc"])).content.decode()
    assert '<span class="badge none">No stage</span>' in html
    assert '<span class="badge pending">Pending approval for Production</span>' in html
    assert "→ Production by sci" in html


def test_one_row_is_singular(people, make_run, registered, data):
    from apps.datasets.models import DatasetVersion

    services.model_version_register(registered_model=registered, run=make_run(), actor=people.scientist)
    DatasetVersion.objects.filter(pk=data.version.pk).update(row_count=1)
    client = Client()
    client.force_login(people.viewer)
    html = client.get(reverse("registry:version", args=["sample-qc", 1])).content.decode()
    assert "1 row," in html and "1 rows" not in html


def test_chart_traces_name_the_stage_in_words(people, make_run, registered):
    from apps.registry.charts import version_metrics_figure

    version = services.model_version_register(registered_model=registered, run=make_run(), actor=people.scientist)
    version.metrics = {"test_f1": 0.8}
    names = [trace["name"] for trace in version_metrics_figure([version])["data"]]
    assert names == ["v1 (No stage)"]


def test_register_form_prefills_the_model_name(people, make_run, registered):
    from apps.experiments.models import Experiment

    client = Client()
    client.force_login(people.scientist)
    url = reverse("registry:register_from_run")
    # A new experiment: its name, as a slug.
    fresh = make_run(experiment_name="Plate QC 2026")
    html = client.get(f"{url}?run={fresh.pk}").content.decode()
    assert 'value="plate-qc-2026"' in html
    # An experiment whose runs went to a registered model already: that model.
    first = make_run()
    services.model_version_register(registered_model=registered, run=first, actor=people.scientist)
    Experiment.objects.filter(pk=first.experiment_id).update(name="another name")
    html = client.get(f"{url}?run={make_run().pk}").content.decode()
    assert 'id="id_registered_model" list="model-names" required\n             value="sample-qc"' in html


def test_register_form_without_a_run_lists_the_experiments_finished_runs(people, make_run):
    finished = make_run()
    running = make_run(status="running")
    client = Client()
    client.force_login(people.scientist)
    url = reverse("registry:register_from_run")
    html = client.get(url).content.decode()
    assert 'id="experiment-chooser"' in html and f'<option value="{finished.experiment_id}">sample-qc</option>' in html
    html = client.get(f"{url}?experiment={finished.experiment_id}").content.decode()
    run_select = html[html.index('<select name="run"'):]
    run_select = run_select[:run_select.index("</select>")]
    assert f'<option value="{finished.pk}" selected>{finished.name} (#{finished.pk})' in run_select
    assert f'value="{running.pk}"' not in run_select  # only finished runs
    assert 'value="sample-qc"' in html  # the name is pre-filled from the experiment too
    response = client.post(url, {"run": finished.pk, "registered_model": "sample-qc",
                                 "task_type": "classification"})
    assert response.status_code == 302 and response["Location"] == "/registry/models/sample-qc/versions/1/"
    # Someone who may not see the experiment is offered neither it nor its runs.
    stranger = Client()
    from apps.core.permissions import make_private

    make_private(finished.experiment)
    stranger.force_login(people.viewer)
    html = stranger.get(f"{url}?experiment={finished.experiment_id}").content.decode()
    assert f'value="{finished.pk}"' not in html and "sample-qc</option>" not in html
