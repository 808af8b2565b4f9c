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
dashboard so that approvals and rollouts apply.
"""

from __future__ import annotations

import copy

import yaml
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.core.errors import ApplicationError
from apps.core.services import audit_record
from apps.registry.models import ModelVersion
from apps.registry.stages import stages_servable_in
from apps.serving.backends import BACKENDS, get_backend
from apps.serving.choices import DeploymentStatus, Strategy
from apps.serving.models import Deployment, Endpoint

# Deployments whose version is no longer meant to run.
ENDED = {DeploymentStatus.ROLLED_BACK, DeploymentStatus.FAILED, DeploymentStatus.SUPERSEDED}


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
        endpoint = Endpoint.objects.filter(slug=options["endpoint"]).first()
        if endpoint is None:
            raise CommandError(f"No endpoint {options['endpoint']!r}.")
        version = (ModelVersion.objects.select_related("registered_model")
                   .filter(registered_model__name=options["model"], version=options["version"]).first())
        if version is None:
            raise CommandError(f"No version {options['version']} of model {options['model']!r}.")
        allowed = stages_servable_in(endpoint.environment)
        if version.stage not in allowed:
            raise CommandError(f"{version} is in stage {version.stage!r}; the {endpoint.environment} endpoint "
                               f"{endpoint.slug!r} serves only {' or '.join(sorted(allowed))} versions.")

        existing = (Deployment.objects.select_related("endpoint", "model_version__registered_model")
                    .filter(endpoint=endpoint, model_version=version).exclude(status__in=ENDED)
                    .order_by("-created_at", "-id").first())
        if existing is None and not options["dry_run"]:
            raise CommandError(f"{version} is not deployed to {endpoint.slug!r}; deploy it through the API or the "
                               "dashboard (approvals and rollouts apply), or pass --dry-run to preview manifests.")
        deployment = self._deployment(existing, endpoint, version, options)
        backend = get_backend(options["backend"])
        try:
            manifests = backend.apply(deployment, dry_run=options["dry_run"])
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc

        if not options["dry_run"]:
            with transaction.atomic():
                audit_record(actor=None, action="deployment.manifests_applied", target=existing,
                             after={"backend": backend.name,
                                    "objects": [f"{m['kind']}/{m['metadata']['name']}" for m in manifests]},
                             message="Applied through manage.py serving_manifests.")
        if not manifests:
            self.stderr.write(f"The {backend.name} backend runs nothing outside this platform's web processes "
                              "(no manifests); use --backend kubernetes to render the Kubernetes ones.")
            return
        self.stdout.write(yaml.safe_dump_all(manifests, sort_keys=False), ending="")
        if not options["dry_run"]:
            self.stderr.write(self.style.SUCCESS(f"Applied {len(manifests)} object(s) through the {backend.name} "
                                                 "backend."))

    @staticmethod
    def _deployment(existing, endpoint, version, options) -> Deployment:
        """The deployment to render: the existing one (a copy, never saved),
        or an unsaved one, with the command's overrides applied."""
        if existing is not None:
            deployment = copy.copy(existing)
            deployment.config = dict(existing.config or {})
        else:
            deployment = Deployment(endpoint=endpoint, model_version=version, strategy=Strategy.IMMEDIATE,
                                    config={})
        if options["strategy"]:
            deployment.strategy = options["strategy"]
        if options["replicas"] is not None:
            deployment.config["replicas"] = options["replicas"]
        return deployment
