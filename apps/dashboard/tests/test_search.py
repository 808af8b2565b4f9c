"""Global search: by name, id or tag, grouped by kind, only among objects
the user may view."""

from types import SimpleNamespace

import pytest
from django.urls import reverse

from apps.core.permissions import make_private
from apps.dashboard.search import SearchQuery, global_search

pytestmark = pytest.mark.django_db


def _lab_objects(user, prefix: str, *, private: bool = False) -> SimpleNamespace:
    """A dataset, an experiment with a tagged run, a registered model and an
    endpoint, all named ``<prefix>-…`` and owned by ``user``."""
    from apps.datasets.services import dataset_create
    from apps.experiments.services import experiment_create, run_create
    from apps.registry.services import registered_model_create
    from apps.serving.services import endpoint_create

    objects = SimpleNamespace(
        dataset=dataset_create(actor=user, name=f"{prefix}-submissions"),
        experiment=experiment_create(actor=user, name=f"{prefix}-qc-study", tags={"team": f"{prefix}-bench"}),
        model=registered_model_create(actor=user, name=f"{prefix}-sample-qc", task_type="classification",
                                      tags={"assay": f"{prefix}-wgs"}),
        endpoint=endpoint_create(actor=user, slug=f"{prefix}-qc-endpoint", name=f"{prefix} QC endpoint"),
    )
    objects.run = run_create(actor=user, experiment=objects.experiment, name=f"{prefix}-trial",
                             tags={"kit": f"{prefix}-kit-v2"})
    if private:
        for obj in (objects.dataset, objects.experiment, objects.model, objects.endpoint):
            make_private(obj)
    return objects


@pytest.fixture
def lab(make_user):
    ana = make_user("ML Engineer", username="ana")
    ben = make_user("ML Engineer", username="ben")
    viewer = make_user("Viewer", username="vic")
    return SimpleNamespace(ana=ana, ben=ben, viewer=viewer,
                           mine=_lab_objects(ana, "alpha"),
                           shared=_lab_objects(ben, "beta"),
                           private=_lab_objects(ben, "gamma", private=True))


def _titles(result) -> dict[str, list[str]]:
    return {group.kind: [hit.title for hit in group.hits] for group in result.groups}


def test_finds_each_kind_by_name_grouped_with_links(lab):
    result = global_search(user=lab.ana, query="alpha")
    assert _titles(result) == {
        "datasets": ["alpha-submissions"],
        "experiments": ["alpha-qc-study"],
        "runs": ["alpha-trial"],
        "models": ["alpha-sample-qc"],
        "endpoints": ["alpha-qc-endpoint"],
    }
    urls = {group.kind: group.hits[0].url for group in result.groups}
    assert urls == {
        "datasets": reverse("datasets:detail", args=[lab.mine.dataset.pk]),
        "experiments": reverse("experiments:detail", args=[lab.mine.experiment.pk]),
        "runs": reverse("experiments:run", args=[lab.mine.run.pk]),
        "models": reverse("registry:detail", args=[lab.mine.model.name]),
        "endpoints": reverse("serving:detail", args=[lab.mine.endpoint.slug]),
    }


def test_finds_by_tag_and_by_key_value(lab):
    assert _titles(global_search(user=lab.ana, query="alpha-kit"))["runs"] == ["alpha-trial"]
    assert _titles(global_search(user=lab.ana, query="kit=alpha-kit"))["runs"] == ["alpha-trial"]
    assert _titles(global_search(user=lab.ana, query="assay=alpha-wgs")) == {"models": ["alpha-sample-qc"]}
    assert _titles(global_search(user=lab.ana, query="team=alpha")) == {"experiments": ["alpha-qc-study"]}
    assert global_search(user=lab.ana, query="assay=nothing-like-it").groups == []


def _urls(result) -> set[str]:
    return {hit.url for group in result.groups for hit in group.hits}


def _url_of(obj) -> str:
    kind = type(obj).__name__
    if kind == "Dataset":
        return reverse("datasets:detail", args=[obj.pk])
    if kind == "Experiment":
        return reverse("experiments:detail", args=[obj.pk])
    if kind == "Run":
        return reverse("experiments:run", args=[obj.pk])
    if kind == "RegisteredModel":
        return reverse("registry:detail", args=[obj.name])
    return reverse("serving:detail", args=[obj.slug])


def test_finds_by_id(lab):
    for obj in vars(lab.mine).values():
        for query in (str(obj.pk), f"#{obj.pk}"):
            assert _url_of(obj) in _urls(global_search(user=lab.ana, query=query))


def test_shows_what_the_lab_shares_but_never_anyone_elses_private_objects(lab):
    shared = _titles(global_search(user=lab.ana, query="beta"))
    assert shared["datasets"] == ["beta-submissions"] and shared["runs"] == ["beta-trial"]
    assert global_search(user=lab.ana, query="gamma").groups == []
    assert global_search(user=lab.viewer, query="gamma").groups == []
    # Not by id, not by tag either.
    for obj in vars(lab.private).values():
        assert _url_of(obj) not in _urls(global_search(user=lab.ana, query=f"#{obj.pk}"))
    assert global_search(user=lab.ana, query="kit=gamma").groups == []
    assert global_search(user=lab.ana, query="assay=gamma").groups == []
    # Their owner finds them.
    owner_view = _titles(global_search(user=lab.ben, query="gamma"))
    assert owner_view["models"] == ["gamma-sample-qc"] and owner_view["endpoints"] == ["gamma-qc-endpoint"]


def test_page_shows_groups_and_hides_private_names(client, lab):
    client.force_login(lab.ana)
    page = client.get(reverse("dashboard:search"), {"q": "qc"})
    assert page.status_code == 200
    html = page.content.decode()
    for name in ("alpha-sample-qc", "beta-sample-qc", "alpha-qc-endpoint", "alpha-qc-study"):
        assert name in html
    assert "gamma" not in html
    assert 'id="search-models"' in html and 'id="search-endpoints"' in html
    assert page.context["search_query"] == "qc"
    # The header's search box carries the query.
    assert 'name="q" placeholder="Search datasets, runs, models…" aria-label="Search" value="qc"' in html


def test_page_says_when_nothing_matches_or_the_query_is_too_short(client, lab):
    client.force_login(lab.ana)
    assert b'id="search-empty"' in client.get(reverse("dashboard:search"), {"q": "gamma"}).content
    assert b"at least 2 characters" in client.get(reverse("dashboard:search"), {"q": "a"}).content
    empty = client.get(reverse("dashboard:search"))
    assert empty.status_code == 200 and b'id="search-summary"' not in empty.content


def test_limit_per_kind_says_there_is_more(lab, make_user):
    from apps.datasets.services import dataset_create

    for index in range(4):
        dataset_create(actor=lab.ana, name=f"batch-{index}")
    group = global_search(user=lab.ana, query="batch", limit=3).groups[0]
    assert [hit.title for hit in group.hits] == ["batch-0", "batch-1", "batch-2"] and group.more


def test_query_count_does_not_grow_with_matches(lab, django_assert_max_num_queries):
    from apps.datasets.services import dataset_create

    for index in range(15):
        dataset_create(actor=lab.ana, name=f"many-{index}")
    with django_assert_max_num_queries(12):
        assert global_search(user=lab.ana, query="many").total == 15


@pytest.mark.parametrize("raw, expected", [
    ("  sample   qc ", SearchQuery(text="sample qc")),
    ("#42", SearchQuery(text="#42", ident=42)),
    ("42", SearchQuery(text="42", ident=42)),
    ("team = qc", SearchQuery(text="team = qc", tag_key="team", tag_value="qc")),
    ("=qc", SearchQuery(text="=qc")),
    ("9" * 30, SearchQuery(text="9" * 30)),
])
def test_query_parsing(raw, expected):
    assert SearchQuery.parse(raw) == expected
