"""Reads that cut across apps for the overview page. The dashboard sits on
top of the layering, so it may read from every app."""

from django.apps import apps as django_apps

from apps.core.selectors import audit_event_list


def overview_cards(*, user) -> list[dict]:
    """One card per installed app that exposes ``overview_card(user=...)`` in
    its selectors module."""
    from importlib import import_module

    cards = []
    for config in django_apps.get_app_configs():
        if not config.name.startswith("apps.") or config.name in ("apps.core", "apps.dashboard"):
            continue
        try:
            module = import_module(f"{config.name}.selectors")
        except ModuleNotFoundError:
            continue
        card_fn = getattr(module, "overview_card", None)
        if card_fn is not None:
            card = card_fn(user=user)
            if card:
                cards.append(card)
    return cards


def recent_activity(*, user, limit: int = 15):
    return list(audit_event_list(user=user)[:limit])
