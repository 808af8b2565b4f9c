from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from apps.core.errors import NotFound
from apps.core.middleware import max_body_size
from apps.core.schema import ID_PATTERN, NUMBER_PATTERN
from apps.core.storage import open_artifact
from apps.core.usercontent import user_content_response
from apps.registry import selectors, services
from apps.registry.api import serializers as s
from apps.registry.filtersets import ModelVersionFilter, PromotionRequestFilter
from apps.registry.models import ModelVersion, PromotionRequest, RegisteredModel
from apps.registry.uploadhandlers import ModelFileUploadHandler

# The older, MLflow-style name of promotion requests, kept as an alias path.
ALIAS_NOTE = ("MLflow-style alias: `transition-requests` is the name MLflow gives promotion requests. Same "
              "request, response and behaviour as the matching `promotion-requests` operation, which is the "
              "primary path.")

# What the services accept (slugs), bounded by the columns' lengths: anything
# else is no route, a 404, before it reaches a query.
NAME_PATTERN = r"[-a-z0-9_]{1,100}"
ALIAS_PATTERN = r"[-a-z0-9_]{1,50}"


def _created(data) -> Response:
    return Response(data, status=status.HTTP_201_CREATED)


def _dataset_version(user, pk):
    """The dataset version with id ``pk`` the user may see (None for None)."""
    if pk is None:
        return None
    found = selectors.dataset_version_to_use(user=user, pk=pk)
    if found is None:
        raise NotFound("Dataset version not found.")
    return found


class RegisteredModelViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Registered models, looked up by name. Creating one makes you its owner;
    with lab sharing (the default) every role gets its usual rights on it."""

    queryset = RegisteredModel.objects.none()
    serializer_class = s.RegisteredModelSerializer
    lookup_field = "name"
    lookup_value_regex = NAME_PATTERN
    ordering_fields = ["name", "created_at", "updated_at"]

    def get_queryset(self):
        return selectors.registered_model_list(user=self.request.user)

    def get_object(self):
        # Only the model's own representation needs the annotations (Production
        # version, pending requests, aliases); actions get the plain row.
        annotated = self.action in ("retrieve", "partial_update")
        return selectors.registered_model_get(user=self.request.user, name=self.kwargs["name"], annotated=annotated)

    @extend_schema(request=s.RegisteredModelCreateSerializer, responses={201: s.RegisteredModelSerializer})
    def create(self, request):
        data = s.RegisteredModelCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        model = services.registered_model_create(actor=request.user, **data.validated_data)
        return _created(s.RegisteredModelSerializer(self._fresh(model.name)).data)

    @extend_schema(request=s.RegisteredModelUpdateSerializer, responses=s.RegisteredModelSerializer)
    def partial_update(self, request, name=None):
        data = s.RegisteredModelUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        if "evaluation_dataset_version_id" in changes:
            changes["evaluation_dataset_version"] = _dataset_version(
                request.user, changes.pop("evaluation_dataset_version_id"))
        services.registered_model_update(registered_model=self.get_object(), actor=request.user, **changes)
        return Response(s.RegisteredModelSerializer(self._fresh(name)).data)

    def _fresh(self, name):
        return selectors.registered_model_get(user=self.request.user, name=name)

    @extend_schema(request=s.RollbackSerializer, responses=s.ModelVersionSerializer,
                   summary="Put the previous Production version back")
    @action(detail=True, methods=["post"])
    def rollback(self, request, name=None):
        data = s.RollbackSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = services.registered_model_rollback(registered_model=self.get_object(), actor=request.user,
                                                     reason=data.validated_data["reason"])
        return Response(s.ModelVersionSerializer(selectors.model_version_get(
            user=request.user, registered_model=version.registered_model, version=version.version)).data)

    @extend_schema(methods=["GET"], responses=s.ModelAliasSerializer, summary="Which version an alias names")
    @extend_schema(methods=["PUT"], request=s.ModelAliasSetSerializer, responses=s.ModelAliasSerializer,
                   summary="Point an alias at a version (moves it atomically)")
    @extend_schema(methods=["DELETE"], request=None, responses={204: None}, summary="Remove an alias")
    @action(detail=True, methods=["get", "put", "delete"], url_path=rf"aliases/(?P<alias>{ALIAS_PATTERN})",
            url_name="alias")
    def alias(self, request, name=None, alias=None):
        model = self.get_object()
        if request.method == "PUT":
            data = s.ModelAliasSetSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            found = services.model_alias_set(registered_model=model, alias=alias, actor=request.user,
                                             version_number=data.validated_data["version"])
            return Response(s.ModelAliasSerializer(found).data)
        if request.method == "DELETE":
            services.model_alias_delete(registered_model=model, alias=alias, actor=request.user)
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(s.ModelAliasSerializer(selectors.model_alias_get(registered_model=model, alias=alias)).data)


class ModelVersionViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Versions of one registered model. POST registers a finished run's model
    (JSON ``{"run_id"}``) or an uploaded skops file (multipart ``file`` +
    ``signature``); pickle and joblib files are refused."""

    queryset = ModelVersion.objects.none()
    serializer_class = s.ModelVersionSerializer
    lookup_field = "version"
    lookup_value_regex = NUMBER_PATTERN
    filterset_class = ModelVersionFilter
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    ordering_fields = ["version", "created_at"]

    def initialize_request(self, request, *args, **kwargs):
        # Model files spool to disk, hashed and size-checked while streaming;
        # the handler must be in place before anything (CSRF included) reads the body.
        if request.method == "POST" and getattr(self, "action_map", {}).get("post") == "create":
            request.upload_handlers = [ModelFileUploadHandler(request)]
        return super().initialize_request(request, *args, **kwargs)

    def registered_model(self) -> RegisteredModel:
        if not hasattr(self, "_registered_model"):
            self._registered_model = selectors.registered_model_get(user=self.request.user, name=self.kwargs["name"],
                                                                    annotated=False)
        return self._registered_model

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ModelVersion.objects.none()
        return selectors.model_version_list(user=self.request.user, registered_model=self.registered_model())

    def get_object(self):
        return selectors.model_version_get(user=self.request.user, registered_model=self.registered_model(),
                                           version=int(self.kwargs["version"]))


    @extend_schema(
        request={"application/json": s.ModelVersionRegisterSerializer,
                 "multipart/form-data": s.ModelVersionUploadSerializer},
        responses={201: s.ModelVersionSerializer},
    )
    @max_body_size("MODEL_MAX_UPLOAD_SIZE")
    def create(self, request, name=None):
        model = self.registered_model()
        if "file" in request.FILES:
            data = s.ModelVersionUploadSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            dataset_version = None
            if data.validated_data["dataset_version_id"] is not None:
                dataset_version = selectors.dataset_version_to_use(user=request.user,
                                                                   pk=data.validated_data["dataset_version_id"])
                if dataset_version is None:
                    raise NotFound("Dataset version not found.")
            version = services.model_version_upload(
                registered_model=model, actor=request.user, data=data.validated_data["file"],
                signature=data.validated_data["signature"], input_example=data.validated_data["input_example"],
                description=data.validated_data["description"], dataset_version=dataset_version,
            )
        else:
            data = s.ModelVersionRegisterSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            run = selectors.run_to_register(user=request.user, pk=data.validated_data["run_id"])
            if run is None:
                raise NotFound(f"Run {data.validated_data['run_id']} not found.")
            version = services.model_version_register(registered_model=model, run=run, actor=request.user,
                                                      description=data.validated_data["description"])
        # The service checked the rights and returns the version with its model and creator loaded.
        return _created(s.ModelVersionSerializer(version).data)

    @extend_schema(responses=s.ModelVersionSerializer)
    def retrieve(self, request, name=None, version=None):
        return Response(s.ModelVersionSerializer(self.get_object()).data)

    @extend_schema(request=s.ModelVersionUpdateSerializer, responses=s.ModelVersionSerializer)
    def partial_update(self, request, name=None, version=None):
        data = s.ModelVersionUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        updated = services.model_version_update(version=self.get_object(), actor=request.user, **data.validated_data)
        return Response(s.ModelVersionSerializer(updated).data)

    def _promotion_requests(self, request) -> Response:
        model_version = self.get_object()
        if request.method == "POST":
            data = s.PromotionRequestCreateSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            created = services.promotion_request_create(
                version=model_version, actor=request.user, target_stage=data.validated_data["stage"],
                justification=data.validated_data["justification"])
            return _created(s.PromotionRequestSerializer(
                selectors.promotion_request_get(user=request.user, pk=created.pk)).data)
        promotion_requests = selectors.promotion_request_list(user=request.user, version=model_version)
        return Response(s.PromotionRequestSerializer(promotion_requests, many=True).data)

    @extend_schema(methods=["GET"], responses=s.PromotionRequestSerializer(many=True),
                   summary="Promotion requests of this version")
    @extend_schema(methods=["POST"], request=s.PromotionRequestCreateSerializer,
                   responses={201: s.PromotionRequestSerializer},
                   summary="Ask to move this version to Staging or Production; gates are evaluated now")
    @action(detail=True, methods=["get", "post"], url_path="promotion-requests", url_name="promotion-requests",
            filterset_class=None, pagination_class=None)
    def promotion_requests(self, request, name=None, version=None):
        return self._promotion_requests(request)

    @extend_schema(methods=["GET"], responses=s.PromotionRequestSerializer(many=True),
                   summary="Promotion requests of this version (MLflow-style alias)", description=ALIAS_NOTE)
    @extend_schema(methods=["POST"], request=s.PromotionRequestCreateSerializer,
                   responses={201: s.PromotionRequestSerializer},
                   summary="Ask to move this version to Staging or Production (MLflow-style alias)",
                   description=ALIAS_NOTE)
    @action(detail=True, methods=["get", "post"], url_path="transition-requests", url_name="transition-requests",
            filterset_class=None, pagination_class=None)
    def transition_requests(self, request, name=None, version=None):
        return self._promotion_requests(request)

    @extend_schema(responses=s.LineageSerializer, summary="dataset version → run → model version → deployments")
    @action(detail=True, methods=["get"], filterset_class=None)
    def lineage(self, request, name=None, version=None):
        lineage = selectors.version_lineage(version=self.get_object(), user=request.user)
        return Response(s.LineageSerializer(lineage).data)

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
                   summary="The version's skops file")
    @action(detail=True, methods=["get"], filterset_class=None)
    def download(self, request, name=None, version=None):
        model_version = self.get_object()
        response = user_content_response(
            open_artifact(model_version.artifact),
            filename=f"{model_version.registered_model.name}-v{model_version.version}.skops")
        response["X-Content-SHA256"] = model_version.sha256
        return response


class PromotionRequestViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Promotion requests across the models you may see; ``?status=pending``
    is the approval queue. Approve or reject needs approve rights on the model
    and is refused to the requester (four eyes)."""

    queryset = PromotionRequest.objects.none()
    serializer_class = s.PromotionRequestSerializer
    lookup_value_regex = ID_PATTERN
    filterset_class = PromotionRequestFilter
    ordering_fields = ["created_at", "decided_at"]

    def get_queryset(self):
        return selectors.promotion_request_list(user=self.request.user)

    def get_object(self):
        return selectors.promotion_request_get(user=self.request.user, pk=int(self.kwargs["pk"]))

    @extend_schema(request=s.ApproveSerializer, responses=s.PromotionRequestSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        data = s.ApproveSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        decided = services.promotion_request_approve(promotion_request=self.get_object(), actor=request.user,
                                                     **data.validated_data)
        return Response(s.PromotionRequestSerializer(
            selectors.promotion_request_get(user=request.user, pk=decided.pk)).data)

    @extend_schema(request=s.RejectSerializer, responses=s.PromotionRequestSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        data = s.RejectSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        decided = services.promotion_request_reject(promotion_request=self.get_object(), actor=request.user,
                                                    comment=data.validated_data["comment"])
        return Response(s.PromotionRequestSerializer(
            selectors.promotion_request_get(user=request.user, pk=decided.pk)).data)

    @extend_schema(request=None, responses=s.PromotionRequestSerializer, summary="Withdraw your own pending request")
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        cancelled = services.promotion_request_cancel(promotion_request=self.get_object(), actor=request.user)
        return Response(s.PromotionRequestSerializer(
            selectors.promotion_request_get(user=request.user, pk=cancelled.pk)).data)


@extend_schema_view(
    list=extend_schema(summary="Promotion requests (MLflow-style alias)", description=ALIAS_NOTE),
    retrieve=extend_schema(summary="A promotion request (MLflow-style alias)", description=ALIAS_NOTE),
    approve=extend_schema(summary="Approve a promotion request (MLflow-style alias)", description=ALIAS_NOTE),
    reject=extend_schema(summary="Reject a promotion request (MLflow-style alias)", description=ALIAS_NOTE),
    cancel=extend_schema(summary="Withdraw your own pending request (MLflow-style alias)", description=ALIAS_NOTE),
)
class TransitionRequestViewSet(PromotionRequestViewSet):
    """``/transition-requests/``: the MLflow-style name of
    ``/promotion-requests/``, kept so that existing clients keep working."""

