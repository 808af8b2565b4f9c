"""Is a new version the same table as the dataset's schema version?

A lab's export changes under it: a column is renamed in a LIMS update, the
target is dropped, a number column turns to text after a locale change, or
somebody uploads the wrong file. Each is reported as a failed schema check
(severity per dataset), rather than a valid version that trains on nonsense.
"""

from __future__ import annotations

import difflib
import re

NUMERIC = {"integer", "float"}
TEXTUAL = {"categorical", "text"}
NAME_SIMILARITY = 0.6
MAX_REPORTED = 20


def _compatible(old: str, new: str) -> bool:
    return old == new or {old, new} <= NUMERIC or {old, new} <= TEXTUAL


def _normalised(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _values_similar(old: dict, new: dict) -> bool:
    if not _compatible(old["type"], new["type"]):
        return False
    a, b = old.get("stats") or {}, new.get("stats") or {}
    if old["type"] in NUMERIC and new["type"] in NUMERIC:
        if None in (a.get("min"), a.get("max"), b.get("mean")):
            return False
        span = (a["max"] - a["min"]) or abs(a["max"]) or 1.0
        return a["min"] - 0.5 * span <= b["mean"] <= a["max"] + 0.5 * span
    if old["type"] in TEXTUAL:
        left, right = set(a.get("counts") or {}), set(b.get("counts") or {})
        if not left or not right:
            return old["type"] == new["type"] == "text"
        return len(left & right) / len(left | right) >= 0.5
    return True


def _rename_candidate(column: dict, added: list[dict]) -> dict | None:
    best, best_ratio = None, 0.0
    for candidate in added:
        ratio = difflib.SequenceMatcher(None, _normalised(column["name"]), _normalised(candidate["name"])).ratio()
        if ratio >= NAME_SIMILARITY and ratio > best_ratio and _values_similar(column, candidate):
            best, best_ratio = candidate, ratio
    return best


def _result(*, column: str, severity: str, description: str, message: str, observed) -> dict:
    return {"expectation_id": None, "kind": "schema_consistency", "column": column, "severity": severity,
            "description": description, "passed": False, "observed": observed, "message": message}


def compare_schemas(reference: dict, schema: dict, *, target: str = "", severity: str = "error") -> list[dict]:
    """Failed schema checks of ``schema`` against ``reference`` (empty when consistent)."""
    label = f"version {reference['version']}" if reference.get("version") else "the schema version"
    old = {c["name"]: c for c in reference.get("columns", [])}
    new = {c["name"]: c for c in schema.get("columns", [])}
    added = [c for name, c in new.items() if name not in old]
    results = []
    if target and target in old and target not in new:
        results.append(_result(
            column=target, severity=severity, description=f"the target column is in the file (as in {label})",
            observed={"missing": target},
            message=f"The target column {target!r} is missing (it is in {label}); this file has "
                    f"{', '.join(repr(n) for n in list(new)[:8])}{', …' if len(new) > 8 else ''}."))
    missing = [name for name in old if name not in new and name != target]
    if missing and len(missing) == len(old) - (target in old):
        results.append(_result(
            column="", severity=severity, description=f"the columns of {label} are in the file",
            observed={"missing": missing[:MAX_REPORTED], "found": list(new)[:MAX_REPORTED]},
            message=f"None of the {len(old)} columns of {label} is in this file (it has "
                    f"{', '.join(repr(n) for n in list(new)[:5])}); is it the right file?"))
        return results
    for name in missing[:MAX_REPORTED]:
        renamed = _rename_candidate(old[name], added)
        if renamed is not None:
            added.remove(renamed)
            results.append(_result(
                column=name, severity=severity, description=f"column {name!r} of {label} is in the file",
                observed={"missing": name, "renamed_to": renamed["name"]},
                message=f"Column {name!r} is missing and {renamed['name']!r} is new with similar values: "
                        f"was it renamed? Rename it back to {name!r} in the file."))
        else:
            results.append(_result(
                column=name, severity=severity, description=f"column {name!r} of {label} is in the file",
                observed={"missing": name},
                message=f"Column {name!r} of {label} is missing."))
    for name, column in new.items():
        before = old.get(name)
        if before is not None and not _compatible(before["type"], column["type"]):
            results.append(_result(
                column=name, severity=severity, description=f"column {name!r} keeps its type {before['type']}",
                observed={"was": before["type"], "now": column["type"]},
                message=f"Column {name!r} was {before['type']} in {label} and is {column['type']} now"
                        + (" (a decimal comma or a text value among the numbers?)"
                           if before["type"] in NUMERIC else "") + "."))
    return results
