import secrets

from django.conf import settings
from django.core.management.base import BaseCommand

from apps.core.choices import Role
from apps.core.services import user_ensure


class Command(BaseCommand):
    help = ("Create the demo administrator if missing and print its credentials. Username and password "
            "come from DEMO_ADMIN_USERNAME / DEMO_ADMIN_PASSWORD, else a password is generated and saved "
            "in var/demo-admin-password.")

    def handle(self, *args, **options):
        username = settings.DEMO_ADMIN_USERNAME
        password = settings.DEMO_ADMIN_PASSWORD
        saved = settings.VAR_DIR / "demo-admin-password"
        if not password and saved.exists():
            password = saved.read_text().strip()
        if not password:
            password = secrets.token_urlsafe(12)
            saved.parent.mkdir(parents=True, exist_ok=True)
            saved.write_text(password + "\n")
            saved.chmod(0o600)
        user, created = user_ensure(username=username, password=password, roles=[Role.ADMIN],
                                    is_superuser=True)
        if not created and settings.DEMO_ADMIN_PASSWORD:
            user.set_password(password)
            user.save(update_fields=["password"])
        self.stdout.write(self.style.SUCCESS(
            f"Demo admin {'created' if created else 'ready'}: username={username} password={password}"
        ))
