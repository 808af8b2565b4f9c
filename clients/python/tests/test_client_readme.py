"""The README's example, taken verbatim from clients/python/README.md and run
against a live server, so the documentation cannot drift from the client."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "the README has no python example"
    return blocks[0]


def test_the_readme_example_runs(tracking_server):
    # A separate interpreter, as a user would run it: nothing from the test
    # process (Django, fixtures) leaks into the example.
    result = subprocess.run(
        [sys.executable, "-c", readme_example()],
        env={"MLOPS_URL": tracking_server.url, "MLOPS_API_KEY": tracking_server.api_key, "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["rf-baseline 0.89", "20 points of val_auc"]

    from apps.experiments.models import Run

    run = Run.objects.get(name="rf-baseline")
    assert run.status == "finished"
    assert run.artifacts.get().path == "docs/notes.txt"
