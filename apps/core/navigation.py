"""The browser navigation. Each app adds its entry in ``AppConfig.ready()``,
so the menu only shows pages that exist."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    order: int
    permission: str | None = None  # a model permission needed to see the entry


_items: dict[str, NavItem] = {}


def register(label: str, url_name: str, *, order: int, permission: str | None = None) -> None:
    _items[url_name] = NavItem(label=label, url_name=url_name, order=order, permission=permission)


def items() -> list[NavItem]:
    return sorted(_items.values(), key=lambda item: item.order)
