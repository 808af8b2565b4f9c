"""docs/architecture.md stays the map of the code: every module of every app
is named in its app's section, every audit action and domain event the code
writes is named in the lifecycle, every queue and beat entry in the
processes, and the docs point to nothing outside the repository.

A rename or a new module that is not reflected in the document fails here;
update the document with the code."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from celery_app.schedule import BEAT_SCHEDULE

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "architecture.md").read_text()
APPS = ROOT / "apps"
# Present in the rooms table rather than in every app's section.
EVERY_APP_HAS = {"apps.py"}


def _sections() -> dict[str, str]:
    return dict(re.findall(r"### `apps/(\w+)`\n(.*?)(?=\n### |\n## )", DOC, re.S))


def _named() -> set[str]:
    """Every name in backticks, with shorthands expanded:
    ``expectation.created/updated/deleted`` and ``run.finished|failed|killed``."""
    names = set()
    for token in re.findall(r"`([^`\n]+)`", DOC):
        names.add(token)
        head, dot, tail = token.rpartition(".")
        if dot and re.search(r"[/|]", tail):
            names |= {f"{head}.{part}" for part in re.split(r"[/|]", tail)}
    return names


def _app_modules():
    for path in sorted(APPS.rglob("*.py")):
        parts = path.relative_to(APPS).parts
        if "tests" in parts or "migrations" in parts or path.name == "__init__.py":
            continue
        yield path, parts


def _literal_calls(function_names: set[str], keyword: str | None) -> set[str]:
    """String literals given to calls of ``function_names`` (first argument, or ``keyword``)."""
    found = set()
    for path, _ in _app_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name not in function_names:
                continue
            values = [k.value for k in node.keywords if k.arg == keyword] if keyword else node.args[:1]
            found |= {v.value for v in values if isinstance(v, ast.Constant) and isinstance(v.value, str)}
    return found


def test_every_app_has_a_section_and_every_module_is_named_in_it():
    sections = _sections()
    missing = []
    for path, parts in _app_modules():
        section = sections.get(parts[0])
        if section is None:
            missing.append(f"apps/{parts[0]} has no section")
            continue
        if path.name in EVERY_APP_HAS or path.name in section or "/".join(parts[1:]) in section:
            continue
        if len(parts) > 2 and f"`{parts[1]}/`" in section:  # a package named as a whole (``fileformats/``)
            continue
        missing.append("apps/" + "/".join(parts))
    assert missing == [], f"not in docs/architecture.md: {sorted(set(missing))}"


def test_every_audit_action_and_domain_event_of_the_code_is_named():
    from apps.datasets.services.versions import VALIDATED_EVENT
    from apps.registry.choices import DEMO_READY_EVENT, RegistryEvent
    from apps.serving.services.following import STALE_EVENT

    actions = _literal_calls({"audit_record"}, "action") | {STALE_EVENT}
    events = _literal_calls({"publish"}, None) | set(RegistryEvent.values) | {
        VALIDATED_EVENT, DEMO_READY_EVENT, f"serving.{STALE_EVENT}"}
    assert len(actions) > 35 and "promotion_request.approved" in actions
    named = _named()
    assert sorted(actions - named) == [], "audit actions missing from the lifecycle"
    assert sorted(events - named) == [], "domain events missing from the lifecycle"


def test_every_deployment_timeline_kind_is_named():
    source = "\n".join(path.read_text() for path in (APPS / "serving" / "services").glob("*.py"))
    kinds = set(re.findall(r'kind="(\w+)"', source))
    assert {"created", "promoted", "rolled_back"} <= kinds
    named = _named()
    assert sorted(kind for kind in kinds if kind not in named and f"deployment.{kind}" not in named) == []


def test_every_queue_and_beat_entry_is_named():
    from celery_app import app

    named = _named()
    queues = {queue.name for queue in app.conf.task_queues}
    assert sorted(queues - named) == []
    assert sorted(set(BEAT_SCHEDULE) - named) == []
    tasks = {entry["task"].rsplit(".", 1)[1] for entry in BEAT_SCHEDULE.values()}
    assert sorted(t for t in tasks if t not in DOC) == []


def test_the_layers_in_the_document_are_the_layers_of_the_test():
    from tests.test_import_direction import LAYERS

    diagram = re.search(r"```\n(core .*?)\n```", DOC, re.S).group(1)
    order = [name for name in re.findall(r"[a-z_]+", diagram) if name in LAYERS]
    assert order == [app for app in LAYERS if app in order]
    present = [path.name for path in APPS.iterdir() if (path / "__init__.py").exists()]
    assert set(present) <= set(order)


def test_the_docs_point_to_nothing_outside_the_repository():
    offenders = []
    for path in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *APPS.rglob("*.py"), *APPS.rglob("*.html"),
                 *(ROOT / "templates").rglob("*.html")]:
        text = path.read_text(errors="replace")
        if re.search(r"\.\./shared|shared/ARCHITECTURE|\bARCHITECTURE\.md", text):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
    for target in re.findall(r"\]\((docs/[^)#]+)", (ROOT / "README.md").read_text()):
        assert (ROOT / target).exists(), target
    for target in re.findall(r"\]\(([\w./-]+\.md)", DOC):
        assert (ROOT / "docs" / target).exists(), target
