"""What a web process needs to answer predictions without touching the
database: the routing table (endpoints, their deployments and weights), the
loaded models with their compiled signatures, and callers' predict rights.

Freshness. Every change to an endpoint or deployment bumps a stamp in the
Django cache (Redis in production) after commit
(:func:`bump_routing_stamp`). A process reads the stamp at most every
``CHECK_INTERVAL`` (0.5 s) — one cache read, no database query — and rebuilds
its table when the stamp moved (or after ``MAX_AGE`` seconds regardless, in
case a cache entry was lost), so a traffic change is served within a second.
Only one request thread rebuilds; the others keep using the previous table
until the new one is swapped in. Models are reused across rebuilds (a model
version never changes), so a weight change costs one query and no loading.

A caller's right to predict is cached for ``PERMISSION_TTL`` (1 s) per
(user, endpoint); API keys and JWTs are themselves cached for 1 s by
``apps.core.authentication``, so a revoked key or right stops working within
a second as well.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field

from django.core.cache import cache

from apps.core.modelio import loads as load_model
from apps.core.modelio import sha256_bytes
from apps.core.permissions import has_perm
from apps.core.storage import open_artifact
from apps.serving.choices import DeploymentStatus, ServingPath
from apps.serving.predictors import OnnxPredictor, SklearnPredictor
from apps.serving.router import WeightedRouter
from apps.serving.signature import CompiledSignature

logger = logging.getLogger(__name__)

STAMP_KEY = "serving:routing-stamp"
CHECK_INTERVAL = 0.5
MAX_AGE = 30.0
PERMISSION_TTL = 1.0
# Deployments a process keeps loaded: those with traffic, and those warming
# up or standing by (a blue-green rollback target) so a switch is instant.
LOADED_STATUSES = (DeploymentStatus.DEPLOYING, DeploymentStatus.HEALTHY, DeploymentStatus.DEGRADED)


def bump_routing_stamp() -> None:
    """Tell every web process to reload its routing table (call after commit)."""
    cache.set(STAMP_KEY, uuid.uuid4().hex, timeout=None)


@dataclass(frozen=True, slots=True)
class Variant:
    """A deployment as the predict path sees it."""

    deployment_id: int
    model_version_id: int
    model_name: str
    version: int
    task: str
    serving_path: str
    signature: CompiledSignature
    predictor: object


@dataclass(frozen=True, slots=True)
class EndpointRoute:
    """An endpoint's routing table: who gets which share of its requests."""

    endpoint: object  # the Endpoint row, for object-permission checks
    id: int
    slug: str
    max_batch_size: int
    log_inputs: bool
    router: WeightedRouter
    variants: dict
    unavailable: dict = field(default_factory=dict)  # deployment id → why it could not be loaded
    # While a split (A/B test) is held: its id and deployment id → arm index.
    split_id: int | None = None
    split_arms: dict = field(default_factory=dict)
    # The input field that names the unit when a request has no unit_id.
    unit_field: str = ""


def load_predictor(deployment) -> tuple[CompiledSignature, object]:
    """Load what answers for ``deployment``: its verified ONNX file, or the
    scikit-learn pipeline (skops, SHA-256 checked)."""
    version = deployment.model_version
    signature = CompiledSignature(version.signature)
    task = (version.signature or {}).get("task") or "classification"
    if deployment.serving_path == ServingPath.ONNX and deployment.compiled_artifact:
        with open_artifact(deployment.compiled_artifact) as handle:
            data = handle.read()
        if sha256_bytes(data) != deployment.compiled_sha256:
            raise ValueError("the compiled ONNX file does not match its recorded SHA-256")
        return signature, OnnxPredictor(data)
    with open_artifact(version.artifact) as handle:
        model = load_model(handle.read(), expected_sha256=version.sha256)
    return signature, SklearnPredictor(model, signature=signature, task=task)


class ServingRuntime:
    """The per-process routing table and model cache (one per process: ``runtime``)."""

    def __init__(self):
        self._routes: dict[str, EndpointRoute] = {}
        self._loaded: dict[tuple, tuple[CompiledSignature, object]] = {}
        self._stamp = object()
        self._loaded_at = float("-inf")
        self._next_check = 0.0
        self._lock = threading.Lock()
        self._permissions: dict[tuple, tuple[float, bool, bool]] = {}
        self.reloads = 0

    # --- routing -----------------------------------------------------------------

    def route(self, slug: str) -> EndpointRoute | None:
        now = time.monotonic()
        if now >= self._next_check:
            self.refresh(now=now)
        return self._routes.get(slug)

    def refresh(self, *, now: float | None = None, force: bool = False) -> bool:
        """Reload the table when the stamp moved; True when it reloaded. A
        thread that finds another one reloading returns at once."""
        now = time.monotonic() if now is None else now
        if not self._lock.acquire(blocking=False):
            return False
        try:
            if not force and now < self._next_check:
                return False
            self._next_check = now + CHECK_INTERVAL
            stamp = cache.get(STAMP_KEY)
            if not force and stamp == self._stamp and now - self._loaded_at < MAX_AGE:
                return False
            self._reload()
            self._stamp = stamp
            self._loaded_at = now
            self.reloads += 1
            return True
        except Exception:  # keep serving the previous table rather than failing every request
            logger.exception("reloading the serving routing table failed")
            return False
        finally:
            self._lock.release()

    def _reload(self) -> None:
        from apps.serving.models import Deployment, Endpoint, TrafficSplit

        endpoints = {e.pk: e for e in Endpoint.objects.all()}
        splits = {split.endpoint_id: split for split in TrafficSplit.objects.filter(ended_at__isnull=True)}
        deployments = list(
            Deployment.objects.filter(status__in=LOADED_STATUSES)
            .select_related("model_version__registered_model")
            .order_by("-created_at", "-id")
        )
        keep: dict[tuple, tuple] = {}
        by_endpoint: dict[int, list] = {pk: [] for pk in endpoints}
        unavailable: dict[int, dict] = {pk: {} for pk in endpoints}
        for deployment in deployments:
            key = (deployment.pk, deployment.serving_path, deployment.compiled_sha256, deployment.model_version.sha256)
            loaded = self._loaded.get(key)
            if loaded is None:
                try:
                    loaded = load_predictor(deployment)
                except Exception as exc:
                    logger.exception("could not load deployment %s", deployment.pk)
                    unavailable[deployment.endpoint_id][deployment.pk] = f"{type(exc).__name__}: {exc}"[:300]
                    continue
            keep[key] = loaded
            by_endpoint.setdefault(deployment.endpoint_id, []).append((deployment, loaded))
        routes = {}
        for pk, endpoint in endpoints.items():
            variants = {}
            weights = []
            # Newest first: a growing canary takes the low end of the hash
            # range, so raising its weight only ever moves units towards it.
            for deployment, (signature, predictor) in by_endpoint.get(pk, []):
                version = deployment.model_version
                variants[deployment.pk] = Variant(
                    deployment_id=deployment.pk, model_version_id=version.pk,
                    model_name=version.registered_model.name, version=version.version,
                    task=(version.signature or {}).get("task") or "classification",
                    serving_path=predictor.serving_path, signature=signature, predictor=predictor,
                )
                weights.append((deployment.pk, deployment.traffic_weight))
            config = endpoint.config or {}
            split = splits.get(pk)
            salt, split_arms = endpoint.slug, {}
            if split is not None:
                # The split's own weights, arms in their order, and its own
                # salt: units are assigned independently of earlier splits. The
                # units of an arm that could not be loaded go to the others,
                # which the test's sample-ratio check then reports.
                weights = [(d, w if d in variants else 0.0) for d, w in split.weights]
                salt, split_arms = split.salt, {d: arm for arm, (d, _) in enumerate(split.weights)}
            routes[endpoint.slug] = EndpointRoute(
                endpoint=endpoint, id=endpoint.pk, slug=endpoint.slug,
                max_batch_size=int(config.get("max_batch_size") or 100),
                log_inputs=bool(config.get("log_inputs", True)),
                router=WeightedRouter(weights, salt=salt), variants=variants,
                unavailable=unavailable.get(pk, {}),
                split_id=split.pk if split is not None else None, split_arms=split_arms,
                unit_field=str(config.get("unit_field") or ""),
            )
        self._loaded = keep
        self._routes = routes

    # --- permissions -------------------------------------------------------------

    def access(self, user, route: EndpointRoute) -> tuple[bool, bool]:
        """(may predict, may see) for ``user`` on the endpoint, cached 1 s."""
        key = (user.pk, route.id)
        now = time.monotonic()
        cached = self._permissions.get(key)
        if cached is not None and cached[0] > now:
            return cached[1], cached[2]
        can_predict = has_perm(user, "serving.predict_endpoint", route.endpoint)
        can_view = can_predict or has_perm(user, "serving.view_endpoint", route.endpoint)
        if len(self._permissions) > 10_000:
            self._permissions = {}
        self._permissions[key] = (now + PERMISSION_TTL, can_predict, can_view)
        return can_predict, can_view

    def reset(self) -> None:
        """Forget everything (tests; a process that must reload at once)."""
        with self._lock:
            self._routes = {}
            self._loaded = {}
            self._permissions = {}
            self._stamp = object()
            self._loaded_at = float("-inf")
            self._next_check = 0.0


runtime = ServingRuntime()

__all__ = ["EndpointRoute", "ServingRuntime", "Variant", "bump_routing_stamp", "load_predictor", "runtime"]
