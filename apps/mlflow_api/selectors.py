"""Reads the MLflow routes need beyond the experiments app's selectors:
experiment search in MLflow's filter syntax, and the step and time of runs'
latest metrics (MLflow shows them; the platform's run details carry values
only). Visibility is always decided by the experiments app's selectors and
the permissions helper."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from django.db.models import F, Q, QuerySet
from django.db.models.fields.json import KeyTextTransform

from apps.experiments import selectors as experiment_selectors
from apps.experiments.models import LatestMetric
from apps.experiments.run_filter import FilterSyntaxError, like_to_regex, tokenize
from apps.mlflow_api.errors import invalid
from apps.registry import selectors as registry_selectors

EXPERIMENT_SEARCH_LIMIT = 50_000
_EXPERIMENT_ORDER = {"name": "name", "creation_time": "created_at", "last_update_time": "updated_at",
                     "experiment_id": "id"}
_MODEL_ORDER = {"name": "name", "timestamp": "created_at", "creation_timestamp": "created_at",
                "last_updated_timestamp": "updated_at"}
_TEXT_OPS = {"=": "exact", "!=": "exact", "like": "regex", "ilike": "iregex"}
_TIME_OPS = {"=": "exact", "!=": "exact", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}


def latest_metrics(run_ids: list[int]) -> dict[int, list]:
    rows = defaultdict(list)
    for metric in LatestMetric.objects.filter(run_id__in=run_ids).order_by("key"):
        rows[metric.run_id].append(metric)
    return rows


def _condition(tokens, start: int, order_fields: dict) -> tuple[Q, int, dict]:
    """One comparison of an experiment filter from ``tokens[start]``:
    ``[attribute.]name|creation_time|last_update_time <op> value`` or
    ``tags.<key> <op> 'value'``. Returns (condition, next index, aliases)."""
    parts, i = [], start
    while True:
        token = tokens[i]
        if token.kind not in ("NAME", "QNAME", "STRING"):
            raise invalid(f"Expected a name at position {token.position} of the filter.")
        parts.append(str(token.value))
        i += 1
        if tokens[i].kind != "DOT":
            break
        i += 1
    head = parts[0].lower()
    if head in ("tags", "tag") and len(parts) > 1:
        entity, key = "tag", ".".join(parts[1:])
    elif head in ("attribute", "attributes", "attr") and len(parts) == 2:
        entity, key = "attribute", parts[1]
    elif len(parts) == 1:
        entity, key = "attribute", parts[0]
    else:
        raise invalid(f"Unknown name {'.'.join(parts)!r} in the experiment filter.")
    op_token = tokens[i]
    if op_token.kind == "OP" or (op_token.kind == "KEYWORD" and op_token.value in ("like", "ilike")):
        op = op_token.value
    else:
        raise invalid(f"Expected an operator at position {op_token.position} of the filter.")
    value_token = tokens[i + 1]
    if value_token.kind not in ("STRING", "NUMBER"):
        raise invalid(f"Expected a value at position {value_token.position} of the filter.")
    value = value_token.value
    aliases = {}
    if entity == "tag" or key in ("name",):
        if op not in _TEXT_OPS or value_token.kind != "STRING":
            raise invalid(f"{'.'.join(parts)} compares with =, !=, LIKE or ILIKE against a quoted string.")
        if entity == "tag":
            field = f"_tag{start}"
            aliases[field] = KeyTextTransform(key, "tags")
        else:
            field = "name"
        lookup = _TEXT_OPS[op]
        if op in ("like", "ilike"):
            value = like_to_regex(value)
        condition = Q(**{f"{field}__{lookup}": value})
        if op == "!=":
            condition = ~condition & Q(**{f"{field}__isnull": False})
        return condition, i + 2, aliases
    if key in order_fields and order_fields[key] in ("created_at", "updated_at"):
        if op not in _TIME_OPS or value_token.kind != "NUMBER":
            raise invalid(f"{key} compares with a number of milliseconds since the epoch.")
        moment = datetime.fromtimestamp(value / 1000.0, tz=UTC)
        condition = Q(**{f"{order_fields[key]}__{_TIME_OPS[op]}": moment})
        return (~condition if op == "!=" else condition), i + 2, aliases
    times = ", ".join(k for k, v in order_fields.items() if v in ("created_at", "updated_at"))
    raise invalid(f"Unknown attribute {key!r} in the filter; use name, {times} or tags.<key>.")


def experiment_search(*, user, filter_string: str = "", order_by=(), offset: int = 0,
                      max_results: int = 1000) -> tuple[list, bool]:
    """The experiments the user may view matching an MLflow experiment
    filter (comparisons joined by AND), sorted; (page, more pages exist)."""
    return search_named(experiment_selectors.experiment_list(user=user), filter_string=filter_string,
                        order_by=order_by, offset=offset, max_results=max_results, order_fields=_EXPERIMENT_ORDER,
                        default_order=[F("created_at").desc()])


def registered_model_search(*, user, filter_string: str = "", order_by=(), offset: int = 0,
                            max_results: int = 100) -> tuple[list, bool]:
    return search_named(registry_selectors.registered_model_list(user=user), filter_string=filter_string,
                        order_by=order_by, offset=offset, max_results=max_results, order_fields=_MODEL_ORDER,
                        default_order=[F("name").asc()])


def search_named(qs: QuerySet, *, filter_string: str, order_by, offset: int, max_results: int, order_fields: dict,
                 default_order: list) -> tuple[list, bool]:
    """``qs`` (objects with a name, JSON tags and created/updated times)
    filtered by MLflow's ``name``/``tags.<key>``/time comparisons joined by
    AND, sorted by ``order_by``; (page, more pages exist)."""
    if filter_string and filter_string.strip():
        try:
            tokens = tokenize(filter_string)
        except FilterSyntaxError as exc:
            raise invalid(f"Invalid filter: {exc.message}")
        i, conditions, aliases = 0, [], {}
        while True:
            condition, i, more = _condition(tokens, i, order_fields)
            conditions.append(condition)
            aliases.update(more)
            if tokens[i].kind == "EOF":
                break
            if not (tokens[i].kind == "KEYWORD" and tokens[i].value == "and"):
                raise invalid(f"Expected AND at position {tokens[i].position} of the filter.")
            i += 1
        if aliases:
            qs = qs.alias(**aliases)
        for condition in conditions:
            qs = qs.filter(condition)
    ordering = []
    for item in order_by or []:
        words = str(item).split()
        name = words[0].split(".", 1)[1] if words and words[0].lower().startswith("attribute") else (
            words[0] if words else "")
        if name not in order_fields or len(words) > 2 or (
                len(words) == 2 and words[1].upper() not in ("ASC", "DESC")):
            raise invalid(f"Invalid order_by {item!r}: use {', '.join(order_fields)}, with ASC or DESC.")
        column = F(order_fields[name])
        ordering.append(column.desc() if len(words) == 2 and words[1].upper() == "DESC" else column.asc())
    if not ordering:
        ordering = list(default_order)
    ordering.append(F("id").asc())
    rows = list(qs.order_by(*ordering)[offset: offset + max_results + 1])
    return rows[:max_results], len(rows) > max_results


def logged_model_directories(*, experiment_ids: list[int], name: str | None = None,
                             run_id: str | None = None, limit: int = 1000) -> list[tuple]:
    """(run, directory) of every top-level directory holding an ``MLmodel``
    file in the runs of ``experiment_ids`` (already the visible ones)."""
    from apps.experiments.models import Artifact

    qs = Artifact.objects.filter(run__experiment_id__in=experiment_ids, path__regex=r"^[^/]+/MLmodel$")
    if name is not None:
        qs = qs.filter(path=f"{name}/MLmodel")
    if run_id is not None:
        qs = qs.filter(run_id=int(run_id)) if str(run_id).isdigit() else qs.none()
    return [(artifact.run, artifact.path.split("/")[0])
            for artifact in qs.select_related("run").order_by("-run__start_time", "path")[:limit]]
