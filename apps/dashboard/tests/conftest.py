"""The home page and the inbox read every app: reuse the registry's people,
data and runs, and the serving tests' clean process state."""

from apps.registry.tests.conftest import data, make_run, people, registered  # noqa: F401
from apps.serving.tests.conftest import _serving_process_state  # noqa: F401
