"""Global search: datasets, experiments, runs, registered models and
endpoints by name, id or tag, among the objects the user may view.

Every kind starts from ``filter_visible`` (the one permissions helper), so a
query never matches, counts or names an object the user cannot open. The
dashboard sits on top of the layering and may read every app's models."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.apps import apps as django_apps
from django.db.models import Exists, OuterRef, Q, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.urls import reverse

from apps.core.permissions import filter_visible

MAX_QUERY_LENGTH = 200
MIN_TEXT_LENGTH = 2
DEFAULT_LIMIT = 20


@dataclass(frozen=True)
class SearchQuery:
    """What the user typed, read as text, an id (``12`` or ``#12``) and a tag
    (``key=value``: the tag ``key`` with a value containing ``value``)."""

    text: str
    ident: int | None = None
    tag_key: str | None = None
    tag_value: str | None = None

    @classmethod
    def parse(cls, raw: str) -> SearchQuery:
        text = " ".join((raw or "").split())[:MAX_QUERY_LENGTH]
        digits = text.removeprefix("#")
        ident = int(digits) if digits.isdigit() and len(digits) <= 18 else None
        tag_key = tag_value = None
        if "=" in text:
            key, _, value = text.partition("=")
            if key.strip():
                tag_key, tag_value = key.strip(), value.strip()
        return cls(text=text, ident=ident, tag_key=tag_key, tag_value=tag_value)

    @property
    def searchable(self) -> bool:
        return self.ident is not None or len(self.text) >= MIN_TEXT_LENGTH


@dataclass(frozen=True)
class SearchHit:
    title: str
    url: str
    detail: str = ""


@dataclass
class SearchGroup:
    kind: str
    label: str
    hits: list[SearchHit] = field(default_factory=list)
    more: bool = False  # more matches than shown


@dataclass
class SearchResult:
    query: str
    groups: list[SearchGroup]
    message: str = ""

    @property
    def total(self) -> int:
        return sum(len(group.hits) for group in self.groups)


def _json_tag_match(q: SearchQuery) -> Q:
    """A JSON ``{key: value}`` tags column matching the query: the key or the
    value contains the text, or ``key=value`` names the key and part of its value."""
    if q.tag_key is not None:
        return Q(_tag_value__icontains=q.tag_value) if q.tag_value else Q(_tag_value__isnull=False)
    return Q(_tags_text__icontains=q.text)


def _with_json_tags(qs, q: SearchQuery, column: str = "tags"):
    if q.tag_key is not None:
        return qs.annotate(_tag_value=KeyTextTransform(q.tag_key, column))
    return qs.annotate(_tags_text=Cast(column, output_field=TextField()))


def _by_name_or_id(q: SearchQuery, *names: str) -> Q:
    condition = Q()
    for name in names:
        condition |= Q(**{f"{name}__icontains": q.text})
    if q.ident is not None:
        condition |= Q(pk=q.ident)
    return condition


def _take(qs, limit: int) -> tuple[list, bool]:
    rows = list(qs[: limit + 1])
    return rows[:limit], len(rows) > limit


def _datasets(user, q: SearchQuery, limit: int) -> SearchGroup:
    from apps.datasets.models import Dataset

    qs = filter_visible(user, Dataset.objects.all()).filter(_by_name_or_id(q, "name")).order_by("name")
    rows, more = _take(qs, limit)
    return SearchGroup("datasets", "Datasets", [
        SearchHit(d.name, reverse("datasets:detail", args=[d.pk]), f"dataset #{d.pk}") for d in rows], more)


def _experiments(user, q: SearchQuery, limit: int) -> SearchGroup:
    from apps.experiments.models import Experiment

    qs = _with_json_tags(filter_visible(user, Experiment.objects.all()), q)
    qs = qs.filter(_by_name_or_id(q, "name") | _json_tag_match(q)).order_by("name")
    rows, more = _take(qs, limit)
    return SearchGroup("experiments", "Experiments", [
        SearchHit(e.name, reverse("experiments:detail", args=[e.pk]), f"experiment #{e.pk}") for e in rows], more)


def _runs(user, q: SearchQuery, limit: int) -> SearchGroup:
    from apps.experiments.models import Run, RunTag

    tags = RunTag.objects.filter(run=OuterRef("pk"))
    if q.tag_key is not None:
        tags = tags.filter(key=q.tag_key, value__icontains=q.tag_value or "")
    else:
        tags = tags.filter(Q(key__icontains=q.text) | Q(value__icontains=q.text))
    qs = (filter_visible(user, Run.objects.select_related("experiment"), via="experiment")
          .filter(_by_name_or_id(q, "name") | Exists(tags)).order_by("-start_time", "-id"))
    rows, more = _take(qs, limit)
    return SearchGroup("runs", "Runs", [
        SearchHit(str(r), reverse("experiments:run", args=[r.pk]),
                  f"run #{r.pk} · {r.experiment.name} · {r.get_status_display().lower()}") for r in rows], more)


def _models(user, q: SearchQuery, limit: int) -> SearchGroup:
    from apps.registry.models import RegisteredModel

    qs = _with_json_tags(filter_visible(user, RegisteredModel.objects.all()), q)
    qs = qs.filter(_by_name_or_id(q, "name") | _json_tag_match(q)).order_by("name")
    rows, more = _take(qs, limit)
    return SearchGroup("models", "Models", [
        SearchHit(m.name, reverse("registry:detail", args=[m.name]),
                  f"registered model #{m.pk} · {m.get_task_type_display().lower()}"
                  + (f" · latest v{m.latest_version}" if m.latest_version else "")) for m in rows], more)


def _endpoints(user, q: SearchQuery, limit: int) -> SearchGroup:
    from apps.serving.models import Endpoint

    qs = (filter_visible(user, Endpoint.objects.all(), "serving.view_endpoint")
          .filter(_by_name_or_id(q, "slug", "name")).order_by("slug"))
    rows, more = _take(qs, limit)
    return SearchGroup("endpoints", "Endpoints", [
        SearchHit(e.slug, reverse("serving:detail", args=[e.slug]),
                  f"endpoint #{e.pk} · {e.get_environment_display().lower()}"
                  + (f" · {e.name}" if e.name and e.name != e.slug else "")) for e in rows], more)


_KINDS = (
    ("datasets", _datasets),
    ("experiments", _experiments),
    ("experiments", _runs),
    ("registry", _models),
    ("serving", _endpoints),
)


def global_search(*, user, query: str, limit: int = DEFAULT_LIMIT) -> SearchResult:
    """Matches per kind (only kinds with matches, in a fixed order), at most
    ``limit`` each, only among objects ``user`` may view."""
    q = SearchQuery.parse(query)
    if not q.text:
        return SearchResult(query="", groups=[])
    if not q.searchable:
        return SearchResult(query=q.text, groups=[],
                            message=f"Type at least {MIN_TEXT_LENGTH} characters, or an id.")
    groups = []
    for app_label, search_kind in _KINDS:
        if not django_apps.is_installed(f"apps.{app_label}"):
            continue
        group = search_kind(user, q, limit)
        if group.hits:
            groups.append(group)
    return SearchResult(query=q.text, groups=groups)
