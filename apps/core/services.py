"""Writes owned by the core app: audit events, API keys, login throttling,
users and roles, notifications."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.core.mail import EmailMessage, get_connection
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.utils import timezone

from apps.core.choices import Role
from apps.core.context import current_request_id
from apps.core.errors import NotFound, PermissionDenied, RateLimited, ValidationFailed
from apps.core.models import ApiKey, AuditEvent, Notification, NotificationPreference

User = get_user_model()
logger = logging.getLogger(__name__)


# --- Audit ------------------------------------------------------------------

def _json_safe(value):
    if value is None:
        return None
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def audit_record(
    *,
    actor,
    action: str,
    target: models.Model | None = None,
    object_type: str = "",
    object_id: str | int = "",
    object_repr: str = "",
    before: dict | None = None,
    after: dict | None = None,
    message: str = "",
) -> AuditEvent:
    """Append one audit event. Must run inside the transaction of the change,
    so the event exists exactly when the change does."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must be called inside the transaction of the change it records")
    if target is not None:
        object_type = object_type or target._meta.label_lower
        object_id = object_id or target.pk
        object_repr = object_repr or str(target)[:255]
    actor_obj = actor if getattr(actor, "is_authenticated", False) else None
    return AuditEvent.objects.create(
        actor=actor_obj,
        actor_username=actor_obj.get_username() if actor_obj else "",
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        object_repr=object_repr[:255],
        before=_json_safe(before),
        after=_json_safe(after),
        message=message,
        request_id=current_request_id(),
    )


def snapshot(instance: models.Model, fields: list[str]) -> dict:
    """The audited view of an object: the named fields, foreign keys as ids."""
    data = {}
    for name in fields:
        field = instance._meta.get_field(name)
        data[name] = getattr(instance, field.attname)
    return _json_safe(data)


# --- API keys ---------------------------------------------------------------

API_KEY_PREFIX = "tsk_"


@dataclass(frozen=True)
class IssuedApiKey:
    api_key: ApiKey
    raw_key: str


def _hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def api_key_create(*, user, name: str, expires_at=None) -> IssuedApiKey:
    """Issue a key. The returned ``raw_key`` is the only time the secret exists."""
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("An API key needs a name.", details={"fields": {"name": ["Required."]}})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationFailed("expires_at must be in the future.")
    prefix = API_KEY_PREFIX + secrets.token_hex(4)
    raw_key = f"{prefix}.{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        api_key = ApiKey.objects.create(
            user=user, name=name[:100], prefix=prefix, key_hash=_hash_key(raw_key), expires_at=expires_at
        )
        audit_record(actor=user, action="api_key.created", target=api_key,
                     after={"name": api_key.name, "prefix": prefix, "user": user.pk})
    return IssuedApiKey(api_key=api_key, raw_key=raw_key)


def api_key_revoke(*, api_key: ApiKey, actor) -> ApiKey:
    with transaction.atomic():
        api_key = ApiKey.objects.select_for_update().get(pk=api_key.pk)
        if api_key.user_id != actor.pk and not actor.is_superuser and not actor.groups.filter(
            name=Role.ADMIN
        ).exists():
            raise PermissionDenied("You can only revoke your own API keys.")
        if api_key.revoked_at is None:
            api_key.revoked_at = timezone.now()
            api_key.save(update_fields=["revoked_at"])
            audit_record(actor=actor, action="api_key.revoked", target=api_key,
                         before={"revoked_at": None}, after={"revoked_at": api_key.revoked_at})
    _api_key_cache.clear()
    return api_key


class _TtlCache:
    """A tiny per-process cache so that authenticating the same key many times
    a second (the predict path) costs one query per second, not one per call."""

    def __init__(self, ttl: float):
        self.ttl = ttl
        self._data: dict = {}
        self._lock = threading.Lock()

    def get(self, key):
        item = self._data.get(key)
        if item is None or item[0] < time.monotonic():
            return None
        return item[1]

    def set(self, key, value):
        with self._lock:
            if len(self._data) > 10_000:
                self._data.clear()
            self._data[key] = (time.monotonic() + self.ttl, value)

    def clear(self):
        with self._lock:
            self._data.clear()


_api_key_cache = _TtlCache(ttl=1.0)
_LAST_USED_RESOLUTION = timedelta(seconds=60)


def api_key_authenticate(raw_key: str):
    """Return ``(user, api_key)`` for a valid key, or None.

    Revocation, expiry and a deactivated user take effect within a second."""
    if not raw_key.startswith(API_KEY_PREFIX) or "." not in raw_key or len(raw_key) > 200:
        return None
    key_hash = _hash_key(raw_key)
    cached = _api_key_cache.get(key_hash)
    if cached is None:
        prefix = raw_key.split(".", 1)[0]
        api_key = ApiKey.objects.select_related("user").filter(prefix=prefix).first()
        valid = (
            api_key is not None
            and hmac.compare_digest(api_key.key_hash, key_hash)
            and api_key.revoked_at is None
            and (api_key.expires_at is None or api_key.expires_at > timezone.now())
            and api_key.user.is_active
        )
        cached = (api_key.user, api_key) if valid else False
        _api_key_cache.set(key_hash, cached)
    if not cached:
        return None
    user, api_key = cached
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > _LAST_USED_RESOLUTION:
        api_key.last_used_at = now
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    return user, api_key


# --- Login throttling ---------------------------------------------------------

def _throttle_key(username: str, client_ip: str) -> str:
    digest = hashlib.sha256(f"{username.lower()}|{client_ip}".encode()).hexdigest()[:32]
    return f"login-failures:{digest}"


def login_throttle_check(*, username: str, client_ip: str) -> None:
    """Refuse a login attempt while (username, address) is locked out."""
    failures = cache.get(_throttle_key(username, client_ip), 0)
    if failures >= settings.LOGIN_FAILURE_LIMIT:
        minutes = max(1, settings.LOGIN_LOCKOUT_SECONDS // 60)
        raise RateLimited(
            f"Too many failed sign-in attempts. Try again in {minutes} minutes.",
            details={"retry_after_seconds": settings.LOGIN_LOCKOUT_SECONDS},
        )


def login_throttle_record_failure(*, username: str, client_ip: str) -> int:
    key = _throttle_key(username, client_ip)
    failures = cache.get(key, 0) + 1
    cache.set(key, failures, timeout=settings.LOGIN_LOCKOUT_SECONDS)
    return failures


def login_throttle_reset(*, username: str, client_ip: str) -> None:
    cache.delete(_throttle_key(username, client_ip))


# --- Users ------------------------------------------------------------------

def user_ensure(*, username: str, password: str, roles: list[str], email: str = "",
                is_superuser: bool = False, actor=None) -> tuple[User, bool]:
    """Create a user with the given roles, or bring an existing one's roles in
    line. Returns (user, created). The password is only set on creation."""
    unknown = set(roles) - set(Role.values)
    if unknown:
        raise ValidationFailed(f"Unknown roles: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        user, created = User.objects.get_or_create(
            username=username,
            defaults={"email": email, "is_staff": is_superuser or Role.ADMIN in roles or Role.APPROVER in roles,
                      "is_superuser": is_superuser},
        )
        if created:
            user.set_password(password)
            user.save()
        groups = list(Group.objects.filter(name__in=roles))
        if len(groups) != len(set(roles)):
            raise NotFound("Role groups are missing; run migrations first.")
        user.groups.add(*groups)
        if created:
            audit_record(actor=actor, action="user.created", target=user,
                         after={"username": username, "roles": sorted(roles), "is_superuser": is_superuser})
    return user, created


# --- Notifications ------------------------------------------------------------

def notifications_send(*, recipients, verb: str, text: str, url: str = "", target: models.Model | None = None,
                       object_type: str = "", object_id: str | int = "") -> list[Notification]:
    """Put ``text`` in each recipient's inbox (once per person, active users
    only) and email it to those who asked for email. Receivers of domain
    events call this after the change committed; a failing email is logged
    and the notifications stay."""
    users = {user.pk: user for user in recipients if user is not None and user.is_active}
    if not users:
        return []
    if target is not None:
        object_type = object_type or target._meta.label_lower
        object_id = object_id or target.pk
    with transaction.atomic():
        created = Notification.objects.bulk_create([
            Notification(recipient_id=pk, verb=verb[:100], object_type=object_type[:100],
                         object_id=str(object_id)[:64], url=url[:500], text=text)
            for pk in sorted(users)
        ])
    _notifications_email(created, users)
    return created


def _notifications_email(notifications: list[Notification], users: dict) -> None:
    wanted = set(NotificationPreference.objects.filter(user_id__in=list(users), email=True)
                 .values_list("user_id", flat=True))
    messages = []
    for notification in notifications:
        user = users[notification.recipient_id]
        if user.pk not in wanted or not user.email:
            continue
        body = notification.text
        if notification.url:
            body += f"\n\n{settings.SITE_URL}{notification.url}"
        subject = f"[TracSeq MLOps] {notification.text.splitlines()[0][:120]}"
        messages.append(EmailMessage(subject=subject, body=body, to=[user.email]))
    if not messages:
        return
    try:
        get_connection().send_messages(messages)
    except Exception:  # the inbox has it; a mail outage must not lose or break anything else
        logger.exception("sending %d notification email(s) failed", len(messages))


def notification_mark_read(*, notification: Notification, actor) -> Notification:
    """Mark one of the actor's own notifications read. Reading state is the
    user's own, like a mail client's, so it is not audited."""
    if notification.recipient_id != actor.pk:
        raise NotFound("Notification not found.")
    if notification.read_at is None:
        notification.read_at = timezone.now()
        Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(read_at=notification.read_at)
    return notification


def notifications_mark_all_read(*, actor) -> int:
    """Mark every unread notification of the actor read; returns how many."""
    return Notification.objects.filter(recipient=actor, read_at__isnull=True).update(read_at=timezone.now())


def notification_preference_set(*, actor, email: bool) -> NotificationPreference:
    with transaction.atomic():
        preference, _ = NotificationPreference.objects.select_for_update().get_or_create(user=actor)
        if preference.email != email:
            before = {"email": preference.email}
            preference.email = email
            preference.save(update_fields=["email", "updated_at"])
            audit_record(actor=actor, action="notification_preference.updated", target=preference,
                         before=before, after={"email": email})
    return preference
