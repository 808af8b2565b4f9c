from apps.core.models import ApiKey, AuditEvent
from apps.core.permissions import filter_visible, has_perm, is_admin


def api_key_list(*, user):
    qs = ApiKey.objects.select_related("user")
    return qs if is_admin(user) else qs.filter(user=user)


def audit_event_list(*, user):
    """Audit events: everything for auditors (Approver, Admin); otherwise only
    the user's own actions."""
    qs = AuditEvent.objects.all()
    if has_perm(user, "core.view_auditevent"):
        return qs
    return qs.filter(actor=user)


def audit_events_for(*, obj):
    return AuditEvent.objects.filter(object_type=obj._meta.label_lower, object_id=str(obj.pk))


__all__ = ["api_key_list", "audit_event_list", "audit_events_for", "filter_visible"]
