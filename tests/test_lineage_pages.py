"""Lineage as links across the apps' pages: dataset version → runs → model
versions → deployments and back, with what the reader may not view counted
("1 run you cannot view") and never named."""

import io

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone

from apps.core.permissions import grant_on_create, make_private

pytestmark = pytest.mark.django_db


def browser_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def world(make_user, make_lab_version):
    """One dataset version; run "forest-a" (shared experiment, with a model
    file, finished) and run "secret-run" (private experiment) trained on it;
    sample-qc v1 from forest-a and v2 from secret-run; private model
    "secret-model" v1 from forest-a; sample-qc v1 deployed on the shared
    endpoint "qc-shared" and the private endpoint "qc-private"."""
    from apps.experiments.models import Experiment, Run
    from apps.experiments.services import artifact_log
    from apps.registry.models import ModelVersion, RegisteredModel
    from apps.serving.models import Deployment, Endpoint

    owner = make_user("Data Scientist", username="owner_sci")
    data = make_lab_version(owner, rows=120, seed=5)
    with transaction.atomic():
        shared = Experiment.objects.create(name="qc-shared-exp", owner=owner)
        grant_on_create(shared, owner=owner)
        secret = Experiment.objects.create(name="secret-exp", owner=owner)
        grant_on_create(secret, owner=owner)
        make_private(secret)
        run = Run.objects.create(experiment=shared, user=owner, dataset_version=data, name="forest-a",
                                 start_time=timezone.now(), status="finished", end_time=timezone.now())
        hidden_run = Run.objects.create(experiment=secret, user=owner, dataset_version=data, name="secret-run",
                                        start_time=timezone.now())
        model = RegisteredModel.objects.create(name="sample-qc", owner=owner, task_type="classification",
                                               quality_gates={"metrics": [{"metric": "test_f1", "op": ">=",
                                                                           "threshold": 0.7}]})
        grant_on_create(model, owner=owner)
        secret_model = RegisteredModel.objects.create(name="secret-model", owner=owner, task_type="classification")
        grant_on_create(secret_model, owner=owner)
        make_private(secret_model)
        v1 = ModelVersion.objects.create(registered_model=model, version=1, source_run=run, dataset_version=data,
                                         artifact="x", sha256="0" * 64, created_by=owner,
                                         metrics={"test_f1": 0.8123, "test_roc_auc": 0.9})
        ModelVersion.objects.create(registered_model=model, version=2, source_run=hidden_run, dataset_version=data,
                                    artifact="y", sha256="1" * 64, created_by=owner, metrics={"test_f1": 0.75})
        ModelVersion.objects.create(registered_model=secret_model, version=1, source_run=run, artifact="z",
                                    sha256="2" * 64, created_by=owner)
        RegisteredModel.objects.filter(pk=model.pk).update(latest_version=2)
        for slug, private in (("qc-shared", False), ("qc-private", True)):
            endpoint = Endpoint.objects.create(slug=slug, name=slug, owner=owner)
            grant_on_create(endpoint, owner=owner)
            if private:
                make_private(endpoint)
            Deployment.objects.create(endpoint=endpoint, model_version=v1, created_by=owner, traffic_weight=100,
                                      status="healthy", rollout_state="completed")
    artifact_log(actor=owner, run=run, fileobj=io.BytesIO(b"model"), path="model/model.skops")
    colleague = make_user("Data Scientist", username="colleague_sci")
    return {"owner": owner, "colleague": colleague, "data": data, "run": run, "hidden_run": hidden_run, "v1": v1}


def test_dataset_version_page_links_what_came_of_it(world):
    html = browser_for(world["colleague"]).get(f"/datasets/versions/{world['data'].pk}/").content.decode()
    lineage = html[html.index('id="lineage"'):]
    assert f'href="/experiments/runs/{world["run"].pk}/">forest-a</a>' in lineage
    assert 'href="/registry/models/sample-qc/versions/1/">sample-qc v1</a>' in lineage
    assert 'href="/serving/qc-shared/">qc-shared</a>' in lineage
    assert "1 run you cannot view" in lineage and "secret-run" not in lineage
    # sample-qc v2 is visible (its model is), though the run it came from is not; secret-model v1 is not.
    assert 'href="/registry/models/sample-qc/versions/2/">sample-qc v2</a>' in lineage
    assert "1 model version you cannot view" in lineage and "secret-model" not in lineage
    assert "1 deployment you cannot view" in lineage and "qc-private" not in lineage
    owner = browser_for(world["owner"]).get(f"/datasets/versions/{world['data'].pk}/").content.decode()
    assert "secret-run" in owner and "secret-model v1" in owner and "qc-private" in owner
    assert "you cannot view" not in owner


def test_a_registered_run_links_its_versions_and_deployments_instead_of_registering_again(world, make_user):
    url = f"/experiments/runs/{world['run'].pk}/"
    html = browser_for(world["colleague"]).get(url).content.decode()
    registered = html[html.index('id="run-registered"'):html.index("</dd>", html.index('id="run-registered"'))]
    assert 'href="/registry/models/sample-qc/versions/1/">sample-qc v1</a>' in registered
    assert 'href="/serving/qc-shared/">qc-shared</a>' in registered
    assert "1 model version you cannot view" in registered and "secret-model" not in registered
    assert "1 deployment you cannot view" in registered and "qc-private" not in registered
    assert f'href="/datasets/versions/{world["data"].pk}/"' in html
    assert 'id="register-model"' not in browser_for(world["owner"]).get(url).content.decode()


def test_the_experiment_page_names_the_version_each_run_became(world):
    url = f"/experiments/{world['run'].experiment_id}/"
    html = browser_for(world["colleague"]).get(url).content.decode()
    row = html[html.index(f'data-run-id="{world["run"].pk}"'):]
    row = row[:row.index("</tr>")]
    assert 'registered as</span> <a href="/registry/models/sample-qc/versions/1/">sample-qc v1</a>' in row
    assert "secret-model" not in html  # a private model is not named


def test_an_unregistered_run_still_offers_registering(world):
    from apps.experiments.models import Run
    from apps.experiments.services import artifact_log

    fresh = Run.objects.create(experiment=world["run"].experiment, user=world["owner"], name="fresh",
                               start_time=timezone.now(), status="finished", end_time=timezone.now())
    artifact_log(actor=world["owner"], run=fresh, fileobj=io.BytesIO(b"model"), path="model/model.skops")
    html = browser_for(world["owner"]).get(f"/experiments/runs/{fresh.pk}/").content.decode()
    assert 'id="register-model"' in html and "not registered" in html


def test_a_run_of_a_hidden_dataset_says_so_without_naming_it(world):
    make_private(world["data"].dataset)
    html = browser_for(world["colleague"]).get(f"/experiments/runs/{world['run'].pk}/").content.decode()
    assert "a dataset version you cannot view" in html and "lab-submissions" not in html


def test_model_page_links_runs_and_shows_the_gate_metric(world):
    html = browser_for(world["colleague"]).get("/registry/models/sample-qc/").content.decode()
    table = html[html.index('id="versions-table"'):]
    assert "test_f1 (gate)" in table and "0.8123" in table
    assert f'href="/experiments/runs/{world["run"].pk}/">forest-a</a>' in table
    assert "a run you cannot view" in table and "secret-run" not in table


def test_model_version_page_names_only_what_the_reader_may_view(world):
    colleague = browser_for(world["colleague"])
    html = colleague.get("/registry/models/sample-qc/versions/1/").content.decode()
    lineage = html[html.index('id="lineage"'):html.index("</section>", html.index('id="lineage"'))]
    assert f'href="/experiments/runs/{world["run"].pk}/">forest-a</a>' in lineage
    assert f'href="/datasets/versions/{world["data"].pk}/"' in lineage
    assert 'href="/serving/qc-shared/">qc-shared</a>' in lineage
    assert "1 deployment you cannot view" in lineage and "qc-private" not in lineage
    v2 = colleague.get("/registry/models/sample-qc/versions/2/").content.decode()
    assert "a run you cannot view" in v2 and "secret-run" not in v2 and "secret-exp" not in v2
    api = colleague.get("/api/v1/models/sample-qc/versions/2/lineage/").json()
    assert api["run"] is None and api["hidden"]["run"] is True


def test_endpoint_page_links_model_version_run_and_dataset_version(world, make_user):
    html = browser_for(world["colleague"]).get("/serving/qc-shared/").content.decode()
    table = html[html.index('id="deployments-table"'):]
    assert 'href="/registry/models/sample-qc/versions/1/">sample-qc v1</a>' in table
    assert f'href="/experiments/runs/{world["run"].pk}/">forest-a</a>' in table
    assert f'href="/datasets/versions/{world["data"].pk}/">lab-submissions v1</a>' in table
    make_private(world["run"].experiment)
    make_private(world["data"].dataset)
    html = browser_for(world["colleague"]).get("/serving/qc-shared/").content.decode()
    table = html[html.index('id="deployments-table"'):]
    assert "a run you cannot view" in table and "forest-a" not in table
    assert "on a dataset version you cannot view" in table and "lab-submissions" not in table
    assert browser_for(world["colleague"]).get("/serving/qc-private/").status_code == 404


def test_endpoint_page_query_count_does_not_grow_with_deployments(world):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.serving.models import Deployment, Endpoint

    client = browser_for(world["colleague"])
    endpoint = Endpoint.objects.get(slug="qc-shared")
    client.get("/serving/qc-shared/")
    with CaptureQueriesContext(connection) as before:
        client.get("/serving/qc-shared/")
    for _ in range(5):
        Deployment.objects.create(endpoint=endpoint, model_version=world["v1"], created_by=world["owner"],
                                  status="rolled_back", rollout_state="rolled_back")
    with CaptureQueriesContext(connection) as after:
        client.get("/serving/qc-shared/")
    assert len(after) == len(before)


def test_dataset_version_lineage_names_stages_in_words(world):
    from apps.registry.models import ModelVersion

    ModelVersion.objects.filter(pk=world["v1"].pk).update(stage="staging")
    html = browser_for(world["owner"]).get(f"/datasets/versions/{world['data'].pk}/").content.decode()
    lineage = html[html.index('id="lineage"'):]
    assert 'sample-qc v1</a> <span class="badge staging">Staging</span>' in lineage
    assert 'sample-qc v2</a> <span class="badge none">No stage</span>' in lineage
    assert ">none<" not in lineage and ">None<" not in lineage
