"""The registry's browser pages, through Django's test client: what each
role sees and can do, and that errors become messages, not 500s."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from apps.core.models import AuditEvent
from apps.core.webhooks import services as webhook_services
from apps.registry import services
from apps.registry.choices import RequestStatus, Stage
from apps.registry.models import PromotionRequest
from apps.registry.tests import factories

pytestmark = pytest.mark.django_db


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def two_versions(people, make_run, registered):
    v1 = services.model_version_register(registered_model=registered, run=make_run(), actor=people.scientist)
    v2 = services.model_version_register(registered_model=registered, run=make_run(C=0.5), actor=people.scientist)
    req = services.promotion_request_create(version=v1, actor=people.scientist, target_stage="production",
                                            justification="first")
    services.promotion_request_approve(promotion_request=req, actor=people.qa, comment="fine")
    return v1, v2


def messages_of(response):
    return [str(m) for m in response.context["messages"]] if response.context else []


def test_model_list_and_detail(people, two_versions):
    client = browser(people.viewer)
    page = client.get(reverse("registry:list"))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'href="/registry/models/sample-qc/"' in html and "badge production" in html
    detail = client.get(reverse("registry:detail", args=["sample-qc"]))
    assert detail.status_code == 200
    html = detail.content.decode()
    assert html.count('class="badge production"') >= 2  # header and the v1 row
    assert "<code>champion</code>" in html
    chart = json.loads(detail.context["chart"] and json.dumps(detail.context["chart"]))
    assert [trace["name"] for trace in chart["data"]] == ["v1 (Production)", "v2 (No stage)"]
    assert 'data-plotly="versions-chart"' in html
    assert "rollback-form" not in html  # a viewer cannot roll back, and there is no earlier Production version


def test_version_page_shows_signature_metrics_lineage_and_history(people, two_versions, data):
    page = browser(people.viewer).get(reverse("registry:version", args=["sample-qc", 1]))
    assert page.status_code == 200
    html = page.content.decode()
    for feature in factories.FEATURES:
        assert f"<code>{feature}</code>" in html
    assert "test_roc_auc" in html and "input-example-data" in html
    assert f"{data.version.dataset.name} v{data.version.version}" in html
    assert "experiments:run" not in html and "sample-qc</em>" in html
    assert "first" in html and "fine" in html and "qa" in html  # justification, comment, approver
    assert 'data-gate="valid_signature"' in html
    assert "request-form" not in html  # viewers cannot request


def test_request_approve_and_rollback_from_the_pages(people, two_versions):
    v1, v2 = two_versions
    sci = browser(people.scientist)
    response = sci.post(reverse("registry:request", args=["sample-qc", 2]),
                        {"stage": "production", "justification": "C=0.5 is steadier"}, follow=True)
    assert messages_of(response) == ["Promotion request for sample-qc v2 to Production sent: all quality gates passed."]
    req = PromotionRequest.objects.get(version=v2)

    # The requester sees no decision form, and a forged POST is refused with a message.
    version_page = sci.get(reverse("registry:version", args=["sample-qc", 2])).content.decode()
    assert "approve-form" not in version_page and "Withdraw my request" in version_page
    forged = sci.post(reverse("registry:approve", args=[req.pk]), {"comment": "self"}, follow=True)
    assert forged.status_code == 200 and any("permission" in m or "four eyes" in m for m in messages_of(forged))

    qa = browser(people.qa)
    queue = qa.get(reverse("registry:approvals"))
    assert f'data-request-id="{req.pk}"' in queue.content.decode()
    assert queue.context["items"][0]["production"] == v1
    approved = qa.post(reverse("registry:approve", args=[req.pk]), {"comment": "looks good"}, follow=True)
    assert messages_of(approved) == ["Promotion request for sample-qc v2 approved: it is now in Production."]
    v2.refresh_from_db()
    assert v2.stage == Stage.PRODUCTION

    engineer = browser(people.engineer)
    detail = engineer.get(reverse("registry:detail", args=["sample-qc"])).content.decode()
    assert "Roll back to v1" in detail
    missing_reason = engineer.post(reverse("registry:rollback", args=["sample-qc"]), {"reason": ""}, follow=True)
    assert "needs a reason" in " ".join(messages_of(missing_reason))
    rolled = engineer.post(reverse("registry:rollback", args=["sample-qc"]), {"reason": "FFPE drift"}, follow=True)
    assert "v1 is in Production again" in " ".join(messages_of(rolled))
    assert AuditEvent.objects.filter(action="registered_model.rolled_back", message="FFPE drift").exists()
    detail = engineer.get(reverse("registry:detail", args=["sample-qc"])).content.decode()
    assert "rolled back</span>" in detail and "Roll back to" not in detail
    version_page = engineer.get(reverse("registry:version", args=["sample-qc", 2])).content.decode()
    assert 'id="rolled-back"' in version_page and people.engineer.username in version_page


def test_reject_from_the_queue_needs_a_comment(people, two_versions):
    _, v2 = two_versions
    req = services.promotion_request_create(version=v2, actor=people.scientist, target_stage="staging",
                                            justification="try")
    qa = browser(people.qa)
    empty = qa.post(reverse("registry:reject", args=[req.pk]), {"comment": ""}, follow=True)
    assert "needs a comment" in " ".join(messages_of(empty))
    rejected = qa.post(reverse("registry:reject", args=[req.pk]), {"comment": "not enough FFPE"}, follow=True)
    assert messages_of(rejected) == ["Promotion request for sample-qc v2 to Staging rejected."]
    req.refresh_from_db()
    assert req.status == RequestStatus.REJECTED and req.decision_comment == "not enough FFPE"


def test_register_from_run_form(people, make_run):
    run = make_run()
    client = browser(people.scientist)
    form = client.get(reverse("registry:register_from_run") + f"?run={run.pk}")
    assert form.status_code == 200
    assert f'value="{run.pk}"' in form.content.decode() and form.context["run"] == run
    response = client.post(reverse("registry:register_from_run"),
                           {"run": run.pk, "registered_model": "new-qc", "task_type": "classification"})
    assert response.status_code == 302 and response["Location"] == "/registry/models/new-qc/versions/1/"
    again = client.post(reverse("registry:register_from_run"), {"run": run.pk, "registered_model": "new-qc"})
    assert again["Location"] == "/registry/models/new-qc/versions/2/"
    failed = client.post(reverse("registry:register_from_run"),
                         {"run": make_run(status="running").pk, "registered_model": "new-qc"})
    assert failed.status_code == 200 and "only finished runs" in failed.content.decode()
    assert client.post(reverse("registry:register_from_run"),
                       {"run": 987654, "registered_model": "new-qc"}).status_code == 200


def test_alias_form_and_webhook_test_button(people, two_versions):
    sci = browser(people.scientist)
    aliased = sci.post(reverse("registry:set_alias", args=["sample-qc"]), {"alias": "challenger", "version": 2},
                       follow=True)
    assert messages_of(aliased) == ["Alias sample-qc@challenger now points to v2."]
    page = sci.get(reverse("registry:detail", args=["sample-qc"])).content.decode()
    assert "<code>challenger</code>" in page

    registered = two_versions[0].registered_model
    hook = webhook_services.webhook_subscription_create(actor=people.admin, name="lims", url="http://127.0.0.1:9/h",
                                                subject=registered)
    admin = browser(people.admin)
    detail = admin.get(reverse("registry:detail", args=["sample-qc"])).content.decode()
    assert "Send test event" in detail and "lims" in detail
    admin.post(reverse("registry:webhook_test", args=[hook.pk]), {"next": "/registry/models/sample-qc/"})
    assert hook.deliveries.get().event == "webhook.test"
    assert "webhook.test" in admin.get(reverse("registry:detail", args=["sample-qc"])).content.decode()
    # Only the webhook-capable roles see the section at all.
    assert "Recent deliveries" not in sci.get(reverse("registry:detail", args=["sample-qc"])).content.decode()


def test_hidden_models_are_404(people, two_versions, make_user):
    from apps.core.permissions import make_private

    make_private(two_versions[0].registered_model)
    outsider = browser(make_user("Data Scientist", username="outsider"))
    assert outsider.get(reverse("registry:detail", args=["sample-qc"])).status_code == 404
    assert outsider.get(reverse("registry:version", args=["sample-qc", 1])).status_code == 404
    assert "sample-qc" not in outsider.get(reverse("registry:list")).content.decode()


def test_overview_card(people, two_versions):
    from apps.registry.selectors import overview_card

    services.promotion_request_create(version=two_versions[1], actor=people.scientist, target_stage="staging",
                                      justification="x")
    card = overview_card(user=people.qa)
    assert card["url"] == reverse("registry:approvals")
    assert dict(card["stats"]) == {"Registered models": 1, "In Production": 1, "Pending requests": 1,
                                   "Waiting for you": 1}
    assert dict(overview_card(user=people.scientist)["stats"])["Pending requests"] == 1
    assert "Waiting for you" not in dict(overview_card(user=people.scientist)["stats"])
    assert overview_card(user=people.viewer)["url"] == reverse("registry:list")
