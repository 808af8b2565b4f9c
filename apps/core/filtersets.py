import django_filters
from django import forms

from apps.core.api.fields import MAX_ID
from apps.core.models import AuditEvent


class IdFilter(django_filters.NumberFilter):
    """An id in a query string: a whole number within the key's range, else
    a 400 (a larger number would overflow in the query)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 0)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class AuditEventFilter(django_filters.FilterSet):
    actor = django_filters.CharFilter(field_name="actor_username")
    action = django_filters.CharFilter(field_name="action")
    action_prefix = django_filters.CharFilter(field_name="action", lookup_expr="startswith")
    object_type = django_filters.CharFilter(field_name="object_type")
    object_id = django_filters.CharFilter(field_name="object_id")
    request_id = django_filters.CharFilter(field_name="request_id")
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields = ["actor", "action", "action_prefix", "object_type", "object_id", "request_id", "since", "until"]
