"""Dataset endpoints under /api/v1/. Views parse input, call a service or a
selector and shape the output."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from apps.core.errors import NotFound, ValidationFailed
from apps.core.middleware import max_body_size
from apps.core.permissions import require_perm
from apps.core.schema import ID_PATTERN
from apps.core.storage import open_artifact
from apps.core.usercontent import user_content_response
from apps.datasets import selectors, services
from apps.datasets.api import serializers as s
from apps.datasets.filtersets import DatasetFilter, DatasetVersionFilter
from apps.datasets.models import Dataset, DatasetVersion, Expectation
from apps.datasets.uploadhandlers import LimitedTemporaryFileUploadHandler

UPLOAD_ACTIONS = ("versions", "preview")


class DatasetViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Datasets you may see. Each has versions (uploads), expectations and a feature spec."""

    queryset = Dataset.objects.none()  # for the schema; get_queryset scopes to the user
    serializer_class = s.DatasetSerializer
    lookup_value_regex = ID_PATTERN
    filterset_class = DatasetFilter
    ordering_fields = ["name", "created_at", "updated_at"]
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def initialize_request(self, request, *args, **kwargs):
        # Uploads spool to disk with a size check while streaming; the handler
        # must be in place before anything (CSRF included) reads the body.
        if request.method == "POST" and getattr(self, "action_map", {}).get("post") in UPLOAD_ACTIONS:
            request.upload_handlers = [LimitedTemporaryFileUploadHandler(request)]
        return super().initialize_request(request, *args, **kwargs)

    def get_queryset(self):
        return selectors.dataset_list(user=self.request.user)

    def get_object(self):
        return selectors.dataset_get(user=self.request.user, pk=self.kwargs["pk"])

    @extend_schema(request=s.DatasetCreateSerializer, responses={201: s.DatasetSerializer})
    def create(self, request):
        data = s.DatasetCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        dataset = services.dataset_create(actor=request.user, **data.validated_data)
        return Response(s.DatasetSerializer(selectors.dataset_list(user=request.user).get(pk=dataset.pk)).data,
                        status=status.HTTP_201_CREATED)

    @extend_schema(request=s.DatasetUpdateSerializer, responses=s.DatasetSerializer)
    def partial_update(self, request, pk=None):
        data = s.DatasetUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        dataset = services.dataset_update(dataset=self.get_object(), actor=request.user, **data.validated_data)
        return Response(s.DatasetSerializer(selectors.dataset_list(user=request.user).get(pk=dataset.pk)).data)

    @extend_schema(methods=["GET"], request=None, responses=s.DatasetVersionSerializer(many=True))
    @extend_schema(
        methods=["POST"],
        request={"multipart/form-data": s.DatasetVersionUploadSerializer},
        responses={201: s.DatasetVersionUploadedSerializer, 200: s.DatasetVersionUploadedSerializer},
        description="Upload a CSV, TSV, Excel .xlsx or Parquet file as the next version; read options override "
                    "what is detected (delimiter, decimal, thousands, encoding, header_row, sheet, column_types). "
                    "201 with a new version; 200 with "
                    "the existing one (``created: false``) when the same content was uploaded before. "
                    "Validation runs in the background: poll the version's status.",
    )
    @action(detail=True, methods=["get", "post"], url_path="versions")
    @max_body_size("DATASET_MAX_UPLOAD_SIZE")
    def versions(self, request, pk=None):
        dataset = self.get_object()
        if request.method == "GET":
            queryset = self.filter_queryset_versions(selectors.dataset_version_list(user=request.user,
                                                                                   dataset=dataset))
            page = self.paginate_queryset(queryset)
            return self.get_paginated_response(s.DatasetVersionSerializer(page, many=True).data)
        data = s.DatasetVersionUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        parent = None
        if data.validated_data["parent"] is not None:
            parent = (selectors.dataset_version_list(user=request.user, dataset=dataset)
                      .filter(pk=data.validated_data["parent"]).first())
            if parent is None:
                raise ValidationFailed("The parent is not a version of this dataset.",
                                       details={"fields": {"parent": ["Not a version of this dataset."]}})
        upload = data.validated_data["file"]
        outcome = services.dataset_version_upload(dataset=dataset, actor=request.user, file=upload,
                                                  filename=upload.name, note=data.validated_data["note"],
                                                  parent=parent, options=data.read_options())
        body = s.DatasetVersionSerializer(outcome.version).data | {"created": outcome.created}
        return Response(body, status=status.HTTP_201_CREATED if outcome.created else status.HTTP_200_OK)

    @extend_schema(
        request={"multipart/form-data": s.DatasetVersionPreviewSerializer},
        responses=s.DatasetVersionPreviewResultSerializer,
        description="How a file would be read (detected read options with your overrides), the type inferred "
                    "per column and the first 20 rows as read. Stores nothing.",
    )
    @action(detail=True, methods=["post"], url_path="preview")
    @max_body_size("DATASET_MAX_UPLOAD_SIZE")
    def preview(self, request, pk=None):
        dataset = self.get_object()
        data = s.DatasetVersionPreviewSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        return Response(services.dataset_version_preview(dataset=dataset, actor=request.user, file=upload,
                                                         filename=upload.name, options=data.read_options()))

    def filter_queryset_versions(self, queryset):
        wanted = self.request.query_params.get("status")
        return queryset.filter(status=wanted) if wanted else queryset

    @extend_schema(methods=["GET"], request=None, responses=s.ExpectationSerializer(many=True))
    @extend_schema(methods=["POST"], request=s.ExpectationWriteSerializer, responses={201: s.ExpectationSerializer})
    # A plain list, neither paginated nor filtered (the schema says so too).
    @action(detail=True, methods=["get", "post"], url_path="expectations", pagination_class=None, filter_backends=[])
    def expectations(self, request, pk=None):
        dataset = self.get_object()
        if request.method == "GET":
            items = selectors.expectation_list(dataset=dataset)
            return Response(s.ExpectationSerializer(items, many=True).data)
        data = s.ExpectationWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        expectation = services.expectation_create(dataset=dataset, actor=request.user, **data.validated_data)
        return Response(s.ExpectationSerializer(expectation).data, status=status.HTTP_201_CREATED)

    def _expectation(self, dataset: Dataset, expectation_id) -> Expectation:
        expectation = selectors.expectation_list(dataset=dataset).filter(pk=expectation_id).first()
        if expectation is None:
            raise NotFound("Expectation not found.")
        return expectation

    @extend_schema(methods=["GET"], request=None, responses=s.ExpectationSerializer)
    @extend_schema(methods=["PATCH"], request=s.ExpectationPatchSerializer, responses=s.ExpectationSerializer)
    @extend_schema(methods=["DELETE"], request=None, responses={204: None})
    @action(detail=True, methods=["get", "patch", "delete"], url_path=rf"expectations/(?P<expectation_id>{ID_PATTERN})")
    def expectation(self, request, pk=None, expectation_id=None):
        dataset = self.get_object()
        expectation = self._expectation(dataset, expectation_id)
        if request.method == "GET":
            return Response(s.ExpectationSerializer(expectation).data)
        if request.method == "DELETE":
            services.expectation_delete(expectation=expectation, actor=request.user)
            return Response(status=status.HTTP_204_NO_CONTENT)
        data = s.ExpectationPatchSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        expectation = services.expectation_update(expectation=expectation, actor=request.user, **data.validated_data)
        return Response(s.ExpectationSerializer(expectation).data)

    @extend_schema(methods=["GET"], request=None, responses=s.FeatureSpecSerializer)
    @extend_schema(methods=["PUT"], request=s.FeatureSpecWriteSerializer, responses=s.FeatureSpecSerializer)
    @action(detail=True, methods=["get", "put"], url_path="feature-spec")
    def feature_spec(self, request, pk=None):
        dataset = self.get_object()
        if request.method == "PUT":
            data = s.FeatureSpecWriteSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            if not isinstance(data.validated_data["spec"], dict):
                raise ValidationFailed("spec must be a JSON object.", details={"fields": {"spec": ["Not an object."]}})
            dataset = services.dataset_feature_spec_set(dataset=dataset, actor=request.user,
                                                        spec=data.validated_data["spec"])
        summary = selectors.dataset_feature_spec_summary(dataset=dataset)
        summary.pop("columns", None)
        return Response(summary)


class DatasetVersionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Versions of the datasets you may see. The detail has the schema, the
    expectation results and the quality report once validated."""

    queryset = DatasetVersion.objects.none()
    serializer_class = s.DatasetVersionSerializer
    lookup_value_regex = ID_PATTERN
    filterset_class = DatasetVersionFilter
    ordering_fields = ["created_at", "version", "quality_score"]

    def get_queryset(self):
        return selectors.dataset_version_list(user=self.request.user)

    def get_object(self):
        return selectors.dataset_version_get(user=self.request.user, pk=self.kwargs["pk"])

    def get_serializer_class(self):
        return s.DatasetVersionDetailSerializer if self.action == "retrieve" else s.DatasetVersionSerializer

    @extend_schema(request=None, responses=s.DatasetVersionStatusSerializer)
    @action(detail=True, methods=["get"], url_path="status", url_name="status")
    def status_view(self, request, pk=None):
        """Status and progress only (what the browser polls)."""
        return Response(s.DatasetVersionStatusSerializer(self.get_object()).data)

    @extend_schema(request=None, responses={202: s.DatasetVersionStatusSerializer})
    @action(detail=True, methods=["post"])
    def revalidate(self, request, pk=None):
        """Validate again against the current expectations (also frees a version
        stuck in ``validating`` after a worker died)."""
        version = services.dataset_version_revalidate(version=self.get_object(), actor=request.user)
        return Response(s.DatasetVersionStatusSerializer(version).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses=s.DatasetLineageSerializer)
    @action(detail=True, methods=["get"])
    def lineage(self, request, pk=None):
        """Runs, training jobs, model versions and deployments derived from this version."""
        return Response(selectors.dataset_version_lineage(version=self.get_object(), user=request.user))

    @extend_schema(request=None, responses={(200, "application/octet-stream"): OpenApiResponse(
        response=OpenApiTypes.BINARY, description="The file exactly as uploaded.")})
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        version = self.get_object()
        require_perm(request.user, "datasets.view_dataset", version.dataset)
        return user_content_response(open_artifact(version.file), filename=version.original_filename)
