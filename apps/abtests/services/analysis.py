"""What the A/B testing app does for its callers.

``metric_analyze`` is stateless: it reads and writes nothing stored (so it
takes no actor and leaves no audit event), and the analysis endpoint and the
analysts' calculator page share it, so both answer the same numbers and the
same errors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from apps.abtests.stats import StatsInputError, analyze
from apps.core.errors import ValidationFailed

# The API's short name for the Benjamini-Hochberg correction, next to the core's own names.
CORRECTION_ALIASES = {"bh": "benjamini-hochberg"}
CORRECTIONS = ("none", "holm", "bh", "benjamini-hochberg")


def metric_analyze(
    *,
    metric_type: str,
    arms: Sequence[Mapping[str, Any]],
    expected_weights: Sequence[float] | None = None,
    engine: str = "frequentist",
    difference: str = "relative",
    alpha: float = 0.05,
    prior: Mapping[str, Any] | None = None,
    sequential_tuning: float = 5000,
    correction: str = "none",
) -> dict[str, Any]:
    """Analyse one metric from per-arm sufficient statistics (arm 0 is the control).

    Returns ``{"srm": {...}, "comparisons": [...]}`` as
    :func:`apps.abtests.stats.analyze` does. Input the statistics core refuses
    raises :class:`ValidationFailed` whose ``details["fields"]`` is keyed by
    the offending input (``arms[1].sum_squares``, ``expected_weights``).
    """
    try:
        return analyze(
            metric_type,
            arms,
            expected_weights=expected_weights,
            engine=engine,
            difference=difference,
            alpha=alpha,
            prior=prior,
            sequential_tuning=sequential_tuning,
            correction=CORRECTION_ALIASES.get(correction, correction),
        )
    except StatsInputError as exc:
        raise ValidationFailed(f"{exc.field}: {exc.message}", details={"fields": {exc.field: [exc.message]}}) from exc
