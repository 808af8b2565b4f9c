"""Deployments: which versions an endpoint admits, who may deploy, one rollout at
a time, a new deployment superseding the old one, and flagging a deployment
whose version left Production (apps/serving/services/deployments.py)."""


import pytest

from apps.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from apps.registry.choices import Stage
from apps.serving import services
from apps.serving.models import Deployment
from apps.serving.tests.factories import (
    deploy,
    make_endpoint,
    make_model_version,
)

pytestmark = pytest.mark.django_db

pytestmark = pytest.mark.django_db


# --- Admission -------------------------------------------------------------------------

def test_production_endpoint_refuses_a_version_not_in_production(engineer, versions):
    _v1, v2 = versions
    endpoint = make_endpoint(owner=engineer, environment="production")
    with pytest.raises(Conflict) as caught:
        services.deployment_start(endpoint=endpoint, model_version=v2, actor=engineer)
    assert caught.value.code == "version_not_allowed"
    assert "only serves versions in Production" in caught.value.message
    assert not Deployment.objects.exists()


def test_staging_endpoint_takes_staging_or_production_but_not_unapproved(engineer, versions):
    v1, v2 = versions
    endpoint = make_endpoint(owner=engineer, slug="qc-staging", environment="staging")
    v3 = make_model_version(owner=engineer, stage=Stage.NONE, seed=13)
    with pytest.raises(Conflict) as caught:
        services.deployment_start(endpoint=endpoint, model_version=v3, actor=engineer)
    assert caught.value.code == "version_not_allowed"
    assert deploy(endpoint=endpoint, version=v1, actor=engineer).status == "healthy"
    assert deploy(endpoint=endpoint, version=v2, actor=engineer).status == "healthy"


def test_config_is_validated_with_the_field_named(engineer, versions):
    v1, _ = versions
    endpoint = make_endpoint(owner=engineer)
    with pytest.raises(ValidationFailed) as caught:
        services.deployment_start(endpoint=endpoint, model_version=v1, strategy="canary",
                                  config={"steps": [50, 20, 100]}, actor=engineer)
    assert caught.value.details["fields"] == {"config.steps": ["Steps must increase, e.g. [10, 25, 50, 100]."]}
    with pytest.raises(ValidationFailed):
        services.deployment_start(endpoint=endpoint, model_version=v1, strategy="canary",
                                  config={"bogus": 1}, actor=engineer)


def test_deploying_needs_the_deploy_right(scientist, engineer, versions):
    v1, _ = versions
    endpoint = make_endpoint(owner=engineer)
    with pytest.raises(PermissionDenied):
        services.deployment_start(endpoint=endpoint, model_version=v1, actor=scientist)


def test_one_rollout_at_a_time(engineer, versions):
    v1, _ = versions
    endpoint = make_endpoint(owner=engineer)
    services.deployment_start(endpoint=endpoint, model_version=v1, actor=engineer)
    with pytest.raises(Conflict) as caught:
        services.deployment_start(endpoint=endpoint, model_version=v1, actor=engineer)
    assert caught.value.code == "rollout_in_progress"



def test_a_new_immediate_deployment_supersedes_the_old_one(engineer, versions):
    v1, v2 = versions
    endpoint = make_endpoint(owner=engineer, slug="qc-staging", environment="staging")
    first = deploy(endpoint=endpoint, version=v1, actor=engineer)
    second = deploy(endpoint=endpoint, version=v2, actor=engineer)
    first.refresh_from_db()
    assert (first.status, first.traffic_weight) == ("superseded", 0)
    assert second.traffic_weight == 100
    assert first.events.last().kind == "superseded"



# --- Registry events -------------------------------------------------------------

def test_a_version_leaving_production_flags_its_production_deployment(engineer, versions):
    v1, _ = versions
    endpoint = make_endpoint(owner=engineer)
    deployment = deploy(endpoint=endpoint, version=v1, actor=engineer)
    type(v1).objects.filter(pk=v1.pk).update(stage=Stage.ARCHIVED)
    assert services.deployments_note_stage_change(model_version_id=v1.pk, from_stage="production",
                                                  to_stage="archived") == 1
    deployment.refresh_from_db()
    assert deployment.status == "degraded" and deployment.traffic_weight == 100
    assert "archived" in deployment.status_reason


def test_model_version_resolve_hides_models_the_user_cannot_see(engineer, make_user, versions):
    nobody = make_user(username="no_roles")
    with pytest.raises(NotFound):
        services.model_version_resolve(actor=nobody, model="sample-qc", version=1)
    assert services.model_version_resolve(actor=engineer, model="sample-qc", version=2).version == 2
