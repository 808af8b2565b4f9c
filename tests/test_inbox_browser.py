"""A real Chromium: the header bell counts unread notifications, the inbox
lists them and marks them read, and the home page says all is well."""

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_bell_counts_unread_and_the_inbox_marks_them_read(page, browser_login, make_user):
    from apps.core.services import notifications_send

    user = make_user("Data Scientist", username="lab_sci")
    other = make_user("Approver", username="lab_qa")
    for text in ("Training job 4 failed: out of memory.", "qa approved your request to promote sample-qc v2."):
        notifications_send(recipients=[user], verb="experiments.training_job.failed", text=text, url="/")
    notifications_send(recipients=[other], verb="registry.promotion_request.created", text="not for lab_sci")

    browser_login("lab_sci")
    assert page.locator("#all-is-well").is_visible()
    bell = page.locator("#inbox-bell")
    assert bell.locator(".badge").inner_text() == "2"
    bell.click()
    page.wait_for_load_state("networkidle")
    assert page.locator("h1").inner_text() == "Inbox"
    assert page.locator("tr.unread").count() == 2
    assert "not for lab_sci" not in page.content()

    page.locator("tr.unread").first.get_by_role("button", name="Mark read").click()
    page.wait_for_load_state("networkidle")
    assert page.locator("#inbox-bell .badge").inner_text() == "1"
    assert page.locator("tr.unread").count() == 1

    page.get_by_role("button", name="Mark all read").click()
    page.wait_for_load_state("networkidle")
    assert page.locator("tr.unread").count() == 0 and page.locator("tr.read").count() == 2
    assert page.locator("#inbox-bell .badge").count() == 0
    assert "1 notification marked read." in page.content()

    page.locator("#id_email").check()
    page.locator("#inbox-preferences button[type=submit]").click()
    page.wait_for_load_state("networkidle")
    assert page.locator("#id_email").is_checked()
    assert page.errors == []
