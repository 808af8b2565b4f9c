"""Races, on PostgreSQL with real concurrent transactions (one connection
per thread): version numbering, the one-Production constraint, and approvals
racing for Production."""

import threading

import pytest
from django.db import IntegrityError, close_old_connections, connection, transaction

from apps.core.errors import InvalidState
from apps.registry import services
from apps.registry.choices import RequestStatus, Stage
from apps.registry.models import ModelVersion, PromotionRequest, StageTransition


def run_together(*calls):
    """Run each call in its own thread (own DB connection), released at once
    by a barrier; returns (results, errors) in call order."""
    barrier = threading.Barrier(len(calls))
    results, errors = [None] * len(calls), [None] * len(calls)

    def worker(index, call):
        try:
            barrier.wait(timeout=30)
            results[index] = call()
        except Exception as exc:  # collected and asserted on by the test
            errors[index] = exc
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results, errors


def test_the_database_refuses_a_second_production_version(db, people, make_run, registered):
    v1 = services.model_version_register(registered_model=registered, run=make_run(), actor=people.scientist)
    v2 = services.model_version_register(registered_model=registered, run=make_run(C=0.5), actor=people.scientist)
    ModelVersion.objects.filter(pk=v1.pk).update(stage=Stage.PRODUCTION)
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.filter(pk=v2.pk).update(stage=Stage.PRODUCTION)
    # Other stages are unconstrained.
    ModelVersion.objects.filter(pk=v2.pk).update(stage=Stage.STAGING)
    assert ModelVersion.objects.filter(stage=Stage.PRODUCTION).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_registrations_get_distinct_consecutive_numbers(people, make_run, registered):
    runs = [make_run(C=c) for c in (1.0, 0.5, 0.25, 0.1, 2.0, 4.0)]
    calls = [lambda run=run: services.model_version_register(registered_model=registered, run=run,
                                                             actor=people.scientist).version for run in runs]
    numbers, errors = run_together(*calls)
    assert errors == [None] * len(runs)
    assert sorted(numbers) == list(range(1, len(runs) + 1))
    registered.refresh_from_db()
    assert registered.latest_version == len(runs)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_constraint_holds_without_the_lock(people, make_run, registered):
    """Two transactions that skip the service (and its lock) and both set a
    version to Production: the partial unique index lets exactly one commit."""
    versions = [services.model_version_register(registered_model=registered, run=make_run(C=c),
                                                actor=people.scientist) for c in (1.0, 0.5)]

    def promote(pk):
        with transaction.atomic():
            ModelVersion.objects.filter(pk=pk).update(stage=Stage.PRODUCTION)
        return pk

    results, errors = run_together(*[lambda pk=v.pk: promote(pk) for v in versions])
    assert sum(e is None for e in errors) == 1
    assert sum(isinstance(e, IntegrityError) for e in errors) == 1
    winner = next(r for r in results if r is not None)
    assert list(ModelVersion.objects.filter(registered_model=registered, stage=Stage.PRODUCTION)
                .values_list("pk", flat=True)) == [winner]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_approvals_racing_for_production_leave_exactly_one(people, make_run, registered):
    v1 = services.model_version_register(registered_model=registered, run=make_run(), actor=people.scientist)
    v2 = services.model_version_register(registered_model=registered, run=make_run(C=0.5), actor=people.scientist)
    requests = [services.promotion_request_create(version=v, actor=people.scientist, target_stage="production",
                                                  justification="race") for v in (v1, v2)]

    results, errors = run_together(
        lambda: services.promotion_request_approve(promotion_request=requests[0], actor=people.qa, comment="a").pk,
        lambda: services.promotion_request_approve(promotion_request=requests[1], actor=people.qa2, comment="b").pk,
    )
    assert errors == [None, None]  # serialised by the model's row lock: both decisions stand
    assert results == [requests[0].pk, requests[1].pk]
    stages = dict(ModelVersion.objects.filter(registered_model=registered).values_list("version", "stage"))
    assert sorted(stages.values()) == [Stage.ARCHIVED, Stage.PRODUCTION]
    winner = next(n for n, s in stages.items() if s == Stage.PRODUCTION)
    loser = next(n for n, s in stages.items() if s == Stage.ARCHIVED)
    # The history agrees: the loser went to Production first, then was superseded.
    moves = list(StageTransition.objects.filter(version__version=loser).order_by("id")
                 .values_list("from_stage", "to_stage"))
    assert moves == [("none", "production"), ("production", "archived")]
    assert registered.aliases.get(alias="champion").version.version == winner


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_approvers_deciding_the_same_request_decide_it_once(people, make_run, registered):
    version = services.model_version_register(registered_model=registered, run=make_run(), actor=people.scientist)
    req = services.promotion_request_create(version=version, actor=people.scientist, target_stage="production",
                                            justification="once")
    results, errors = run_together(
        lambda: services.promotion_request_approve(promotion_request=req, actor=people.qa, comment="yes").status,
        lambda: services.promotion_request_reject(promotion_request=req, actor=people.qa2, comment="no").status,
    )
    assert sum(e is None for e in errors) == 1
    assert sum(isinstance(e, InvalidState) for e in errors) == 1
    req.refresh_from_db()
    assert req.status in (RequestStatus.APPROVED, RequestStatus.REJECTED)
    assert [r for r in results if r is not None] == [req.status]
    assert PromotionRequest.objects.get(pk=req.pk).decided_by in (people.qa, people.qa2)
