"""Run search: the filter language compiled to Django ``Q`` objects, sorting
on metrics, params, tags and attributes, and keyset pagination.

SQL shape: every metric, param or tag key the query mentions becomes one
LEFT JOIN to the latest-metric, param or tag table restricted to that key
(``FilteredRelation``). Each run has at most one row per key (unique
constraints), so joins never multiply runs, and comparisons, ``or``,
``not`` and sorting all work on plain columns of one row per run. The joins
hit the (run, key) unique indexes; the run side starts from the experiment
index. Nothing typed by the user becomes SQL text: values are parameters and
``like`` patterns are translated to regular expressions.

Pages are cut by keyset: the page token carries the sort values and id of
the last run shown, and the next page asks for runs strictly after it in
the sort order. Runs inserted meanwhile do not shift pages (no offsets), and
every existing run appears exactly once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Exists, F, FilteredRelation, OrderBy, OuterRef, Q, QuerySet
from django.db.models.functions import Left

from apps.core.errors import ValidationFailed
from apps.experiments.models import VALUE_INDEX_PREFIX, LatestMetric, Param, Run, RunTag
from apps.experiments.run_filter import (
    ATTRIBUTE,
    METRIC,
    PARAM,
    TAG,
    TIME,
    And,
    Comparison,
    FilterSyntaxError,
    Not,
    Or,
    OrderTerm,
    Reference,
    like_to_regex,
    parse_filter,
    parse_order_by,
)
from apps.experiments.selectors.tracking import attach_details, visible_experiment_ids

MAX_RESULTS_LIMIT = 1000
DEFAULT_MAX_RESULTS = 100
MAX_JOINED_KEYS = 20

# Attribute -> model field path.
ATTRIBUTE_FIELDS = {
    "run_id": "id",
    "name": "name",
    "status": "status",
    "start_time": "start_time",
    "end_time": "end_time",
    "user": "user__username",
    "dataset_version": "dataset_version_id",
    "experiment_id": "experiment_id",
    "parent_run_id": "parent_id",
    "source_version": "source_version",
}
_RELATION = {METRIC: "latest_metrics", PARAM: "params", TAG: "tags"}
_MODELS = {METRIC: LatestMetric, PARAM: Param, TAG: RunTag}
DEFAULT_ORDER = [OrderTerm(Reference(ATTRIBUTE, "start_time", 0, TIME, False), descending=True)]


class SearchError(ValidationFailed):
    code = "invalid_search"


def syntax_error(exc: FilterSyntaxError, *, field: str) -> SearchError:
    return SearchError(f"{field}: {exc.message}",
                       details={"field": field, "position": exc.position, "token": exc.token})


@dataclass
class SearchPage:
    runs: list[Run]
    next_page_token: str | None


class _Compiler:
    """Turns a parsed filter and order into annotations and ``Q`` objects
    over one run queryset."""

    def __init__(self, experiment_ids: list[int], exists_keys=frozenset()):
        # The experiments searched: every join and probe is restricted to
        # them too, so that the (experiment, key, value, run) indexes of the
        # param, latest-metric and tag tables can start from the experiment.
        self.experiment_ids = experiment_ids
        # Keys whose top-level comparisons become EXISTS probes (see
        # ``_probe_keys``) instead of joins.
        self.exists_keys = exists_keys
        self.relations: dict[str, FilteredRelation] = {}
        self.columns: dict[tuple[str, str], str] = {}
        self.aliases: dict[str, object] = {}

    def column(self, ref: Reference) -> tuple[str, bool]:
        """The lookup name for a reference, and whether it may be null."""
        if ref.entity == ATTRIBUTE:
            return ATTRIBUTE_FIELDS[ref.key], ref.nullable
        slot = (ref.entity, ref.key)
        if slot not in self.columns:
            if len(self.columns) >= MAX_JOINED_KEYS:
                raise SearchError(f"A search may mention at most {MAX_JOINED_KEYS} different metric, param "
                                  "and tag keys.", details={"position": ref.position})
            index = len(self.columns)
            relation = _RELATION[ref.entity]
            self.relations[f"_j{index}"] = FilteredRelation(relation, condition=Q(**{
                f"{relation}__experiment_id__in": self.experiment_ids, f"{relation}__key": ref.key}))
            self.columns[slot] = f"_v{index}"
            self.aliases[f"_v{index}"] = F(f"_j{index}__value")
            if ref.entity in (PARAM, TAG):
                # The indexed expression (see VALUE_INDEX_PREFIX on the models).
                self.aliases[f"_p{index}"] = Left(F(f"_j{index}__value"), VALUE_INDEX_PREFIX)
        return self.columns[slot], True

    def compile(self, node, negate: bool = False) -> Q:
        if isinstance(node, Not):
            return self.compile(node.child, not negate)
        if isinstance(node, (And, Or)):
            parts = [self.compile(child, negate) for child in node.children]
            # De Morgan: negation swaps and/or and moves down to comparisons.
            use_and = isinstance(node, And) != negate
            combined = parts[0]
            for part in parts[1:]:
                combined = (combined & part) if use_and else (combined | part)
            return combined
        return self.comparison(node, negate)

    def comparison(self, node: Comparison, negate: bool) -> Q:
        if not negate and node.op != "is null" and (node.ref.entity, node.ref.key) in self.exists_keys:
            return self.probe(node)
        column, nullable = self.column(node.ref)
        op = node.op
        present = Q(**{f"{column}__isnull": False})
        if op in ("is null", "is not null"):
            is_null = (op == "is null") != negate
            return Q(**{f"{column}__isnull": is_null})
        prefix = f"_p{column[2:]}" if node.ref.entity in (PARAM, TAG) else None
        positive = _positive(column, prefix, present, node)
        if not negate:
            return positive
        # A comparison on a missing value is false, so its negation is true.
        negated = ~positive
        return (Q(**{f"{column}__isnull": True}) | negated) if nullable else negated

    def probe(self, node: Comparison) -> Q:
        """``EXISTS (a row of the run with this key whose value passes)``:
        the same truth as the join (at most one row per run and key), but
        PostgreSQL can check it per run through the (run, key) unique index
        while it walks the runs in sort order, and stop after a page."""
        model = _MODELS[node.ref.entity]
        # No experiment condition either: the run decides it, and repeating
        # it would shrink the planner's estimate of how many runs pass.
        rows = model.objects.filter(run_id=OuterRef("pk"), key=node.ref.key)
        if node.op != "is not null":
            # No value-prefix condition here: the probe goes through the
            # (run, key) unique index, and a prefix repeating the value
            # condition makes the planner count its selectivity twice.
            rows = rows.filter(_positive("value", None, Q(), node))
        return Q(Exists(rows))


def _positive(column: str, prefix: str | None, present: Q, node: Comparison) -> Q:
    """The comparison on ``column`` (holding the value, null when the run
    lacks the key), true only for runs that have the key."""
    op, value = node.op, node.value
    if op == "=":
        positive = Q(**{column: value})
        if prefix:
            positive &= Q(**{prefix: value[:VALUE_INDEX_PREFIX]})
    elif op == "!=":
        positive = present & ~Q(**{column: value})
    elif op in ("<", "<=", ">", ">="):
        lookup = {"<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}[op]
        positive = Q(**{f"{column}__{lookup}": value})
    elif op == "in":
        positive = Q(**{f"{column}__in": list(value)})
        if prefix:
            positive &= Q(**{f"{prefix}__in": sorted({v[:VALUE_INDEX_PREFIX] for v in value})})
    elif op == "not in":
        positive = present & ~Q(**{f"{column}__in": list(value)})
    elif op in ("like", "ilike"):
        lookup = "regex" if op == "like" else "iregex"
        positive = Q(**{f"{column}__{lookup}": like_to_regex(value)})
    elif op in ("not like", "not ilike"):
        lookup = "regex" if op == "not like" else "iregex"
        positive = present & ~Q(**{f"{column}__{lookup}": like_to_regex(value)})
    else:  # the parser only produces the operators above
        raise SearchError(f"Unsupported operator {op!r}.", details={"position": node.position})
    return positive


@dataclass(frozen=True)
class _SortColumn:
    name: str  # annotation name
    descending: bool
    nullable: bool
    is_time: bool


def run_search_queryset(*, user, experiment_ids=None, filter_string: str | None = "",
                        order_by=None) -> tuple[QuerySet, list[_SortColumn]]:
    """The filtered, sorted (not yet paginated) queryset of runs the user
    may see in ``experiment_ids`` (all visible experiments when None), and
    the sort columns for pagination. Raises ``SearchError`` (400) naming the
    bad token and its position."""
    qs, columns, _ = _search_queryset(user=user, experiment_ids=experiment_ids, filter_string=filter_string,
                                      order_by=order_by, scope_by_sort_join=False)
    return qs, columns


def _search_queryset(*, user, experiment_ids, filter_string, order_by,
                     scope_by_sort_join: bool) -> tuple[QuerySet, list[_SortColumn], list[int]]:
    """``run_search_queryset``, and the visible experiment ids. With
    ``scope_by_sort_join``, when the first sort key is a metric, param or
    tag every matching run must have, the runs are restricted to the
    visible experiments through that key's join (whose rows carry the run's
    experiment) rather than on the run table as well: PostgreSQL multiplies
    the two restrictions as if independent, underestimates the rows by the
    experiment's share of all runs, and then prefers sorting everything to
    walking the key's index. The caller must check ``experiment_id`` of the
    rows it gets (``run_search`` does) so that a run can never show outside
    the visible experiments, whatever the denormalised column says."""
    try:
        tree = parse_filter(filter_string)
    except FilterSyntaxError as exc:
        raise syntax_error(exc, field="filter")
    try:
        terms = parse_order_by(order_by) or DEFAULT_ORDER
    except FilterSyntaxError as exc:
        raise syntax_error(exc, field="order_by")

    if experiment_ids is not None:
        experiment_ids = _clean_ids(experiment_ids)
    visible = visible_experiment_ids(user=user, ids=experiment_ids)
    present = _required_keys(tree)
    first = terms[0].ref
    if scope_by_sort_join and first.entity != ATTRIBUTE and (first.entity, first.key) in present:
        qs = Run.objects.all()
    else:
        qs = Run.objects.filter(experiment_id__in=visible)
    sort_keys = {(term.ref.entity, term.ref.key) for term in terms if term.ref.entity != ATTRIBUTE}
    compiler = _Compiler(visible, exists_keys=frozenset(present - sort_keys))
    condition = compiler.compile(tree) if tree is not None else None
    sort_exprs = {}
    sort_columns = []
    for index, term in enumerate(terms):
        column, nullable = compiler.column(term.ref)
        if (term.ref.entity, term.ref.key) in present:
            # The filter guarantees the key: no nulls to place, so the sort
            # can follow the index order (PostgreSQL's default null placement).
            nullable = False
        name = f"_s{index}"
        sort_exprs[name] = F(column)
        sort_columns.append(_SortColumn(name, term.descending, nullable,
                                        term.ref.entity == ATTRIBUTE and term.ref.kind == TIME))
    if compiler.relations:
        qs = qs.alias(**compiler.relations).alias(**compiler.aliases)
    if condition is not None:
        qs = qs.filter(condition)
    qs = qs.annotate(**sort_exprs)
    ordering = [OrderBy(F(col.name), descending=col.descending, nulls_last=True if col.nullable else None)
                for col in sort_columns]
    # Ties break on id in the first column's direction, so that an index on
    # (key, value, run) delivers rows already in order, either way round.
    ordering.append(OrderBy(F("id"), descending=sort_columns[0].descending))
    return qs.order_by(*ordering), sort_columns, visible


def _required_keys(tree) -> set[tuple[str, str]]:
    """Metric, param and tag keys every matching run must have: those of
    comparisons that are top-level conjuncts of the filter (other than
    ``is null``). Comparisons on them that are not also sort keys compile
    to ``EXISTS`` probes: a sort on a metric then walks that metric's
    (experiment, key, value, run) index in order, checks the other
    conditions run by run, and stops once it has a page."""
    if tree is None:
        return set()
    conjuncts = tree.children if isinstance(tree, And) else (tree,)
    return {(node.ref.entity, node.ref.key) for node in conjuncts
            if isinstance(node, Comparison) and node.ref.entity != ATTRIBUTE and node.op != "is null"}


def _clean_ids(values) -> list[int]:
    if isinstance(values, (int, str)):
        values = [values]
    try:
        ids = [int(v) for v in values if not isinstance(v, bool)]
    except (TypeError, ValueError):
        raise SearchError("experiment_ids must be a list of experiment ids.", details={"field": "experiment_ids"})
    if len(ids) > 1000:
        raise SearchError("At most 1000 experiment ids.", details={"field": "experiment_ids"})
    return ids


def _query_fingerprint(experiment_ids, filter_string, order_by) -> str:
    ids = sorted(_clean_ids(experiment_ids)) if experiment_ids is not None else None
    order = [order_by] if isinstance(order_by, str) else list(order_by or [])
    raw = json.dumps([ids, (filter_string or "").strip(), order], sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _encode_token(values: list, last_id: int, fingerprint: str) -> str:
    encoded = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    raw = json.dumps({"v": encoded, "id": last_id, "q": fingerprint}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_token(token: str, columns: list[_SortColumn], fingerprint: str) -> tuple[list, int]:
    invalid = SearchError("page_token is not valid for this search.", code="invalid_page_token",
                          details={"field": "page_token"})
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        values, last_id = data["v"], int(data["id"])
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise invalid
    if data.get("q") != fingerprint or not isinstance(values, list) or len(values) != len(columns):
        raise invalid
    decoded = []
    for raw_value, column in zip(values, columns, strict=True):
        value = raw_value
        if raw_value is not None and column.is_time:
            try:
                value = datetime.fromisoformat(raw_value)
            except (TypeError, ValueError):
                raise invalid
        decoded.append(value)
    return decoded, last_id


def _after(columns: list[_SortColumn], values: list, last_id: int) -> Q:
    """Rows strictly after the cursor in (sort columns..., id) order, nulls
    last in every nullable column, id in the first column's direction."""
    disjuncts = []
    equal_so_far = Q()
    for column, value in zip(columns, values, strict=True):
        if value is None:
            # Nothing sorts after null except further nulls, handled by equality.
            after = None
            equal = Q(**{f"{column.name}__isnull": True})
        else:
            after = Q(**{f"{column.name}__{'lt' if column.descending else 'gt'}": value})
            if column.nullable:
                after |= Q(**{f"{column.name}__isnull": True})
            equal = Q(**{column.name: value})
        if after is not None:
            disjuncts.append(equal_so_far & after)
        equal_so_far &= equal
    disjuncts.append(equal_so_far & Q(**{"id__lt" if columns[0].descending else "id__gt": last_id}))
    condition = disjuncts[0]
    for part in disjuncts[1:]:
        condition |= part
    return condition


def run_search(*, user, experiment_ids=None, filter_string: str | None = "", order_by=None,
               max_results: int = DEFAULT_MAX_RESULTS, page_token: str | None = None) -> SearchPage:
    """One page of runs matching the filter, sorted, with a token for the
    next page (None on the last page). Runs carry their details (see
    ``attach_details``)."""
    if isinstance(max_results, bool) or not isinstance(max_results, int) or not (
            1 <= max_results <= MAX_RESULTS_LIMIT):
        raise SearchError(f"max_results must be between 1 and {MAX_RESULTS_LIMIT}.",
                          details={"field": "max_results"})
    qs, columns, visible = _search_queryset(user=user, experiment_ids=experiment_ids, filter_string=filter_string,
                                            order_by=order_by, scope_by_sort_join=True)
    fingerprint = _query_fingerprint(experiment_ids, filter_string, order_by)
    if page_token:
        values, last_id = _decode_token(page_token, columns, fingerprint)
        qs = qs.filter(_after(columns, values, last_id))
    # The summary columns (artifact count, training job) are read for the
    # page's runs only, by ``attach_details``: here PostgreSQL would compute
    # them for every matching run before sorting.
    rows = list(qs.select_related("user")[: max_results + 1])
    allowed = set(visible)
    rows = [run for run in rows if run.experiment_id in allowed]  # see _search_queryset
    next_token = None
    if len(rows) > max_results:
        rows = rows[:max_results]
        last = rows[-1]
        next_token = _encode_token([getattr(last, c.name) for c in columns], last.pk, fingerprint)
    attach_details(rows)
    return SearchPage(runs=rows, next_page_token=next_token)


__all__ = ["SearchError", "SearchPage", "run_search", "run_search_queryset"]
