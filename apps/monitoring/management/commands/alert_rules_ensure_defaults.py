"""Give every existing endpoint (or the ones named) the default alert rules
it lacks. New endpoints get them on creation; this covers the ones before."""

from django.core.management.base import BaseCommand, CommandError

from apps.monitoring.alerts import services as alerts
from apps.serving.models import Endpoint


class Command(BaseCommand):
    help = "Create the default alert rules (error rate, p95 latency, accuracy, dataset drift) where missing."

    def add_arguments(self, parser):
        parser.add_argument("slugs", nargs="*", help="Endpoint slugs (default: every endpoint).")

    def handle(self, *args, slugs, **options):
        endpoints = Endpoint.objects.order_by("slug")
        if slugs:
            endpoints = endpoints.filter(slug__in=slugs)
            missing = set(slugs) - set(endpoints.values_list("slug", flat=True))
            if missing:
                raise CommandError(f"No endpoint {', '.join(sorted(missing))}.")
        for endpoint in endpoints:
            created = alerts.alert_rules_ensure_defaults(endpoint=endpoint, actor=None)
            self.stdout.write(f"{endpoint.slug}: {len(created)} rule(s) created")
