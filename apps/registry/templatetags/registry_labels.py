"""Words for registry values on pages: a version outside every stage has
"No stage", not "None"."""

from django import template

from apps.registry.choices import Stage

register = template.Library()


@register.filter
def stage_label(value) -> str:
    """The label of a stage value (``"staging"`` → ``"Staging"``), "No stage" for none."""
    if not value or value == Stage.NONE:
        return "No stage"
    try:
        return Stage(value).label
    except ValueError:
        return str(value)
