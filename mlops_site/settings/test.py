"""The test run. Uses PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set (CI),
otherwise a SQLite file (a file, not memory, so a real worker process sees the
same data) and the filesystem broker."""

import os
import tempfile
from pathlib import Path

from .base import *
from .base import DATABASES, VAR_DIR, env

SECRET_KEY = "test-key-0123456789-abcdefghijklmnopqrstuvwxyz-not-secret"
DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
WHITENOISE_USE_FINDERS = True
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}

# One scratch directory per test session (and per xdist worker), shared with
# the worker processes the tests start, which inherit these variables.
_base_dir = Path(os.environ.get("MLOPS_TEST_RUN_DIR") or tempfile.mkdtemp(prefix="mlops-test-"))
os.environ["MLOPS_TEST_RUN_DIR"] = str(_base_dir)
_xdist = os.environ.get("PYTEST_XDIST_WORKER", "")
_run_dir = _base_dir / _xdist if _xdist else _base_dir
_run_dir.mkdir(parents=True, exist_ok=True)
os.environ.setdefault("MLOPS_TEST_BROKER_PREFIX", "mlops-test-" + os.urandom(4).hex())

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["NAME"] = str(_run_dir / "main.sqlite3")
    DATABASES["default"]["TEST"] = {"NAME": str(_run_dir / "test.sqlite3")}

# A worker started by the tests connects straight to the test database.
if os.environ.get("MLOPS_WORKER_TEST_DB"):
    DATABASES["default"]["NAME"] = os.environ["MLOPS_WORKER_TEST_DB"]
DATABASES["default"]["CONN_MAX_AGE"] = 0
# Such a worker outlives the flushes between tests (see apps.core.apps).
WORKER_CLEAR_CONTENT_TYPES_PER_TASK = True

ARTIFACT_ROOT = _run_dir / "artifacts"
STORAGES["default"]["OPTIONS"]["location"] = str(ARTIFACT_ROOT)
STORAGES["artifacts"] = STORAGES["default"]
MEDIA_ROOT = str(ARTIFACT_ROOT)

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(_run_dir / "cache"),
    }
}

if not env.str("CELERY_BROKER_URL", default="") and not env.str("REDIS_URL", default=""):
    _broker_dir = _run_dir / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS.update(
        {
            "data_folder_in": str(_broker_dir / "queue"),
            "data_folder_out": str(_broker_dir / "queue"),
            "processed_folder": str(_broker_dir / "processed"),
            "control_folder": str(_broker_dir / "control"),
        }
    )
    for _folder in ("queue", "processed", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
else:
    # Several test sessions may share one Redis; each gets its own key space.
    CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = (
        f"{os.environ['MLOPS_TEST_BROKER_PREFIX']}{_xdist}:"
    )
CELERY_BEAT_SCHEDULE = {}
# Webhook tests receive on a local server; tests of refused destinations
# empty this list.
WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
VAR_DIR = VAR_DIR  # noqa: PLW0127

STATIC_ROOT.mkdir(parents=True, exist_ok=True)
