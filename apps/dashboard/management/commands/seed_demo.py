"""Make a new installation look like a living lab.

Calls ``seed(context, password=..., stdout=...)`` in each app's ``demo``
module, lowest layer first; later apps read what earlier ones made from
``context``. Idempotent: seeding twice does not duplicate anything. Work that
takes time (validation, training) is enqueued for the worker, so this
command returns quickly and the pages fill in as the worker finishes."""

from importlib import import_module

from django.conf import settings
from django.core.management.base import BaseCommand

DEMO_APPS = ["apps.core", "apps.datasets", "apps.experiments", "apps.registry", "apps.serving",
             "apps.abtests", "apps.monitoring"]


class Command(BaseCommand):
    help = "Load the demo lab: users per role, sample-submission data, models, an endpoint with traffic."

    def handle(self, *args, **options):
        password_file = settings.VAR_DIR / "demo-admin-password"
        password = settings.DEMO_ADMIN_PASSWORD or (
            password_file.read_text().strip() if password_file.exists() else "")
        if not password:
            self.stderr.write("Run `manage.py ensure_demo_admin` first (it sets the demo password).")
            return
        context: dict = {}
        self.stdout.write("Demo users (same password as the admin):")
        for app in DEMO_APPS:
            if app not in settings.INSTALLED_APPS:
                continue
            try:
                module = import_module(f"{app}.demo")
            except ModuleNotFoundError as exc:
                if exc.name == f"{app}.demo":
                    continue
                raise
            module.seed(context, password=password, stdout=self.stdout)
        self.stdout.write(self.style.SUCCESS("Demo data ready (background work continues in the worker)."))
