"""The default backend: the platform's own web processes serve every
deployed version (models are loaded per process by the predict path), so
there is nothing outside them to create, scale or delete."""

from __future__ import annotations

from typing import Any

from apps.serving.backends.base import DeploymentBackend


class LocalBackend(DeploymentBackend):
    """Serving happens in this platform's web processes; every call is a no-op."""

    name = "local"

    def apply(self, deployment: Any, *, dry_run: bool = False) -> list[dict]:
        return []

    def scale_down(self, deployment: Any, *, dry_run: bool = False) -> list[dict]:
        return []

    def remove(self, deployment: Any, *, dry_run: bool = False) -> list[dict]:
        return []
