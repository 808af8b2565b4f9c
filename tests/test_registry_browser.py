"""The registry in a real Chromium: an Approver approves a pending promotion
in the Django admin; the dashboard's approval queue, model page chart and
rollback button work end to end."""

import pytest

from apps.core.models import AuditEvent
from apps.registry import services
from apps.registry.choices import RequestStatus, Stage
from apps.registry.models import PromotionRequest
from apps.registry.tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def pending_request(make_user):
    scientist = make_user("Data Scientist", username="bench_sci")
    approver = make_user("Approver", username="qa_lead")  # staff, as the Approver role makes it
    frame = factories.sample_frame(rows=300, seed=4)
    dataset_version = factories.make_dataset_version(scientist, frame=frame)
    model = factories.make_model(scientist, name="sample-qc", gates={
        "metrics": [{"metric": "test_roc_auc", "op": ">=", "threshold": 0.6}]})
    versions = []
    for C in (1.0, 0.3):
        run = factories.make_run(scientist, dataset_version=dataset_version, frame=frame, C=C)
        versions.append(services.model_version_register(registered_model=model, run=run, actor=scientist))
    request = services.promotion_request_create(version=versions[0], actor=scientist, target_stage="production",
                                                justification="Passes QC gates on the 2025 data")
    return {"scientist": scientist, "approver": approver, "model": model, "versions": versions, "request": request}


def test_approver_approves_in_the_admin(page, browser_login, pending_request):
    assert pending_request["approver"].is_staff
    browser_login("qa_lead")
    page.goto("/admin/registry/promotionrequest/")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    assert "sample-qc" in rows.first.inner_text()
    rows.first.locator("input.action-select").check()
    page.select_option("select[name=action]", "approve_selected")
    page.click("button[name=index]")
    page.wait_for_load_state("networkidle")
    assert page.locator("table.gate-results").is_visible()
    assert page.locator("table.metric-comparison").is_visible()
    page.fill("#id_comment", "Gate results and metrics reviewed; approved.")
    page.click("input[name=apply]")
    page.wait_for_load_state("networkidle")
    assert "Approved 1 promotion request." in page.locator("ul.messagelist").inner_text()
    assert page.locator("#result_list tbody tr").count() == 0  # the pending list is empty now

    version = pending_request["versions"][0]
    version.refresh_from_db()
    assert version.stage == Stage.PRODUCTION
    event = AuditEvent.objects.get(action="promotion_request.approved")
    assert event.actor == pending_request["approver"]
    assert event.message == "Gate results and metrics reviewed; approved."
    assert AuditEvent.objects.filter(action="model_version.stage_changed", object_id=str(version.pk)).exists()
    assert page.errors == []


def test_approval_queue_chart_and_rollback_in_the_dashboard(page, browser_login, pending_request, make_user):
    browser_login("qa_lead")
    page.goto("/registry/approvals/")
    card = page.locator(f"#request-{pending_request['request'].pk}")
    assert "gates passed" in card.inner_text()
    card.locator("textarea[name=comment]").first.fill("Fine for production.")
    card.get_by_role("button", name="Approve").click()
    page.wait_for_load_state("networkidle")
    assert "is now in Production" in page.locator("ul.messages").inner_text()
    assert PromotionRequest.objects.get(pk=pending_request["request"].pk).status == RequestStatus.APPROVED

    # The second version goes to Production too, so there is something to roll back to.
    second = services.promotion_request_create(version=pending_request["versions"][1],
                                               actor=pending_request["scientist"], target_stage="production",
                                               justification="Stronger regularisation")
    services.promotion_request_approve(promotion_request=second, actor=pending_request["approver"], comment="ok")

    make_user("ML Engineer", username="ops_eng")
    page.context.clear_cookies()
    browser_login("ops_eng")
    page.goto("/registry/models/sample-qc/")
    page.locator("#metrics-chart").scroll_into_view_if_needed()  # charts draw when in view
    page.wait_for_selector("#metrics-chart[data-rendered='1']")
    assert page.locator("#metrics-chart .bars, #metrics-chart .trace").count() >= 1
    page.fill("#rollback-form input[name=reason]", "Berlin lab reports false fails")
    page.get_by_role("button", name="Roll back to v1").click()
    page.wait_for_load_state("networkidle")
    assert "v1 is in Production again" in page.locator("ul.messages").inner_text()
    stages = dict(pending_request["model"].versions.values_list("version", "stage"))
    assert stages == {1: Stage.PRODUCTION, 2: Stage.ARCHIVED}
    assert page.errors == []
