"""The home page: what needs the signed-in user's attention, for each role,
and the recent activity with each object's state now, in a fixed number of
queries."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.dashboard import selectors
from apps.dashboard.tests import helpers
from apps.registry import services as registry
from apps.registry.tests import factories

pytestmark = pytest.mark.django_db


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def kinds(user) -> list[str]:
    return [item.kind for item in selectors.attention_items(user=user)]


@pytest.fixture
def pending(people, make_run, registered):
    return helpers.request_promotion(people=people, make_run=make_run, registered=registered)


def test_an_approver_sees_the_request_waiting_for_them(people, pending):
    items = selectors.attention_items(user=people.qa)
    assert [item.kind for item in items] == ["approval"]
    item = items[0]
    assert item.url == f"/registry/approvals/#request-{pending.pk}"
    assert "sample-qc v1 → Staging, asked by sci" in item.title
    assert "approve or reject" in item.next_step
    page = browser(people.qa).get("/").content.decode()
    assert f'href="/registry/approvals/#request-{pending.pk}"' in page and "all-is-well" not in page


def test_the_requester_does_not_see_their_own_request_as_approvable(people, pending):
    people.scientist.groups.add(*people.qa.groups.all())  # even holding the Approver role
    people.scientist = type(people.scientist).objects.get(pk=people.scientist.pk)  # drop cached permissions
    assert "approval" not in kinds(people.scientist)
    assert "approval" in kinds(people.lead)  # asks and approves, but this request is not theirs


def test_roles_without_approve_rights_and_a_quiet_day_show_all_is_well(people, pending, make_user):
    assert kinds(people.engineer) == [] and kinds(people.viewer) == []
    page = browser(people.viewer).get("/").content.decode()
    assert 'id="all-is-well"' in page and "All is well" in page


def test_an_engineer_sees_their_degraded_endpoint_and_paused_canary(people, make_user):
    from apps.core.permissions import make_private

    degraded = helpers.degraded_deployment(owner=people.engineer)
    paused = helpers.paused_canary(owner=people.engineer)
    items = {item.kind: item for item in selectors.attention_items(user=people.engineer)}
    assert set(items) == {"degraded", "paused"}
    assert items["degraded"].url == "/serving/qc-live/"
    assert "error rate" in items["degraded"].title and "roll back" in items["degraded"].next_step
    assert items["paused"].url == "/serving/qc-canary/"
    assert f"{paused.model_version}" in items["paused"].title and "resume" in items["paused"].next_step
    assert degraded.endpoint.slug in browser(people.engineer).get("/").content.decode()
    # The lab sees its endpoints (lab sharing) until the owner takes one private;
    # a user without a role sees none.
    assert sorted(kinds(people.scientist)) == ["degraded", "paused"]
    make_private(degraded.endpoint)
    assert kinds(people.scientist) == ["paused"]
    assert kinds(make_user(username="outsider")) == []


def test_a_scientist_sees_their_running_and_failed_jobs_not_others(people, data):
    from apps.experiments.services import training_job_fail

    running = helpers.running_job(owner=people.scientist, dataset_version=data.version)
    failed = helpers.running_job(owner=people.scientist, dataset_version=data.version)
    training_job_fail(job_id=failed.pk, reason="The target column qc_pass has one class only.")
    helpers.running_job(owner=people.lead, dataset_version=data.version)
    helpers.running_job(owner=people.scientist, dataset_version=data.version, status="finished")
    items = [item for item in selectors.attention_items(user=people.scientist) if item.kind == "training_job"]
    assert sorted(item.url for item in items) == sorted(
        [f"/experiments/training/{running.pk}/", f"/experiments/training/{failed.pk}/"])
    by_url = {item.url: item for item in items}
    assert "one class only" in by_url[f"/experiments/training/{failed.pk}/"].title
    assert "running (40 %)" in by_url[f"/experiments/training/{running.pk}/"].title


def test_an_invalid_upload_asks_for_a_new_version_until_one_comes(people, data):
    from apps.datasets.models import DatasetVersion

    bad = factories.make_dataset_version(people.scientist, status="invalid", name="march-export")
    DatasetVersion.objects.filter(pk=bad.pk).update(status_reason="Missing the target column qc_pass.")
    items = [item for item in selectors.attention_items(user=people.scientist) if item.kind == "invalid_upload"]
    assert [item.url for item in items] == [f"/datasets/versions/{bad.pk}/"]
    assert "Missing the target column" in items[0].title and "upload a new version" in items[0].next_step
    assert "invalid_upload" not in kinds(people.lead)  # not their upload
    factories.make_dataset_version(people.scientist, name="march-export",  # the fixed file
                                   frame=factories.sample_frame(seed=5))
    assert "invalid_upload" not in kinds(people.scientist)


# --- Recent activity ----------------------------------------------------------------------

def test_activity_links_each_object_and_shows_its_state_now(people, pending):
    registry.promotion_request_approve(promotion_request=pending, actor=people.qa, comment="fine")
    entries = selectors.recent_activity(user=people.qa)
    created = next(e for e in entries if e.event.action == "promotion_request.created")
    assert created.url == "/registry/models/sample-qc/versions/1/"
    assert (created.state, created.state_label) == ("approved", "Approved")  # decided since
    registered = next(e for e in entries if e.event.action == "model_version.registered")
    assert (registered.state, registered.state_label) == ("staging", "Staging")
    page = browser(people.qa).get("/").content.decode()
    assert '<span class="badge approved">Approved</span>' in page


def test_activity_shows_nothing_of_objects_the_user_may_not_see(people, pending):
    from apps.core.permissions import make_private

    make_private(pending.version.registered_model)
    entries = selectors.recent_activity(user=people.qa)  # an auditor sees every event...
    created = next(e for e in entries if e.event.action == "promotion_request.created")
    assert (created.url, created.state) == ("", "")  # ...but not the private model's page or state


def test_the_home_page_reads_in_a_fixed_number_of_queries(people, make_run, registered, data,
                                                         django_assert_max_num_queries):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            selectors.attention_items(user=people.qa)
            selectors.recent_activity(user=people.qa)
        return len(queries)

    first = helpers.request_promotion(people=people, make_run=make_run, registered=registered)
    registry.promotion_request_reject(promotion_request=first, actor=people.qa, comment="needs more data")
    count()  # fills the user's permission cache
    few = count()
    for _ in range(3):
        req = registry.promotion_request_create(version=first.version, actor=people.scientist,
                                                target_stage="staging", justification="again")
        registry.promotion_request_reject(promotion_request=req, actor=people.qa2, comment="no")
    for name in ("a", "b", "c"):
        factories.make_dataset_version(people.scientist, status="invalid", name=f"export-{name}")
    helpers.request_promotion(people=people, make_run=make_run, registered=registered)
    assert len(selectors.recent_activity(user=people.qa)) == 15  # more events, more items, same queries
    assert len(selectors.attention_items(user=people.qa)) == 1
    assert count() == few
    # In the steady state (content types cached after a first request):
    # session and user, the apps' cards (about 20 counts), the attention
    # list, the activity (one query per object type) and the inbox bell.
    client = browser(people.qa)
    client.get("/")
    with django_assert_max_num_queries(50):
        response = client.get("/")
    assert response.status_code == 200
