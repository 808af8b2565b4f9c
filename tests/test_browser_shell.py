"""A real Chromium, driven by Playwright: sign in, see the navigation, open
the admin."""

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_sign_in_see_navigation_and_open_admin(page, browser_login, make_user):
    make_user("Admin", username="ops_admin", is_superuser=True)
    browser_login("ops_admin")
    assert page.url.endswith("/")
    nav = page.locator("nav.mainnav")
    assert nav.get_by_role("link", name="Overview").is_visible()
    assert page.locator("h1").inner_text() == "Overview"
    page.get_by_role("link", name="Admin").click()
    page.wait_for_load_state("networkidle")
    assert "TracSeq MLOps administration" in page.content()
    assert page.get_by_role("link", name="Audit events").is_visible()
    assert page.errors == []


def test_wrong_password_shows_an_error(page, make_user):
    make_user("Viewer", username="tech")
    page.goto("/accounts/login/")
    page.fill("#id_username", "tech")
    page.fill("#id_password", "wrong-password")
    page.click("button[type=submit]")
    assert page.locator(".errors").is_visible()
    assert "/accounts/login/" in page.url


def test_tables_sort_and_filter(page, browser_login, make_user):
    from django.db import transaction

    from apps.core.services import api_key_create

    admin = make_user("Admin", username="sorter", is_superuser=True)
    with transaction.atomic():
        for name in ["beta", "alpha", "gamma"]:
            api_key_create(user=admin, name=name)
    browser_login("sorter")
    visible = page.locator("table.data-table tbody tr:visible")
    assert visible.count() == 4  # the user's creation and three keys
    page.fill(".table-filter", "api_key.created")
    assert visible.count() == 3
    page.fill(".table-filter", "no such text")
    assert visible.count() == 0
    page.fill(".table-filter", "")
    page.get_by_role("columnheader", name="What").click()
    actions = page.locator("table.data-table tbody tr td:nth-child(3)").all_inner_texts()
    assert actions == sorted(actions)
    assert actions[-1] == "user.created"
    page.get_by_role("columnheader", name="What").click()
    actions = page.locator("table.data-table tbody tr td:nth-child(3)").all_inner_texts()
    assert actions[0] == "user.created"
