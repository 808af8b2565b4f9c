"""Pages, the admin and the API carry a Content-Security-Policy with a fresh
nonce; templates need no inline code the policy would refuse; cookies are out
of reach of page script and the page hands its CSRF token to its own JS."""

import re
from pathlib import Path

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[3]
NONCE = re.compile(r"'nonce-([^']+)'")


def directives(response) -> dict[str, str]:
    policy = response["Content-Security-Policy"]
    return {part.split()[0]: " ".join(part.split()[1:]) for part in policy.split(";") if part.strip()}


@pytest.fixture
def signed_in(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.mark.parametrize("url", ["/", "/experiments/", "/datasets/", "/admin/", "/admin/auth/user/",
                                 "/api/v1/experiments/", "/api/docs/", "/api/schema/", "/healthz",
                                 "/api/v1/nowhere/"])
def test_every_answer_carries_the_policy(signed_in, url):
    response = signed_in.get(url)
    assert response.status_code in (200, 404), url
    policy = directives(response)
    assert policy["default-src"] == "'self'"
    assert policy["object-src"] == "'none'"
    assert policy["base-uri"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["form-action"] == "'self'"
    assert "unsafe-inline" not in policy["script-src"] and "unsafe-eval" not in policy["script-src"]
    assert NONCE.search(policy["script-src"])


def test_login_page_for_anonymous_users_carries_the_policy(client):
    assert "frame-ancestors 'none'" in client.get("/accounts/login/")["Content-Security-Policy"]


def test_nonce_is_fresh_per_response_and_is_the_one_on_the_page(signed_in):
    nonces = []
    for _ in range(2):
        response = signed_in.get("/api/docs/")
        nonce = NONCE.search(directives(response)["script-src"]).group(1)
        assert f'nonce="{nonce}"' in response.content.decode()
        nonces.append(nonce)
    assert nonces[0] != nonces[1]
    assert len(nonces[0]) >= 22


def test_swagger_ui_has_no_inline_script(signed_in):
    page = signed_in.get("/api/docs/").content.decode()
    inline = [tag for tag in re.findall(r"<script[^>]*>", page) if "src=" not in tag]
    assert inline == []


def _templates():
    return sorted([*ROOT.glob("templates/**/*.html"), *ROOT.glob("apps/*/templates/**/*.html")])


def test_templates_have_no_inline_code_the_policy_refuses():
    offences = []
    for path in _templates():
        text = path.read_text()
        for pattern, what in ((r"<script(?![^>]*\bsrc=)(?![^>]*\bnonce=)[^>]*>", "inline <script> without nonce"),
                              (r"<style(?![^>]*\bnonce=)[^>]*>", "<style> without nonce"),
                              (r"\sstyle=\"", "style attribute"),
                              (r"\son[a-z]+=\"", "inline event handler")):
            offences += [f"{path.relative_to(ROOT)}: {what}" for _ in re.finditer(pattern, text)]
    assert offences == []


def test_session_and_csrf_cookies_are_http_only():
    client = Client()
    from apps.core.services import user_ensure

    user_ensure(username="cookie-user", password="pw-Secret-123", roles=["Viewer"])
    client.get("/accounts/login/")
    response = client.post("/accounts/login/", {"username": "cookie-user", "password": "pw-Secret-123"})
    assert response.status_code == 302
    session = client.cookies["sessionid"]
    assert session["httponly"] and session["samesite"] == "Lax"
    assert client.cookies["csrftoken"]["httponly"]


def test_page_script_gets_the_csrf_token_from_the_page(make_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("Data Scientist"))
    page = client.get("/experiments/").content.decode()
    token = re.search(r'<meta name="csrf-token" content="([^"]+)">', page).group(1)
    refused = client.post("/api/v1/experiments/", {"name": "no-token"}, content_type="application/json")
    assert refused.status_code == 403
    accepted = client.post("/api/v1/experiments/", {"name": "with-token"}, content_type="application/json",
                           headers={"X-CSRFToken": token})
    assert accepted.status_code == 201, accepted.content


def test_no_page_may_evaluate_code_not_even_the_compare_page(signed_in):
    # Parallel coordinates are drawn as SVG lines, not with plotly's WebGL
    # parcoords (whose shaders need 'unsafe-eval').
    assert "'unsafe-eval'" not in directives(signed_in.get("/experiments/compare/"))["script-src"]
    assert "'unsafe-eval'" not in directives(signed_in.get("/experiments/"))["script-src"]
