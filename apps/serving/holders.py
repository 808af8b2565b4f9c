"""Who holds a split, for the pages: serving knows a split's holder only by
its label, so the app that holds splits (A/B tests, above serving) registers
a resolver in its ``AppConfig.ready()`` that turns a split into a link to
its page and the address that stops it. Imports point down; the endpoint
page still links to the test."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class SplitHolder:
    label: str
    url: str
    stop_url: str | None = None  # None: the viewer may not stop it


_resolvers: list[Callable] = []


def register(resolver: Callable) -> None:
    """``resolver(split_id, user) -> SplitHolder | None``."""
    if resolver not in _resolvers:
        _resolvers.append(resolver)


def split_holder(*, split_id: int, user) -> SplitHolder | None:
    for resolver in _resolvers:
        holder = resolver(split_id, user)
        if holder is not None:
            return holder
    return None
