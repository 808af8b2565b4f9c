import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _manage(*args, **env):
    dropped = ("SECRET_KEY", "DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE")
    full_env = {k: v for k, v in os.environ.items() if k not in dropped}
    full_env.update(env)
    return subprocess.run([sys.executable, "manage.py", *args], check=False, cwd=ROOT, env=full_env,
                          capture_output=True,
                          text=True, timeout=120)


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    result = _manage("check", DJANGO_SETTINGS_MODULE="mlops_site.settings.production",
                     MLOPS_VAR_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    result = _manage("check", "--deploy", "--fail-level", "WARNING",
                     DJANGO_SETTINGS_MODULE="mlops_site.settings.production",
                     SECRET_KEY="k" * 20 + os.urandom(24).hex(), ALLOWED_HOSTS="mlops.example.org",
                     MLOPS_VAR_DIR=str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


GENERATE = "get_random_secret_key"


def _import_production(secret_key: str, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DJANGO_SETTINGS_MODULE")}
    env.update(SECRET_KEY=secret_key, MLOPS_VAR_DIR=str(tmp_path))
    return subprocess.run([sys.executable, "-c", "import mlops_site.settings.production"], check=False, cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)


def _shipped_keys() -> dict[str, str]:
    """Every key written down in the repository: anyone can read them."""
    import re

    import yaml
    from django.conf import settings

    secret = next(doc for doc in yaml.safe_load_all((ROOT / "docker/k8s/config.yaml").read_text())
                  if doc and doc["kind"] == "Secret")
    local = re.search(r'SECRET_KEY or "([^"]+)"', (ROOT / "mlops_site/settings/local.py").read_text()).group(1)
    return {
        "k8s manifest": secret["stringData"]["SECRET_KEY"] or "",
        "k8s manifest before this fix": "change-me-to-a-random-string-of-at-least-fifty-characters-0000",
        "test settings": settings.SECRET_KEY,
        "local settings": local,
        "former Docker build key": "build-only-key-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGH",
    }


BAD_KEYS = {
    "empty": "",
    "short": "a-random-but-short-key-31-chars",
    "one repeated character": "k" * 64,
    "django's insecure default": "django-insecure-" + "x1y2z3" * 8,
    "a change-me placeholder": "please-change-me-0123456789abcdefghijklmnopqrstuvwxyz0123",
}


SHIPPED = ["k8s manifest", "k8s manifest before this fix", "test settings", "local settings",
           "former Docker build key"]


@pytest.mark.parametrize("label", [*BAD_KEYS, *SHIPPED])
def test_production_refuses_placeholder_and_weak_secret_keys(label, tmp_path):
    key = BAD_KEYS[label] if label in BAD_KEYS else _shipped_keys()[label]
    result = _import_production(key, tmp_path)
    assert result.returncode != 0, f"production settings accepted the {label} key"
    assert "ImproperlyConfigured" in result.stderr
    assert GENERATE in result.stderr  # the message says how to make a good one


def test_production_accepts_a_generated_secret_key(tmp_path):
    from django.core.management.utils import get_random_secret_key

    result = _import_production(get_random_secret_key(), tmp_path)
    assert result.returncode == 0, result.stderr
