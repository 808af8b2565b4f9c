from django.db.models import Prefetch
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.core.models import ApiKey
from apps.core.permissions import require_perm
from apps.core.schema import ID_PATTERN
from apps.serving import selectors, services
from apps.serving.api import serializers as s
from apps.serving.models import Deployment, Endpoint, RolloutEvent

SLUG_PATTERN = r"[-a-z0-9]{1,100}"
DRY_RUN = OpenApiParameter("dry_run", OpenApiTypes.BOOL, description=(
    "Validate and return the manifests the deployment backend would apply, creating nothing."))
WINDOW = OpenApiParameter("window", OpenApiTypes.STR, description="Time window: 90s, 15m (default), 2h, 1d.")


class EndpointViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Prediction endpoints, looked up by slug. ``POST .../predict/`` answers
    predictions (a lean view outside DRF, documented by api/contract.py);
    ``deployments`` starts rollouts; ``feedback`` sends ground truth;
    ``metrics`` gives live numbers."""

    queryset = Endpoint.objects.none()
    serializer_class = s.EndpointSerializer
    lookup_field = "slug"
    lookup_value_regex = SLUG_PATTERN
    filterset_fields = ["environment"]
    ordering_fields = ["slug", "created_at"]

    def get_queryset(self):
        return selectors.endpoint_list(user=self.request.user)

    def get_object(self, perm: str = "serving.view_endpoint"):
        return selectors.endpoint_get(user=self.request.user, slug=self.kwargs["slug"], perm=perm)

    def _fresh(self, slug: str):
        return self.get_queryset().get(slug=slug)

    @extend_schema(request=s.EndpointCreateSerializer, responses={201: s.EndpointSerializer})
    def create(self, request):
        data = s.EndpointCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = services.endpoint_create(actor=request.user, **data.validated_data)
        return Response(s.EndpointSerializer(self._fresh(endpoint.slug)).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.EndpointUpdateSerializer, responses=s.EndpointSerializer)
    def partial_update(self, request, slug=None):
        data = s.EndpointUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        services.endpoint_update(endpoint=self.get_object(), actor=request.user, **data.validated_data)
        return Response(s.EndpointSerializer(self._fresh(slug)).data)

    @extend_schema(request=None, responses={204: None})
    def destroy(self, request, slug=None):
        services.endpoint_delete(endpoint=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(methods=["GET"], responses=s.DeploymentSerializer(many=True),
                   summary="Deployment history of the endpoint, newest first")
    @extend_schema(methods=["POST"], request=s.DeploymentStartSerializer, parameters=[DRY_RUN],
                   responses={201: s.DeploymentSerializer, 200: s.DryRunSerializer},
                   summary="Deploy a model version (starts a rollout)")
    @action(detail=True, methods=["get", "post"])
    def deployments(self, request, slug=None):
        endpoint = self.get_object()
        if request.method == "GET":
            page = self.paginate_queryset(selectors.deployment_list(user=request.user, endpoint=endpoint))
            return self.get_paginated_response(s.DeploymentSerializer(page, many=True).data)
        data = s.DeploymentStartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        version = services.model_version_resolve(actor=request.user, model=fields.get("model"),
                                                 version=fields.get("version"),
                                                 model_version_id=fields.get("model_version_id"))
        if request.query_params.get("dry_run", "").lower() in ("1", "true", "yes"):
            manifests = services.deployment_dry_run(endpoint=endpoint, model_version=version,
                                                    strategy=fields["strategy"], config=fields["config"],
                                                    actor=request.user)
            return Response({"manifests": manifests})
        deployment = services.deployment_start(endpoint=endpoint, model_version=version, strategy=fields["strategy"],
                                               config=fields["config"], actor=request.user)
        fresh = selectors.deployment_get(user=request.user, pk=deployment.pk)
        return Response(s.DeploymentSerializer(fresh).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.FeedbackSerializer, responses=s.FeedbackResultSerializer,
                   summary="Send ground truth for earlier predictions")
    @action(detail=True, methods=["post"])
    def feedback(self, request, slug=None):
        endpoint = self.get_object(perm="serving.predict_endpoint")
        items = request.data.get("feedback") if isinstance(request.data, dict) else None
        api_key = request.auth if isinstance(request.auth, ApiKey) else None
        result = services.feedback_record(endpoint=endpoint, items=items, actor=request.user, api_key=api_key)
        return Response(result)

    @extend_schema(parameters=[WINDOW], responses=s.MetricsSerializer,
                   summary="Live requests/s, latency percentiles, error rate and accuracy per deployment")
    @action(detail=True, methods=["get"])
    def metrics(self, request, slug=None):
        endpoint = self.get_object()
        window = selectors.parse_window(request.query_params.get("window"))
        return Response(selectors.endpoint_metrics(endpoint=endpoint, window=window))


class DeploymentViewSet(viewsets.ReadOnlyModelViewSet):
    """Deployments of the endpoints you can see, with rollout controls.
    ``promote`` skips the remaining steps, ``pause``/``resume`` hold and
    continue a rollout, ``rollback`` gives the traffic back (a reason is
    required). Each needs the deploy right on the endpoint."""

    queryset = Deployment.objects.none()
    serializer_class = s.DeploymentSerializer
    lookup_value_regex = ID_PATTERN
    filterset_fields = ["status", "rollout_state", "strategy", "endpoint__slug"]
    ordering_fields = ["created_at"]

    def get_queryset(self):
        return selectors.deployment_list(user=self.request.user)

    def get_object(self):
        return selectors.deployment_get(user=self.request.user, pk=int(self.kwargs["pk"]))

    def get_serializer_class(self):
        return s.DeploymentDetailSerializer if self.action == "retrieve" else s.DeploymentSerializer

    def _detail(self, pk: int) -> Response:
        deployment = (self.get_queryset().prefetch_related(
            Prefetch("events", queryset=RolloutEvent.objects.select_related("actor").order_by("created_at", "id")))
            .get(pk=pk))
        return Response(s.DeploymentDetailSerializer(deployment).data)

    def retrieve(self, request, pk=None):
        self.get_object()
        return self._detail(int(pk))

    @extend_schema(request=None, responses=s.DeploymentDetailSerializer, summary="Give the new version all traffic")
    @action(detail=True, methods=["post"])
    def promote(self, request, pk=None):
        services.deployment_promote(deployment=self._controlled(), actor=request.user)
        return self._detail(int(pk))

    @extend_schema(request=s.DeploymentPauseSerializer, responses=s.DeploymentDetailSerializer,
                   summary="Hold the rollout")
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        data = s.DeploymentPauseSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.deployment_pause(deployment=self._controlled(), actor=request.user,
                                  reason=data.validated_data["reason"])
        return self._detail(int(pk))

    @extend_schema(request=None, responses=s.DeploymentDetailSerializer, summary="Continue a paused rollout")
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        services.deployment_resume(deployment=self._controlled(), actor=request.user)
        return self._detail(int(pk))

    @extend_schema(request=s.DeploymentRollbackSerializer, responses=s.DeploymentDetailSerializer,
                   summary="Stop the rollout and restore the previous traffic split")
    @action(detail=True, methods=["post"])
    def rollback(self, request, pk=None):
        data = s.DeploymentRollbackSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.deployment_rollback(deployment=self._controlled(), actor=request.user,
                                     reason=data.validated_data["reason"])
        return self._detail(int(pk))

    def _controlled(self) -> Deployment:
        deployment = self.get_object()
        require_perm(self.request.user, "serving.deploy_endpoint", deployment.endpoint)
        return deployment
