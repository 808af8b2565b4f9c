"""Background work of the A/B testing app, on the ``monitoring`` queue (the
deployment of a shipped winner on ``rollouts``). The
tasks take ids, and the service locks the test row and reads past its
cursors, so a repeated or redelivered task adds nothing twice."""

from celery import shared_task

from apps.abtests import services


@shared_task(queue="monitoring", acks_late=True, soft_time_limit=110, time_limit=120)
def ab_test_stats_update(ab_test_id: int) -> dict:
    result = services.ab_test_stats_update(ab_test_id=ab_test_id)
    result["guardrail_breaches"] = len(services.ab_test_guardrails_check(ab_test_id=ab_test_id))
    if result.get("more"):  # a backlog: carry on at once rather than a minute later
        ab_test_stats_update.delay(ab_test_id)
    return result


@shared_task(queue="monitoring")
def ab_tests_stats_update() -> int:
    return services.ab_tests_stats_update()


@shared_task(queue="rollouts", acks_late=True, soft_time_limit=110, time_limit=120)
def ab_test_ship_continue(promotion_request_id: int, approved: bool) -> str:
    """Deploy a shipped winner once its promotion is approved (or record the refusal)."""
    return services.ab_test_ship_continue(promotion_request_id=promotion_request_id, approved=approved)


@shared_task(bind=True, queue="default", max_retries=120, soft_time_limit=240, time_limit=300)
def demo_seed_abtests(self) -> str:
    """Start the demo A/B test once the serving demo is live; retries every 60 s until then."""
    from apps.abtests import demo

    outcome = demo.seed_abtests()
    if outcome == demo.WAITING:
        raise self.retry(countdown=60)
    return outcome


__all__ = ["ab_test_ship_continue", "ab_test_stats_update", "ab_tests_stats_update", "demo_seed_abtests"]
