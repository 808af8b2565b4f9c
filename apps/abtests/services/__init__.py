"""Writes of the A/B testing app, split by subdomain and re-exported here:
``from apps.abtests import services; services.ab_test_start(...)``."""

from apps.abtests.services.analysis import CORRECTION_ALIASES, CORRECTIONS, metric_analyze
from apps.abtests.services.decisions import (
    ab_test_ship,
    ab_test_ship_continue,
    achieved_power,
    decision_evidence,
)
from apps.abtests.services.lifecycle import (
    ab_test_abort,
    ab_test_approve,
    ab_test_conclude,
    ab_test_create,
    ab_test_guardrails_check,
    ab_test_needs_approval,
    ab_test_start,
    ab_test_stop,
)
from apps.abtests.services.statistics import ab_test_stats_update, ab_tests_stats_update

__all__ = [
    "CORRECTIONS",
    "CORRECTION_ALIASES",
    "ab_test_abort",
    "ab_test_approve",
    "ab_test_conclude",
    "ab_test_create",
    "ab_test_guardrails_check",
    "ab_test_needs_approval",
    "ab_test_ship",
    "ab_test_ship_continue",
    "ab_test_start",
    "ab_test_stats_update",
    "ab_test_stop",
    "ab_tests_stats_update",
    "achieved_power",
    "decision_evidence",
    "metric_analyze",
]
