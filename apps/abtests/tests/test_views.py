"""The analysts' calculator page: posts to itself, shows the service's answer."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db
URL = "/ab-tests/calculator/"


@pytest.fixture
def analyst_client(make_user):
    client = Client()
    client.force_login(make_user("Viewer"))
    return client


def _post(client, arms, **settings):
    data = {"metric_type": "proportion", "engine": "frequentist", "difference": "relative", "alpha": "0.05",
            "correction": "none", "arms-TOTAL_FORMS": str(len(arms)), "arms-INITIAL_FORMS": "1",
            "arms-MIN_NUM_FORMS": "0", "arms-MAX_NUM_FORMS": "50"} | settings
    for i, arm in enumerate(arms):
        for key, value in arm.items():
            data[f"arms-{i}-{key}"] = value
    return client.post(URL, data)


EXAMPLE = [{"name": "control", "n": "53", "sum": "5"}, {"name": "b", "n": "47", "sum": "7", "sum_squares": "7"},
           {"name": "", "n": "", "sum": ""}]


def test_the_page_needs_a_signed_in_user():
    response = Client().get(URL)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_empty_page_and_its_nav_entry(analyst_client):
    response = analyst_client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="calculator-form"' in html and 'name="arms-3-n"' in html and 'name="arms-4-n"' not in html
    assert 'href="/ab-tests/calculator/"' in html  # the main navigation
    assert 'name="arms-9-n"' in analyst_client.get(URL + "?rows=10").content.decode()


def test_the_example_gives_the_api_numbers(analyst_client):
    response = _post(analyst_client, EXAMPLE)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="analysis-result"' in html
    assert "+57.87%" in html and "-114.71% to +230.46%" in html
    assert "0.507" in html and "p = 0.5485" in html and 'id="srm-banner"' not in html


def test_bayesian_shows_chance_to_win_and_risk(analyst_client):
    html = _post(analyst_client, EXAMPLE, engine="bayesian").content.decode()
    assert "Chance to win" in html and "74.7%" in html and "p-value" not in html


def test_a_broken_split_shows_the_srm_banner(analyst_client):
    arms = [{"name": "control", "n": "5000", "sum": "500"}, {"name": "b", "n": "4500", "sum": "480"}]
    html = _post(analyst_client, arms).content.decode()
    assert 'id="srm-banner"' in html and "Sample ratio mismatch" in html


def test_bad_sums_are_shown_on_their_row(analyst_client):
    arms = [{"name": "control", "n": "53", "sum": "5"}, {"name": "b", "n": "47", "sum": "7", "sum_squares": "9"}]
    response = _post(analyst_client, arms)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="analysis-result"' not in html
    assert "must equal sum for a proportion" in html
    assert response.context["arms"].forms[1].errors["sum_squares"]


def test_fewer_than_two_arms_is_a_form_error(analyst_client):
    html = _post(analyst_client, EXAMPLE[:1]).content.decode()
    assert "arms: must be a list of 2 to 50 arms" in html


def test_zero_control_mean_is_shown_as_the_comparison_error(analyst_client):
    arms = [{"name": "control", "n": "100", "sum": "0"}, {"name": "b", "n": "100", "sum": "3"}]
    html = _post(analyst_client, arms).content.decode()
    assert "zero_control_mean" in html
