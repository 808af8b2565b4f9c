"""Rollout policy: a deployment's configuration with its defaults, and the
judgement of one canary/rolling step from live metrics.

No Django here. A step is judged on the new deployment's requests since the
step started:

* **error rate** = requests answered with a server error (the model raised:
  HTTP 5xx) / requests. Requests refused because the caller's input broke
  the signature (HTTP 400) are reported as ``invalid`` but not counted as
  errors, since they say nothing about the new version;
* **p95 latency** = the 95th percentile of the server-side latency of those
  requests (numpy's linear interpolation, ``numpy.percentile`` default);
* a step is only judged once it has ``min_requests`` requests. A threshold
  broken then means rollback at once (without waiting for the step to end);
  a step that ends with fewer requests is inconclusive: a canary pauses
  (somebody must decide), a rolling update carries on;
* a canary may also be judged *against the stable version* on the same
  window (``analysis``, e.g. ``"sequential"``; see ``apps/serving/judges.py``):
  a canary significantly worse than the version it replaces (error rate,
  latency, accuracy where feedback exists) fails the step even within the
  absolute limits. ``analysis_alpha`` (default 0.05) is that test's level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

STRATEGIES = ("immediate", "blue_green", "rolling", "canary")

COMMON_DEFAULTS = {
    "replicas": 1,
    "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
    # Health check: smoke predictions on the input example must answer within this.
    "latency_budget_ms": 500,
    # Live thresholds: judged during a rollout, and afterwards to mark a
    # deployment degraded (or healthy again).
    "min_requests": 20,
    "max_error_rate": 0.05,
    "max_p95_ms": 250,
}
STRATEGY_DEFAULTS = {
    "immediate": {},
    "blue_green": {"warmup_s": 2, "rollback_window_s": 300, "check_interval_s": 10},
    "rolling": {"steps": [25, 50, 75, 100], "step_seconds": 60, "check_interval_s": 10},
    "canary": {"steps": [10, 25, 50, 100], "step_seconds": 300, "min_requests": 50, "check_interval_s": 10},
}
_NUMBER_LIMITS = {
    # key: (minimum, maximum, integer?)
    "step_seconds": (1, 7 * 24 * 3600, False),
    "min_requests": (0, 10**9, True),
    "max_error_rate": (0, 1, False),
    "max_p95_ms": (0.001, 600_000, False),
    "rollback_window_s": (0, 7 * 24 * 3600, False),
    "warmup_s": (0, 600, False),
    "check_interval_s": (0.2, 3600, False),
    "replicas": (1, 100, True),
    "latency_budget_ms": (1, 600_000, False),
    "bake_minutes": (0, 7 * 24 * 60, False),
    "analysis_alpha": (0.0001, 0.5, False),
}
# Settings every strategy accepts whose default comes from elsewhere (the
# endpoint or a Django setting), so they are not in COMMON_DEFAULTS.
OPTIONAL_KEYS = {"bake_minutes"}
# Canary settings that are absent unless asked for (no analysis: thresholds only).
CANARY_OPTIONAL_KEYS = {"analysis", "analysis_alpha"}
_RESOURCE_KEYS = {"cpu", "memory"}


class ConfigError(ValueError):
    """``field`` names the offending key (``config.steps``)."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


def clean_config(strategy: str, raw: dict | None) -> dict:
    """The full config of a deployment: defaults for ``strategy`` overlaid with
    ``raw``. Raises :class:`ConfigError` for unknown keys and bad values."""
    if strategy not in STRATEGIES:
        raise ConfigError(f"Unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}.", "strategy")
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ConfigError("config must be an object.", "config")
    allowed = set(COMMON_DEFAULTS) | set(STRATEGY_DEFAULTS[strategy]) | OPTIONAL_KEYS
    if strategy == "canary":
        allowed |= CANARY_OPTIONAL_KEYS
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(
            f"Unknown setting(s) for a {strategy} deployment: {', '.join(unknown)} "
            f"(allowed: {', '.join(sorted(allowed))}).", f"config.{unknown[0]}")
    config = {**COMMON_DEFAULTS, **STRATEGY_DEFAULTS[strategy]}
    config["resources"] = {k: dict(v) for k, v in COMMON_DEFAULTS["resources"].items()}
    for key, value in raw.items():
        if key == "steps":
            config["steps"] = _clean_steps(value)
        elif key == "resources":
            config["resources"] = _clean_resources(value)
        elif key == "analysis":
            config["analysis"] = _clean_analysis(value)
        else:
            config[key] = _clean_number(key, value)
    return config


def _clean_number(key: str, value):
    low, high, integer = _NUMBER_LIMITS[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"config.{key} must be a number.", f"config.{key}")
    if integer and not float(value).is_integer():
        raise ConfigError(f"config.{key} must be a whole number.", f"config.{key}")
    if not low <= value <= high:
        raise ConfigError(f"config.{key} must be between {low} and {high}.", f"config.{key}")
    return int(value) if integer else value


def _clean_analysis(value) -> str:
    from apps.serving import judges

    available = judges.names()
    if value not in available:
        raise ConfigError(f"config.analysis must be one of {', '.join(available)}.", "config.analysis")
    return value


def _clean_steps(value) -> list:
    if not isinstance(value, list) or not value:
        raise ConfigError("config.steps must be a non-empty list of percentages, e.g. [10, 25, 50, 100].",
                          "config.steps")
    steps = []
    for step in value:
        if isinstance(step, bool) or not isinstance(step, (int, float)) or not 0 < step <= 100:
            raise ConfigError("Each step is a percentage above 0 and at most 100.", "config.steps")
        if steps and step <= steps[-1]:
            raise ConfigError("Steps must increase, e.g. [10, 25, 50, 100].", "config.steps")
        steps.append(step)
    if steps[-1] != 100:
        raise ConfigError("The last step must be 100 (the new version takes all traffic).", "config.steps")
    return steps


def _clean_resources(value) -> dict:
    if not isinstance(value, dict) or set(value) - {"requests", "limits"}:
        raise ConfigError('config.resources is {"requests": {"cpu", "memory"}, "limits": {...}}.',
                          "config.resources")
    cleaned = {}
    for part in ("requests", "limits"):
        entry = value.get(part, COMMON_DEFAULTS["resources"][part])
        if not isinstance(entry, dict) or set(entry) - _RESOURCE_KEYS or not all(
                isinstance(v, (str, int, float)) and not isinstance(v, bool) and str(v) for v in entry.values()):
            raise ConfigError(f"config.resources.{part} takes cpu and memory quantities, e.g. "
                              '{"cpu": "250m", "memory": "512Mi"}.', f"config.resources.{part}")
        cleaned[part] = {k: str(v) for k, v in entry.items()}
    return cleaned


@dataclass(frozen=True)
class WindowStats:
    """Live numbers of one deployment over a time window."""

    requests: int
    instances: int
    errors: int
    invalid: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    def as_dict(self) -> dict:
        return {"requests": self.requests, "instances": self.instances, "errors": self.errors,
                "invalid": self.invalid, "error_rate": self.error_rate, "p50_ms": self.p50_ms,
                "p95_ms": self.p95_ms, "p99_ms": self.p99_ms}


def summarize(latencies_ms, status_codes, instances=None) -> WindowStats:
    """Requests, errors (5xx), invalid (4xx) and latency percentiles."""
    latencies = np.asarray(latencies_ms, dtype=np.float64)
    codes = np.asarray(status_codes, dtype=np.int64)
    n = int(latencies.size)
    if n:
        p50, p95, p99 = (float(v) for v in np.percentile(latencies, [50, 95, 99]))
    else:
        p50 = p95 = p99 = None
    total_instances = int(np.asarray(instances, dtype=np.int64).sum()) if instances is not None else n
    return WindowStats(requests=n, instances=total_instances, errors=int((codes >= 500).sum()),
                       invalid=int(((codes >= 400) & (codes < 500)).sum()), p50_ms=p50, p95_ms=p95, p99_ms=p99)


@dataclass(frozen=True)
class Verdict:
    """``breach`` says which threshold broke (None if none); ``enough`` whether
    the step had enough requests to be judged at all."""

    enough: bool
    breach: str | None

    @property
    def passed(self) -> bool:
        return self.enough and self.breach is None


def judge(stats: WindowStats, config: dict, *, analysis_breach: str | None = None) -> Verdict:
    """Judge a step's numbers against the thresholds in ``config``, then take
    what the step's comparative analysis found (``analysis_breach``, see
    ``judges.canary_analysis``) once the step has enough requests."""
    enough = stats.requests >= max(1, int(config.get("min_requests", 0)))
    if not enough:
        return Verdict(enough=False, breach=None)
    max_error_rate = config.get("max_error_rate")
    if max_error_rate is not None and stats.error_rate is not None and stats.error_rate > max_error_rate:
        return Verdict(enough=True, breach=(f"error rate {stats.error_rate:.1%} over {stats.requests} requests "
                                            f"is above the {max_error_rate:.1%} limit"))
    max_p95 = config.get("max_p95_ms")
    if max_p95 is not None and stats.p95_ms is not None and stats.p95_ms > max_p95:
        return Verdict(enough=True, breach=f"p95 latency {stats.p95_ms:.1f} ms is above the {max_p95:g} ms limit")
    return Verdict(enough=True, breach=analysis_breach)


__all__ = ["STRATEGIES", "ConfigError", "Verdict", "WindowStats", "clean_config", "judge", "summarize"]
