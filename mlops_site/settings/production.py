"""Production: secrets and hosts must come from the environment."""

from django.core.exceptions import ImproperlyConfigured

from .base import *
from .base import SECRET_KEY, env

DEBUG = False

# Keys written down in this repository or its history (manifests, the other
# settings, the Docker build): anyone can read them, so they sign nothing.
KNOWN_PLACEHOLDER_KEYS = frozenset({
    "change-me-to-a-random-string-of-at-least-fifty-characters-0000",
    "test-key-0123456789-abcdefghijklmnopqrstuvwxyz-not-secret",
    "local-development-key-not-for-production-use-0123456789abcdef",
    "build-only-key-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGH",
})
PLACEHOLDER_MARKERS = ("django-insecure", "change-me", "changeme", "not-secret", "not-for-production",
                       "placeholder", "build-only")
GENERATE_SECRET_KEY = ('python -c "from django.core.management.utils import get_random_secret_key; '
                       'print(get_random_secret_key())"')


def secret_key_problem(key: str) -> str | None:
    """Why ``key`` must not sign production sessions, tokens and password
    resets, or None when it looks like a generated one."""
    if not key:
        return "is not set"
    if key in KNOWN_PLACEHOLDER_KEYS or any(marker in key.lower() for marker in PLACEHOLDER_MARKERS):
        return "is a placeholder published with the code"
    if len(key) < 50:
        return f"has {len(key)} characters (at least 50 are needed)"
    if len(set(key)) < 5:
        return "is not random"
    return None


if problem := secret_key_problem(SECRET_KEY):
    raise ImproperlyConfigured(
        f"SECRET_KEY {problem}. SECRET_KEY must be set in the environment to a random string of at least 50 "
        f"characters; generate one with: {GENERATE_SECRET_KEY}"
    )

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"] = ["rest_framework.renderers.JSONRenderer"]
