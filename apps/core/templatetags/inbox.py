"""The inbox bell of the page header: ``{% load inbox %}{% inbox_bell %}``."""

from django import template

from apps.core.selectors import notification_unread_count

register = template.Library()


@register.inclusion_tag("core/_inbox_bell.html", takes_context=True)
def inbox_bell(context):
    user = context.get("user")
    unread = notification_unread_count(user=user) if getattr(user, "is_authenticated", False) else 0
    return {"unread": unread}
