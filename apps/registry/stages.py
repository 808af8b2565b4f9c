"""Which registry stages an endpoint of each environment may serve: the one
place this rule is written. Serving applies it when a deployment starts, when
its form offers versions, when a version leaves its stage and when manifests
are written.

The environment is a plain string (serving's ``Environment`` values), since
the registry sits below serving and cannot import its choices."""

from __future__ import annotations

from apps.registry.choices import Stage

_SERVABLE = {
    # A production endpoint serves only what the four eyes approved for Production.
    "production": (Stage.PRODUCTION,),
    # Staging tries candidates and may also run the Production version (e.g. as a canary baseline).
    "staging": (Stage.STAGING, Stage.PRODUCTION),
}


def stages_servable_in(environment: str) -> tuple[Stage, ...]:
    """The stages a version must be in to serve behind an endpoint of
    ``environment`` ("production" or "staging"), in a stable order."""
    try:
        return _SERVABLE[str(environment)]
    except KeyError:
        raise ValueError(f"Unknown environment {environment!r}.") from None
