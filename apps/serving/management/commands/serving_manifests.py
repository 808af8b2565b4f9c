"""Render — or apply — what the deployment backend runs for one model version
behind one endpoint.

    python manage.py serving_manifests --endpoint sample-qc --model sample-qc --version 3 --dry-run
    python manage.py serving_manifests --endpoint sample-qc --model sample-qc --version 3 --backend kubernetes \
        --replicas 4 --dry-run > manifests.yaml
    python manage.py serving_manifests --endpoint sample-qc --model sample-qc --version 3

``--dry-run`` prints the manifests as YAML and touches nothing (no database
row, no cluster call); it works for a version that was never deployed.
Without it, the manifests are applied through the backend for an existing
deployment of that version (e.g. to recreate a serving Deployment a cluster
lost); deploying a new version, and moving traffic, go through the API or the
dashboard so that approvals and rollouts apply. The reads go through
``selectors.deployment_for_manifests`` and the work through the services in
``apps/serving/services/manifests.py``, which audit it.
"""

from __future__ import annotations

import yaml
from django.core.management.base import BaseCommand, CommandError

from apps.core.errors import ApplicationError
from apps.registry.stages import stages_servable_in
from apps.serving import selectors, services
from apps.serving.backends import BACKENDS, get_backend
from apps.serving.choices import Strategy


class Command(BaseCommand):
    help = "Print (--dry-run) or apply the deployment backend's manifests for a model version behind an endpoint."

    def create_parser(self, prog_name, subcommand, **kwargs):
        # --version is the model version here; "resolve" lets it replace
        # Django's own --version (which prints Django's version).
        kwargs.setdefault("conflict_handler", "resolve")
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("--endpoint", required=True, help="endpoint slug")
        parser.add_argument("--model", required=True, help="registered model name")
        parser.add_argument("--version", required=True, type=int, help="model version number")
        parser.add_argument("--strategy", choices=Strategy.values,
                            help="rollout strategy recorded on the manifests (default: the deployment's, or immediate)")
        parser.add_argument("--replicas", type=int, help="pods to run (default: the deployment's config, or 2)")
        parser.add_argument("--backend", choices=BACKENDS,
                            help="backend to use (default: settings.DEPLOYMENT_BACKEND)")
        parser.add_argument("--dry-run", action="store_true", help="print the manifests as YAML; change nothing")

    def handle(self, *args, **options):
        actor = None  # the operator on the server: the audit records the platform as the actor
        try:
            endpoint, version, existing = selectors.deployment_for_manifests(
                user=actor, endpoint_slug=options["endpoint"], model=options["model"], version=options["version"])
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        allowed = stages_servable_in(endpoint.environment)
        if version.stage not in allowed:
            raise CommandError(f"{version} is in stage {version.stage!r}; the {endpoint.environment} endpoint "
                               f"{endpoint.slug!r} serves only {' or '.join(sorted(allowed))} versions.")

        if existing is None and not options["dry_run"]:
            raise CommandError(f"{version} is not deployed to {endpoint.slug!r}; deploy it through the API or the "
                               "dashboard (approvals and rollouts apply), or pass --dry-run to preview manifests.")
        overrides = {"strategy": options["strategy"], "replicas": options["replicas"], "backend": options["backend"]}
        try:
            if options["dry_run"]:
                manifests = services.deployment_manifests_render(endpoint=endpoint, model_version=version,
                                                                 deployment=existing, actor=actor, **overrides)
            else:
                manifests = services.deployment_manifests_apply(deployment=existing, actor=actor, **overrides)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc

        backend = get_backend(options["backend"])
        if not manifests:
            self.stderr.write(f"The {backend.name} backend runs nothing outside this platform's web processes "
                              "(no manifests); use --backend kubernetes to render the Kubernetes ones.")
            return
        self.stdout.write(yaml.safe_dump_all(manifests, sort_keys=False), ending="")
        if not options["dry_run"]:
            self.stderr.write(self.style.SUCCESS(f"Applied {len(manifests)} object(s) through the {backend.name} "
                                                 "backend."))
