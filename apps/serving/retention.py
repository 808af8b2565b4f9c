"""Guards on the prediction log's retention: apps above serving that
aggregate the log incrementally (monitoring's metric series) register a
callback here in ``AppConfig.ready()`` that names the first log id they have
not read yet; ``prediction_logs_prune`` deletes no row at or past the lowest
such id, so nothing is pruned before it was rolled up. Serving imports
nothing from those apps (the same pattern as ``judges.py``)."""

from __future__ import annotations

from collections.abc import Callable

# name -> callback returning "rows with id < X may be pruned" (None: no limit).
_GUARDS: dict[str, Callable[[], int | None]] = {}


def register_prune_guard(name: str, guard: Callable[[], int | None]) -> None:
    """Register (or replace) the guard ``name``."""
    _GUARDS[name] = guard


def unregister_prune_guard(name: str) -> None:
    _GUARDS.pop(name, None)


def prune_limit() -> int | None:
    """The lowest id any guard still needs (rows below it may go), or None
    when no guard limits the prune."""
    limits = [limit for guard in _GUARDS.values() if (limit := guard()) is not None]
    return min(limits) if limits else None


__all__ = ["prune_limit", "register_prune_guard", "unregister_prune_guard"]
