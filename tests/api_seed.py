"""A little of everything the API serves, so that ids in fuzzed and probed
paths sometimes name a real object: one user and API key per role, a dataset
version, an experiment with a finished run, a registered model whose version
is deployed behind an endpoint, a promotion request and a webhook."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction

from apps.core.choices import Role

ROLES = [Role.VIEWER, Role.DATA_SCIENTIST, Role.ML_ENGINEER, Role.APPROVER, Role.ADMIN]

_FIT: dict = {}


def _fitted():
    """The serving factories' logistic pipeline, fitted once per session."""
    if "logistic" not in _FIT:
        from apps.serving.tests.factories import fit_pipeline

        _FIT["logistic"] = fit_pipeline(estimator="logistic")
    return _FIT["logistic"]


@dataclass
class Seeded:
    users: dict = field(default_factory=dict)
    headers: dict = field(default_factory=dict)
    # One existing value per path parameter, keyed by the resource the path starts with.
    ids: dict = field(default_factory=dict)


def seed_api_objects() -> Seeded:
    from apps.core.services import api_key_create, user_ensure
    from apps.core.webhooks.services import webhook_subscription_create
    from apps.registry.services import promotion_request_create
    from apps.registry.tests import factories as registry_factories
    from apps.serving.tests import factories as serving_factories

    seeded = Seeded()
    for role in ROLES:
        with transaction.atomic():
            user, _ = user_ensure(username=f"fuzz_{role.replace(' ', '_').lower()}", password="pw-Fuzz-123",
                                  roles=[role])
            issued = api_key_create(user=user, name="fuzz")
        seeded.users[role] = user
        seeded.headers[role] = {"Authorization": f"Api-Key {issued.raw_key}"}
    with transaction.atomic():
        root, _ = user_ensure(username="fuzz_root", password="pw-Fuzz-123", roles=[], is_superuser=True)
        seeded.headers["superuser"] = {"Authorization": f"Api-Key {api_key_create(user=root, name='probe').raw_key}"}
    scientist, engineer = seeded.users[Role.DATA_SCIENTIST], seeded.users[Role.ML_ENGINEER]

    frame = registry_factories.sample_frame(rows=120, seed=3)
    dataset_version = registry_factories.make_dataset_version(scientist, frame=frame, name="fuzz-submissions")
    run = registry_factories.make_run(scientist, dataset_version=dataset_version, frame=frame,
                                      experiment_name="fuzz-experiment", metrics={"test_accuracy": 0.9})
    pipeline, signature, records, _ = _fitted()
    version = serving_factories.make_model_version(owner=engineer, name="sample-qc", model=pipeline,
                                                   signature=signature, example=records[:3], stage="staging")
    endpoint = serving_factories.make_endpoint(owner=engineer, slug="sample-qc", environment="staging")
    deployment = serving_factories.deploy(endpoint=endpoint, version=version, actor=engineer)
    with transaction.atomic():
        promotion_request = promotion_request_create(version=version, actor=engineer, target_stage="production",
                                                     justification="Seeded for the API fuzz.")
        webhook = webhook_subscription_create(actor=seeded.users[Role.ADMIN], name="fuzz",
                                              url="https://hooks.example.org/mlops")
    seeded.ids = {
        "api-keys": issued.api_key.pk,
        "datasets": dataset_version.dataset_id,
        "dataset-versions": dataset_version.pk,
        "experiments": run.experiment_id,
        "runs": run.pk,
        "models": version.registered_model.name,
        "version": version.version,
        "endpoints": endpoint.slug,
        "deployments": deployment.pk,
        "promotion-requests": promotion_request.pk,
        "transition-requests": promotion_request.pk,
        "webhooks": webhook.pk,
    }
    return seeded
