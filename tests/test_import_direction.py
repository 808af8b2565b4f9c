"""The layering of the apps (docs/architecture.md): an app may use the apps
below it, never one above it. A lower app learns what happened above it
through domain events (apps/core/events.py), not by importing the higher app.

Every module under apps/ is parsed (nothing is imported, so the check costs
no start-up and sees code behind ``if TYPE_CHECKING`` and inside functions
too). A dependency is any of:

* ``import apps.<app>...``, ``from apps.<app>... import ...``, ``from apps import <app>``;
* a lazy model reference, ``ForeignKey("<app>.Model")`` (also OneToOneField,
  ManyToManyField) or ``apps.get_model("<app>", ...)``;
* a migration's dependency on another app's migration.

Apps not yet in the repository keep their place in the order, so that they
fit in when they arrive."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

# Lowest first. An app may depend on the apps before it in this list.
LAYERS = ["core", "datasets", "experiments", "registry", "mlflow_api", "serving", "abtests", "monitoring",
          "retraining", "dashboard"]
RANK = {app: position for position, app in enumerate(LAYERS)}

APPS_DIR = Path(__file__).resolve().parent.parent / "apps"

# Test modules that still exercise higher apps from a lower app's tests/
# folder. Cross-app tests belong in tests/ at the repository root; these are
# the ones written before the rule, with the higher apps each one reaches.
# The list may only shrink: a test module not named here is held to the rule.
KNOWN_CROSS_APP_TESTS = {
    "core/tests/test_admin_permissions.py": {"abtests", "datasets", "experiments", "monitoring", "registry",
                                             "serving"},
    "core/tests/test_modelio.py": {"datasets", "experiments"},
    "datasets/tests/test_lab_files.py": {"experiments"},
    "registry/tests/test_api.py": {"serving"},
}

_RELATION_FIELDS = {"ForeignKey", "OneToOneField", "ManyToManyField"}


def _callee_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


def _string(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def referenced_apps(source: str, filename: str = "<module>") -> list[tuple[int, str, str]]:
    """(line, app, how) for every reference the module makes to an app in apps/."""
    found = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "apps" and len(parts) > 1:
                    found.append((node.lineno, parts[1], f"import {alias.name}"))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            parts = node.module.split(".")
            if node.module == "apps":
                for alias in node.names:
                    found.append((node.lineno, alias.name, f"from apps import {alias.name}"))
            elif parts[0] == "apps":
                found.append((node.lineno, parts[1], f"from {node.module} import ..."))
        elif isinstance(node, ast.Call):
            name = _callee_name(node)
            first = _string(node.args[0]) if node.args else None
            if name in _RELATION_FIELDS:
                target = first or _string(next((k.value for k in node.keywords if k.arg == "to"), None))
                if target and "." in target:
                    found.append((node.lineno, target.split(".")[0], f'{name}("{target}")'))
            elif name == "get_model" and first:
                label = first.split(".")[0]
                found.append((node.lineno, label, f'get_model("{first}")'))
        elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "dependencies" for t in node.targets):
            for element in getattr(node.value, "elts", []):
                label = _string(element.elts[0]) if isinstance(element, ast.Tuple) and element.elts else None
                if label:
                    found.append((node.lineno, label, f'migration dependency ("{label}", ...)'))
    return found


def upward_references(path: Path, apps_dir: Path = APPS_DIR) -> list[tuple[int, str, str]]:
    """The references of the module at ``path`` (under ``apps_dir``) to apps above its own."""
    own = path.relative_to(apps_dir).parts[0]
    if own not in RANK:
        return []
    return [(line, app, how) for line, app, how in referenced_apps(path.read_text(), str(path))
            if app in RANK and RANK[app] > RANK[own]]


def _modules() -> list[Path]:
    return sorted(path for path in APPS_DIR.rglob("*.py") if ".venv" not in path.parts)


def test_every_app_in_the_repository_has_a_place_in_the_layers():
    present = {path.name for path in APPS_DIR.iterdir() if (path / "__init__.py").exists()}
    assert present - set(LAYERS) == set(), "give the new app its place in LAYERS and docs/architecture.md"


def test_no_app_imports_an_app_above_it():
    violations = []
    for path in _modules():
        relative = path.relative_to(APPS_DIR).as_posix()
        allowed = KNOWN_CROSS_APP_TESTS.get(relative, set())
        for line, app, how in upward_references(path):
            if app not in allowed:
                violations.append(f"apps/{relative}:{line}: {how} (apps.{app} is above apps.{relative.split('/')[0]})")
    assert violations == [], "\n".join(violations)


@pytest.mark.parametrize("source, expected", [
    ("import apps.serving.runtime", {"serving"}),
    ("from apps.registry.models import ModelVersion", {"registry"}),
    ("from apps import serving", {"serving"}),
    ("def f():\n    from apps.serving import services\n", {"serving"}),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from apps.registry.models import M\n", {"registry"}),
    ('version = models.ForeignKey("registry.ModelVersion", on_delete=models.PROTECT)', {"registry"}),
    ('run = models.OneToOneField(to="experiments.Run", on_delete=models.CASCADE)', {"experiments"}),
    ('Endpoint = apps.get_model("serving", "Endpoint")', {"serving"}),
    ('dependencies = [("serving", "0001_initial"), ("auth", "0012")]', {"serving", "auth"}),
    ("from .models import Dataset\nimport json\nfrom django.db import models", set()),
])
def test_the_check_sees_every_way_of_reaching_another_app(source, expected):
    assert {app for _, app, _ in referenced_apps(source)} == expected


def test_an_upward_import_is_reported(tmp_path):
    module = tmp_path / "datasets" / "lineage.py"
    module.parent.mkdir()
    module.write_text("from apps.core.errors import NotFound\n\n\n"
                      "def users():\n    from apps.registry import selectors\n")
    assert upward_references(module, tmp_path) == [(5, "registry", "from apps.registry import ...")]
