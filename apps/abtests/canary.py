"""The ``"sequential"`` canary judge: a canary step compared with the stable
version on the same window, as Kayenta does for Spinnaker, with the A/B
tests' always-valid sequential test so that judging at every rollout tick
keeps the false-alarm rate at alpha.

No Django here. Registered with serving (``apps/serving/judges.py``) in
``AbtestsConfig.ready``; serving hands over the two sides' counts.

Judged, each on the absolute difference canary - stable, one-sided in the
bad direction (a canary better than stable never fails):

* error rate (server errors per request) and accuracy (correct per joined
  feedback, only when both sides have ``MIN_FEEDBACK`` verdicts) are
  proportions with one success and one failure added to each side
  (Agresti & Caffo 2000, "Simple and effective confidence intervals for
  proportions and differences of proportions result from adding two
  successes and two failures", The American Statistician 54(4)), so that a
  stable version without a single error still has a variance to compare with;
* latency (ms per answered request) is a sample mean.
"""

from __future__ import annotations

from apps.abtests.stats import Proportion, SampleMean, sequential_test
from apps.serving.judges import WindowCounts

SEQUENTIAL = "sequential"
MIN_FEEDBACK = 20
DEFAULT_ALPHA = 0.05


def _worse(a, b, *, alpha: float, higher_is_worse: bool) -> tuple[bool, float | None]:
    comparison = sequential_test(a, b, alpha=alpha, relative=False)
    if comparison.error or comparison.estimate is None or comparison.p_value is None:
        return False, None
    bad = comparison.estimate > 0 if higher_is_worse else comparison.estimate < 0
    return bad and comparison.p_value < alpha, comparison.estimate


def _smoothed(successes: int, n: int) -> Proportion:
    return Proportion(n=n + 2, sum=successes + 1)


def sequential_judge(canary: WindowCounts, stable: WindowCounts, config: dict) -> str | None:
    """The first metric on which the canary is significantly worse than
    stable, described for the rollout timeline; None if there is none."""
    alpha = float(config.get("analysis_alpha", DEFAULT_ALPHA))
    if canary.requests >= 2 and stable.requests >= 2:
        worse, estimate = _worse(_smoothed(stable.errors, stable.requests), _smoothed(canary.errors, canary.requests),
                                 alpha=alpha, higher_is_worse=True)
        if worse:
            return (f"error rate {canary.errors / canary.requests:.1%} over {canary.requests} requests is "
                    f"significantly above the stable version's {stable.errors / stable.requests:.1%} "
                    f"(difference {estimate:+.3f}, sequential test at alpha {alpha:g})")
    if canary.answered >= 2 and stable.answered >= 2:
        a = SampleMean(n=stable.answered, sum=stable.latency_sum, sum_squares=stable.latency_sum_squares)
        b = SampleMean(n=canary.answered, sum=canary.latency_sum, sum_squares=canary.latency_sum_squares)
        worse, estimate = _worse(a, b, alpha=alpha, higher_is_worse=True)
        if worse:
            return (f"mean latency {b.mean:.1f} ms is significantly above the stable version's {a.mean:.1f} ms "
                    f"(difference {estimate:+.1f} ms, sequential test at alpha {alpha:g})")
    if canary.judged >= MIN_FEEDBACK and stable.judged >= MIN_FEEDBACK:
        worse, estimate = _worse(_smoothed(stable.correct, stable.judged), _smoothed(canary.correct, canary.judged),
                                 alpha=alpha, higher_is_worse=False)
        if worse:
            return (f"accuracy {canary.correct / canary.judged:.1%} on {canary.judged} labelled predictions is "
                    f"significantly below the stable version's {stable.correct / stable.judged:.1%} "
                    f"(difference {estimate:+.3f}, sequential test at alpha {alpha:g})")
    return None


__all__ = ["DEFAULT_ALPHA", "MIN_FEEDBACK", "SEQUENTIAL", "sequential_judge"]
