"""The account and header pages in a real Chromium: API keys (the secret
shown once, revoke), the friendly 404 with DEBUG on, global search."""

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_create_a_key_see_it_once_then_revoke_it(page, browser_login, make_user):
    from apps.core.models import ApiKey
    from apps.core.services import _api_key_cache, api_key_authenticate

    make_user("Data Scientist", username="keyholder")
    browser_login("keyholder")
    page.get_by_role("link", name="API keys").click()
    page.wait_for_load_state("networkidle")
    assert page.locator("h1").inner_text() == "API keys"
    assert "You have no API keys yet." in page.locator("#api-keys-table").inner_text()

    page.fill("#id_name", "LIMS export")
    page.get_by_role("button", name="Create key").click()
    page.wait_for_load_state("networkidle")
    raw = page.locator("#new-api-key").input_value()
    key = ApiKey.objects.get(user__username="keyholder")
    assert raw.startswith(key.prefix + ".")
    assert "will not be shown again" in page.locator("#issued-key").inner_text()
    row = page.locator(f"tr[data-prefix='{key.prefix}']")
    assert "LIMS export" in row.inner_text() and "Active" in row.inner_text() and "never" in row.inner_text()
    _api_key_cache.clear()
    assert api_key_authenticate(raw) is not None

    # Shown once: coming back to the page does not show it again.
    page.goto("/account/api-keys/")
    assert page.locator("#new-api-key").count() == 0
    assert raw not in page.content()
    assert key.prefix in page.content()

    page.locator(f"tr[data-prefix='{key.prefix}']").get_by_role("link", name="Revoke…").click()
    page.wait_for_load_state("networkidle")
    assert "Revoke API key “LIMS export”?" in page.locator("h1").inner_text()
    page.get_by_role("button", name="Revoke key").click()
    page.wait_for_load_state("networkidle")
    assert page.url.endswith("/account/api-keys/")
    assert f"API key {key.prefix} (LIMS export) revoked." in page.locator(".messages").inner_text()
    assert "Revoked" in page.locator(f"tr[data-prefix='{key.prefix}']").inner_text()
    assert page.locator(f"tr[data-prefix='{key.prefix}']").get_by_role("link", name="Revoke…").count() == 0
    _api_key_cache.clear()
    assert api_key_authenticate(raw) is None
    assert page.errors == []


def test_unknown_page_with_debug_on_is_friendly_and_lists_no_routes(page, browser_login, make_user, settings):
    settings.DEBUG = True
    make_user("Viewer", username="wanderer")
    browser_login("wanderer")
    response = page.goto("/no/such/page/")
    assert response.status == 404
    assert page.locator("h1").inner_text() == "Page not found"
    text = page.locator("body").inner_text()
    for marker in ("URLconf", "api/v1/", "healthz", "tried these URL patterns", "admin/"):
        assert marker not in text
    assert page.locator("nav.mainnav").is_visible()  # in the site's look, with its header
    page.get_by_role("link", name="Go to the overview").click()
    page.wait_for_load_state("networkidle")
    assert page.locator("h1").inner_text() == "Overview"
    favicon = page.request.get("/favicon.ico")
    assert favicon.ok and favicon.headers["content-type"] in ("image/x-icon", "image/vnd.microsoft.icon")
    assert page.errors == []


def test_header_search_finds_own_objects_but_not_another_users_private_one(page, browser_login, make_user):
    from apps.core.permissions import make_private
    from apps.datasets.services import dataset_create
    from apps.registry.services import registered_model_create

    me = make_user("Data Scientist", username="seeker")
    other = make_user("Data Scientist", username="keeper")
    dataset_create(actor=me, name="plasma-submissions")
    registered_model_create(actor=me, name="plasma-qc", task_type="classification")
    hidden = registered_model_create(actor=other, name="plasma-secret-model", task_type="classification")
    make_private(hidden)

    browser_login("seeker")
    search = page.get_by_role("searchbox", name="Search")
    search.fill("plasma")
    search.press("Enter")
    page.wait_for_load_state("networkidle")
    assert "/search/?q=plasma" in page.url
    assert page.locator("#search-datasets").get_by_role("link", name="plasma-submissions").is_visible()
    assert page.locator("#search-models").get_by_role("link", name="plasma-qc").is_visible()
    assert "plasma-secret-model" not in page.content()
    page.locator("#search-models").get_by_role("link", name="plasma-qc").click()
    page.wait_for_load_state("networkidle")
    assert page.url.endswith("/registry/models/plasma-qc/")

    page.goto("/search/?q=plasma-secret")
    assert page.locator("#search-empty").is_visible()
    assert "plasma-secret-model" not in page.content()
    assert page.errors == []
