"""Developer machine and `make run`: debug on, embedded defaults."""

from .base import *
from .base import env

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = SECRET_KEY or "local-development-key-not-for-production-use-0123456789abcdef"
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}

STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Notification emails are printed by `make run` instead of sent.
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
