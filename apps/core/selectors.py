from apps.core.errors import NotFound
from apps.core.models import ApiKey, AuditEvent, Notification, NotificationPreference
from apps.core.permissions import filter_visible, has_perm, is_admin


def api_key_list(*, user):
    qs = ApiKey.objects.select_related("user")
    return qs if is_admin(user) else qs.filter(user=user)


def api_key_list_own(*, user):
    """The user's own keys, newest first. The account page shows nobody
    else's, whatever the user's role (admins manage others' keys in the admin)."""
    return ApiKey.objects.filter(user=user).order_by("-created_at", "-id")


def api_key_get_own(*, user, pk) -> ApiKey:
    """One of the user's own keys; NotFound for anyone else's, so that ids
    reveal nothing."""
    api_key = api_key_list_own(user=user).filter(pk=pk).first()
    if api_key is None:
        raise NotFound("API key not found.")
    return api_key


def audit_event_list(*, user):
    """Audit events: everything for auditors (Approver, Admin); otherwise only
    the user's own actions."""
    qs = AuditEvent.objects.all()
    if has_perm(user, "core.view_auditevent"):
        return qs
    return qs.filter(actor=user)


def audit_events_for(*, obj):
    return AuditEvent.objects.filter(object_type=obj._meta.label_lower, object_id=str(obj.pk))


def notification_list(*, user, unread: bool | None = None):
    """The user's own notifications, newest first (nobody reads another's)."""
    if not getattr(user, "is_authenticated", False):
        return Notification.objects.none()
    qs = Notification.objects.filter(recipient=user)
    if unread is not None:
        qs = qs.filter(read_at__isnull=unread)
    return qs.order_by("-created_at", "-id")


def notification_get(*, user, pk) -> Notification:
    from apps.core.errors import NotFound

    found = notification_list(user=user).filter(pk=pk).first()
    if found is None:
        raise NotFound("Notification not found.")
    return found


def notification_unread_count(*, user) -> int:
    return notification_list(user=user, unread=True).count()


def notification_preference_get(*, user) -> NotificationPreference:
    """The user's preference (email off until they turn it on); unsaved when new."""
    return NotificationPreference.objects.filter(user=user).first() or NotificationPreference(user=user)


__all__ = ["api_key_get_own", "api_key_list", "api_key_list_own", "audit_event_list", "audit_events_for",
           "filter_visible", "notification_get", "notification_list", "notification_preference_get",
           "notification_unread_count"]
