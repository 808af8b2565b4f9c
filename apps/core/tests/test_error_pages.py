"""Friendly 404 and 500 pages, with DEBUG on or off, and the favicon."""

import pytest
from django.contrib.staticfiles import finders
from django.test import RequestFactory

pytestmark = pytest.mark.django_db

# Text of Django's technical 404, which lists the site's URL patterns.
ROUTE_LISTING_MARKERS = ("URLconf", "tried these URL patterns", "api/v1/", "admin/", "healthz")


def _assert_friendly_404(response):
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "Page not found" in html and 'id="not-found"' in html
    for marker in ROUTE_LISTING_MARKERS:
        assert marker not in html.split("<main", 1)[1], marker
    assert "Content-Security-Policy" in response


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize("path", ["/no-such-page/", "/datasets/999999/", "/registry/models/nope/",
                                  "/static/no-such-file.js"])
def test_unknown_pages_get_the_friendly_404_without_listing_routes(client, make_user, settings, debug, path):
    settings.DEBUG = debug
    client.force_login(make_user("Viewer"))
    _assert_friendly_404(client.get(path))


def test_signed_out_visitors_get_it_too(client, settings):
    settings.DEBUG = True
    _assert_friendly_404(client.get("/no-such-page/"))


@pytest.mark.parametrize("debug", [True, False])
def test_api_paths_keep_the_json_error_shape(client, make_user, settings, debug):
    settings.DEBUG = debug
    client.force_login(make_user("Viewer"))
    for path in ("/api/v1/no-such-thing/", "/api/v1/datasets/999999/"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_missing_slash_still_redirects_with_debug(client, make_user, settings):
    settings.DEBUG = True
    client.force_login(make_user("Viewer"))
    response = client.get("/account/api-keys")
    assert response.status_code == 301 and response["Location"] == "/account/api-keys/"


def test_500_page_renders_without_a_request_or_the_database():
    # No django_db access here: pytest-django fails the test on any query.
    from django.template.loader import render_to_string

    html = render_to_string("500.html")
    assert "Something went wrong" in html and "/static/css/app.css" in html


def test_500_handler_answers_html_for_pages_and_json_for_the_api(django_assert_num_queries):
    from mlops_site.urls import handler500

    with django_assert_num_queries(0):
        page = handler500(RequestFactory().get("/datasets/"))
        api = handler500(RequestFactory().get("/api/v1/datasets/"))
    assert page.status_code == 500 and b"Something went wrong" in page.content
    assert api.status_code == 500 and api["Content-Type"] == "application/json"


def test_favicon_answers_and_is_linked(client, make_user):
    response = client.get("/favicon.ico")  # signed out: browsers ask before signing in
    assert response.status_code == 301 and response["Location"] == "/static/favicon.ico"
    assert finders.find("favicon.ico") and finders.find("favicon.svg")
    with open(finders.find("favicon.ico"), "rb") as icon:
        assert icon.read(4) == b"\x00\x00\x01\x00"  # an ICO header
    client.force_login(make_user("Viewer"))
    html = client.get("/").content.decode()
    assert 'rel="icon" href="/static/favicon.svg"' in html
