"""MLflow's run-search filter and order-by text, rewritten into the
platform's own search language (``apps.experiments.run_filter``), which already
shares MLflow's grammar. What differs is rewritten token by token, nothing
else is touched:

* run names and nesting are attributes here: ``tags.mlflow.runName`` becomes
  ``attributes.run_name`` and ``tags.mlflow.parentRunId`` becomes
  ``attributes.parent_run_id``; ``attributes.created`` is ``start_time``;
* statuses are upper case in MLflow (``'FINISHED'``, ``'SCHEDULED'``) and
  lower case here (``'finished'``, ``'queued'``);
* run and experiment ids are strings in MLflow (``attributes.run_id = '42'``)
  and numbers here.

The result goes to ``run_search``, which checks it, compiles it to SQL
parameters and applies the caller's permissions."""

from __future__ import annotations

from apps.experiments.run_filter import ENTITY_PREFIXES, FilterSyntaxError, tokenize
from apps.mlflow_api.convert import FROM_MLFLOW_STATUS
from apps.mlflow_api.errors import invalid

_REFERENCE_REWRITES = {
    ("tags", "mlflow.runName"): ("attributes.run_name", "name"),
    ("tags", "mlflow.parentRunId"): ("attributes.parent_run_id", "parent_run_id"),
}
_ATTRIBUTE_ALIASES = {"created": "start_time", "run_uuid": "run_id"}
_ID_ATTRIBUTES = {"run_id", "id", "experiment_id", "parent_run_id"}


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def translate(text: str | None) -> str:
    """The platform's filter (or order-by item) for MLflow's ``text``."""
    if not text or not text.strip():
        return ""
    try:
        tokens = tokenize(text)
    except FilterSyntaxError as exc:
        raise invalid(f"Invalid search expression: {exc.message}")
    edits: list[tuple[int, int, str]] = []
    attribute = None  # the attribute the last reference named, if any
    i = 0
    while tokens[i].kind != "EOF":
        token = tokens[i]
        if token.kind in ("NAME", "QNAME") and (i == 0 or tokens[i - 1].kind != "DOT"):
            parts, j = [token], i
            while tokens[j + 1].kind == "DOT" and tokens[j + 2].kind in ("NAME", "QNAME", "STRING", "NUMBER",
                                                                           "KEYWORD"):
                parts.append(tokens[j + 2])
                j += 2
            names = [p.text if p.kind in ("NUMBER", "KEYWORD") else str(p.value) for p in parts]
            head = names[0].lower() if token.kind == "NAME" else None
            entity = ENTITY_PREFIXES.get(head) if len(names) > 1 else ("attribute" if head else None)
            key = ".".join(names[1:]) if len(names) > 1 else names[0]
            end = parts[-1].position + len(parts[-1].text)
            rewrite = _REFERENCE_REWRITES.get((f"{entity}s", key)) if entity == "tag" else None
            attribute = None
            if rewrite:
                edits.append((token.position, end, rewrite[0]))
                attribute = rewrite[1]
            elif entity == "attribute":
                attribute = _ATTRIBUTE_ALIASES.get(key.lower(), key.lower())
                if attribute != key.lower():
                    edits.append((token.position, end, f"attributes.{attribute}"))
            i = j + 1
            continue
        if token.kind == "STRING" and attribute == "status":
            status = FROM_MLFLOW_STATUS.get(str(token.value).upper(), str(token.value).lower())
            edits.append((token.position, token.position + len(token.text), _quote(str(status))))
        elif token.kind == "STRING" and attribute in _ID_ATTRIBUTES and str(token.value).isdigit():
            edits.append((token.position, token.position + len(token.text), str(int(token.value))))
        i += 1
    out, cursor = [], 0
    for start, end, replacement in edits:
        out.append(text[cursor:start])
        out.append(replacement)
        cursor = end
    out.append(text[cursor:])
    return "".join(out)


def translate_order_by(items) -> list[str]:
    if isinstance(items, str):
        items = [items]
    return [translate(item) for item in items or [] if isinstance(item, str) and item.strip()]
