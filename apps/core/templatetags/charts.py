"""``{% load charts %}{% plotly_bundle %}``: the URL of the versioned
plotly.js bundle (apps/core/staticfinders.py), which static/js/charts.js
loads once a chart comes into view."""

from django import template
from django.templatetags.static import static

from apps.core.staticfinders import SERVED_AS

register = template.Library()


@register.simple_tag
def plotly_bundle() -> str:
    return static(SERVED_AS)
