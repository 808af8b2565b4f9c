"""Run search against the database: the filter semantics, sorting, keyset
pagination that stays stable under inserts, and permission filtering."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.experiments.selectors import SearchError, run_search
from apps.experiments.services import experiment_create, run_create, run_finish, run_log_batch

pytestmark = pytest.mark.django_db

T0 = timezone.now() - timedelta(days=1)


@pytest.fixture
def lab(scientist, experiment):
    """Six runs with a spread of metrics, params and tags; some miss some keys."""
    specs = [
        ("rf-a", {"auc": 0.91, "loss": 0.2}, {"estimator": "random_forest", "depth": "5"}, {"team": "qc-core"}),
        ("rf-b", {"auc": 0.75}, {"estimator": "random_forest", "depth": "10"}, {"team": "seq"}),
        ("lr-a", {"auc": 0.85, "loss": 0.4}, {"estimator": "logistic_regression"}, {"team": "QC-north"}),
        ("lr-b", {"auc": 0.60, "loss": 0.9}, {"estimator": "logistic_regression"}, {}),
        ("gb-a", {"loss": 0.3}, {"estimator": "gradient_boosting"}, {"team": "qc_lab"}),
        ("empty", {}, {}, {}),
    ]
    runs = {}
    for index, (name, metrics, params, tags) in enumerate(specs):
        run = run_create(actor=scientist, experiment=experiment, name=name,
                         start_time=T0 + timedelta(minutes=index))
        run_log_batch(actor=scientist, run_id=run.pk,
                      metrics=[{"key": k, "value": v} for k, v in metrics.items()],
                      params=[{"key": k, "value": v} for k, v in params.items()],
                      tags=[{"key": k, "value": v} for k, v in tags.items()])
        runs[name] = run
    run_finish(actor=scientist, run=runs["lr-b"], status="failed")
    return runs


def names(user, text, **kwargs):
    page = run_search(user=user, filter_string=text, max_results=100, **kwargs)
    return sorted(run.name for run in page.runs)


@pytest.mark.parametrize("text, expected", [
    ("metrics.auc > 0.8", ["lr-a", "rf-a"]),
    ("metrics.auc >= 0.85", ["lr-a", "rf-a"]),
    ("metrics.auc < 0.75", ["lr-b"]),
    ("metrics.auc <= 0.75", ["lr-b", "rf-b"]),
    ("metrics.auc = 0.75", ["rf-b"]),
    ("metrics.auc != 0.75", ["lr-a", "lr-b", "rf-a"]),
    ("metrics.auc in (0.6, 0.91)", ["lr-b", "rf-a"]),
    ("metrics.auc not in (0.6, 0.91)", ["lr-a", "rf-b"]),
    ("metrics.auc is null", ["empty", "gb-a"]),
    ("metrics.auc is not null", ["lr-a", "lr-b", "rf-a", "rf-b"]),
    ("params.estimator = 'random_forest'", ["rf-a", "rf-b"]),
    ("params.estimator != 'random_forest'", ["gb-a", "lr-a", "lr-b"]),
    ("params.depth = 5", ["rf-a"]),
    ("params.estimator in ('gradient_boosting', 'logistic_regression')", ["gb-a", "lr-a", "lr-b"]),
    ("params.estimator not in ('gradient_boosting', 'logistic_regression')", ["rf-a", "rf-b"]),
    ("tags.team like 'qc%'", ["gb-a", "rf-a"]),
    ("tags.team ilike 'qc%'", ["gb-a", "lr-a", "rf-a"]),
    ("tags.team not like 'qc%'", ["lr-a", "rf-b"]),
    ("tags.team like 'qc_lab'", ["gb-a"]),
    ("tags.team like 'qc\\_lab'", ["gb-a"]),
    ("tags.team like '%o%'", ["lr-a", "rf-a"]),
    ("status = 'failed'", ["lr-b"]),
    ("attributes.status != 'failed'", ["empty", "gb-a", "lr-a", "rf-a", "rf-b"]),
    ("attributes.name like 'rf-%'", ["rf-a", "rf-b"]),
    ("attributes.end_time is not null", ["lr-b"]),
    ("user = 'sci'", ["empty", "gb-a", "lr-a", "lr-b", "rf-a", "rf-b"]),
])
def test_operators(scientist, lab, text, expected):
    assert names(scientist, text) == expected


def test_or_and_parentheses(scientist, lab):
    text = "metrics.auc > 0.8 and (params.estimator = 'random_forest' or tags.team like 'QC%')"
    assert names(scientist, text) == ["lr-a", "rf-a"]
    assert names(scientist, "metrics.auc > 0.8 and params.estimator = 'random_forest' or tags.team like 'QC%'") == [
        "lr-a", "rf-a"]
    assert names(scientist, "(metrics.auc > 0.8 or metrics.loss < 0.35) and not params.estimator = 'random_forest'"
                 ) == ["gb-a", "lr-a"]
    assert names(scientist, "metrics.loss > 0.5 or params.depth = '10' or tags.team = 'qc_lab'") == [
        "gb-a", "lr-b", "rf-b"]


def test_not_is_logical_negation_over_missing_values(scientist, lab):
    # Runs without "auc" do not match "auc > 0.8", so they do match its negation.
    assert names(scientist, "not metrics.auc > 0.8") == ["empty", "gb-a", "lr-b", "rf-b"]
    assert names(scientist, "not (metrics.auc > 0.8 or metrics.loss > 0.35)") == ["empty", "gb-a", "rf-b"]
    assert names(scientist, "not not metrics.auc > 0.8") == ["lr-a", "rf-a"]
    assert names(scientist, "not metrics.auc != 0.75") == ["empty", "gb-a", "rf-b"]
    assert names(scientist, "not tags.team not like 'qc%'") == ["empty", "gb-a", "lr-b", "rf-a"]


def test_sorting_by_metric_puts_runs_without_it_last(scientist, lab):
    page = run_search(user=scientist, order_by=["metrics.auc DESC"])
    assert [r.name for r in page.runs][:4] == ["rf-a", "lr-a", "rf-b", "lr-b"]
    assert {r.name for r in page.runs[4:]} == {"gb-a", "empty"}
    page = run_search(user=scientist, order_by=["metrics.auc ASC", "attributes.start_time ASC"])
    assert [r.name for r in page.runs] == ["lr-b", "rf-b", "lr-a", "rf-a", "gb-a", "empty"]
    page = run_search(user=scientist, order_by=["params.estimator", "name DESC"])
    assert [r.name for r in page.runs] == ["gb-a", "lr-b", "lr-a", "rf-b", "rf-a", "empty"]
    default = run_search(user=scientist)
    assert [r.name for r in default.runs] == ["empty", "gb-a", "lr-b", "lr-a", "rf-b", "rf-a"]


def test_results_carry_details(scientist, lab):
    page = run_search(user=scientist, filter_string="attributes.name = 'rf-a'")
    (run,) = page.runs
    assert run.metric_map == {"auc": 0.91, "loss": 0.2}
    assert run.param_map == {"depth": "5", "estimator": "random_forest"}
    assert run.tag_map == {"team": "qc-core"}


@pytest.mark.parametrize("order_by", [
    ["metrics.auc DESC"],
    ["metrics.loss ASC"],
    ["params.estimator DESC", "metrics.auc DESC"],
    ["attributes.start_time ASC"],
    [],
    ["tags.team"],
])
def test_pagination_visits_every_run_once_even_with_inserts(scientist, experiment, lab, order_by):
    expected = [r.pk for r in run_search(user=scientist, order_by=order_by, max_results=1000).runs]
    seen, token, pages = [], None, 0
    while True:
        page = run_search(user=scientist, order_by=order_by, max_results=2, page_token=token)
        seen.extend(r.pk for r in page.runs)
        pages += 1
        if pages == 1:
            # New runs arriving between pages, sorting anywhere, must not
            # shift or duplicate the runs still to come.
            for auc in (0.99, 0.5, 0.8):
                extra = run_create(actor=scientist, experiment=experiment, name=f"late-{auc}",
                                   start_time=T0 + timedelta(minutes=2, seconds=auc * 10))
                run_log_batch(actor=scientist, run_id=extra.pk, metrics=[{"key": "auc", "value": auc}],
                              params=[{"key": "estimator", "value": "late"}])
        token = page.next_page_token
        if token is None:
            break
    original = [pk for pk in seen if pk in set(expected)]
    assert original == expected
    assert len(seen) == len(set(seen))


def test_page_token_belongs_to_its_query(scientist, lab):
    page = run_search(user=scientist, order_by=["metrics.auc DESC"], max_results=2)
    with pytest.raises(SearchError) as caught:
        run_search(user=scientist, order_by=["metrics.loss DESC"], max_results=2, page_token=page.next_page_token)
    assert caught.value.code == "invalid_page_token"
    with pytest.raises(SearchError):
        run_search(user=scientist, page_token="not-a-token")


def test_search_across_experiments_and_permission_filtering(scientist, make_user, lab):
    from apps.core.permissions import grant, make_private

    other_owner = make_user("Data Scientist", username="other")
    hidden = experiment_create(actor=other_owner, name="hidden")
    hidden_run = run_create(actor=other_owner, experiment=hidden, name="secret")
    run_log_batch(actor=other_owner, run_id=hidden_run.pk, metrics=[{"key": "auc", "value": 0.99}])
    shared = experiment_create(actor=other_owner, name="shared")
    run_create(actor=other_owner, experiment=shared, name="shared-run")

    # Lab sharing: everyone sees everything.
    assert "secret" in names(scientist, "")
    make_private(hidden)
    # Without access, none of the hidden experiment's runs show, whether
    # asked for by id, across experiments or by a filter that matches them.
    assert "secret" not in names(scientist, "")
    assert names(scientist, "metrics.auc > 0.95") == []
    assert names(scientist, "", experiment_ids=[hidden.pk]) == []
    assert names(scientist, "", experiment_ids=[hidden.pk, shared.pk]) == ["shared-run"]
    assert names(other_owner, "metrics.auc > 0.95") == ["secret"]
    grant(hidden, perms=["view_experiment"], user=scientist)
    assert names(scientist, "metrics.auc > 0.95") == ["secret"]
    viewer = make_user("Viewer")
    assert "secret" not in names(viewer, "")


def test_search_api_shape_and_errors(client_for, scientist, experiment, lab):
    api = client_for(scientist)
    response = api.post("/api/v1/runs/search/", {
        "experiment_ids": [experiment.pk],
        "filter": "metrics.auc > 0.7 and (params.estimator = 'random_forest' or tags.team ilike 'qc%')",
        "order_by": ["metrics.auc DESC", "attributes.start_time ASC"],
        "max_results": 2,
    }, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert [r["name"] for r in body["runs"]] == ["rf-a", "lr-a"]
    assert body["runs"][0]["metrics"]["auc"] == 0.91 and body["runs"][0]["params"]["estimator"] == "random_forest"
    assert body["next_page_token"]
    second = api.post("/api/v1/runs/search/", {
        "experiment_ids": [experiment.pk],
        "filter": "metrics.auc > 0.7 and (params.estimator = 'random_forest' or tags.team ilike 'qc%')",
        "order_by": ["metrics.auc DESC", "attributes.start_time ASC"], "max_results": 2,
        "page_token": body["next_page_token"]}, format="json").json()
    assert [r["name"] for r in second["runs"]] == ["rf-b"] and second["next_page_token"] is None

    bad = api.post("/api/v1/runs/search/", {"filter": "metrics.auc > 0.7 and (params.x = 'a'"}, format="json")
    assert bad.status_code == 400
    error = bad.json()["error"]
    assert error["code"] == "invalid_search"
    assert error["details"] == {"field": "filter", "position": 37, "token": ""}
    bad = api.post("/api/v1/runs/search/", {"filter": "metrics.auc >> 1"}, format="json")
    assert bad.status_code == 400 and bad.json()["error"]["details"]["position"] == 13
    bad = api.post("/api/v1/runs/search/", {"order_by": ["metrics.auc upward"]}, format="json")
    assert bad.status_code == 400 and bad.json()["error"]["details"]["token"] == "upward"
    bad = api.post("/api/v1/runs/search/", {"max_results": 5000}, format="json")
    assert bad.status_code == 400


def test_search_query_count_does_not_grow_with_results(client_for, scientist, experiment, lab,
                                                       django_assert_max_num_queries):
    api = client_for(scientist)
    body = {"filter": "metrics.auc > 0 or metrics.auc is null", "order_by": ["metrics.auc DESC"]}
    with django_assert_max_num_queries(12):
        assert len(api.post("/api/v1/runs/search/", body, format="json").json()["runs"]) == 6
