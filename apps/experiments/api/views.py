"""Tracking and training endpoints under /api/v1/. Views parse input, call a
service or selector and shape the output; nothing else."""

from __future__ import annotations

import posixpath

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from apps.core.errors import NotFound, ValidationFailed
from apps.core.middleware import max_body_size
from apps.core.schema import ID_PATTERN
from apps.core.storage import open_artifact
from apps.core.usercontent import user_content_response
from apps.experiments import selectors, services
from apps.experiments.api import serializers as s
from apps.experiments.filtersets import ExperimentFilter, RunFilter, TrainingJobFilter
from apps.experiments.models import Experiment, Run, TrainingJob

# What run_log_batch accepts as a metric key (services.validation.KEY_RE).
METRIC_KEY_PATTERN = r"[A-Za-z0-9_\-. :/]{1,250}"


def _experiment_from(request, data) -> Experiment:
    if data.get("experiment_id") is not None:
        return selectors.experiment_get(user=request.user, pk=data["experiment_id"])
    return selectors.experiment_get_by_name(user=request.user, name=data["experiment"])


def _dataset_version(request, pk):
    if pk is None:
        return None
    from apps.datasets.selectors import dataset_version_get

    try:
        return dataset_version_get(user=request.user, pk=pk)
    except NotFound:
        raise NotFound("Dataset version not found.", details={"dataset_version_id": pk})


class ExperimentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Experiments you may view. ``?name=`` finds one by exact name."""

    queryset = Experiment.objects.none()
    serializer_class = s.ExperimentSerializer
    lookup_value_regex = ID_PATTERN
    filterset_class = ExperimentFilter
    ordering_fields = ["name", "created_at", "updated_at"]

    def get_queryset(self):
        return selectors.experiment_list(user=self.request.user).order_by("name")

    def get_object(self):
        return selectors.experiment_get(user=self.request.user, pk=self.kwargs["pk"])

    @extend_schema(request=s.ExperimentCreateSerializer, responses={201: s.ExperimentSerializer})
    def create(self, request):
        data = s.ExperimentCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        experiment = services.experiment_create(actor=request.user, **data.validated_data)
        experiment.run_count = 0
        return Response(s.ExperimentSerializer(experiment).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.ExperimentUpdateSerializer, responses=s.ExperimentSerializer)
    def partial_update(self, request, pk=None):
        data = s.ExperimentUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        experiment = services.experiment_update(actor=request.user, experiment=self.get_object(),
                                                **data.validated_data)
        return Response(s.ExperimentSerializer(experiment).data)


class RunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Runs: create, log batches of metrics/params/tags, finish, artifacts,
    metric histories, and search across experiments."""

    queryset = Run.objects.none()
    serializer_class = s.RunSerializer
    lookup_value_regex = ID_PATTERN
    filterset_class = RunFilter
    ordering_fields = ["start_time", "end_time", "name", "status", "id"]

    def get_queryset(self):
        return selectors.run_list(user=self.request.user)

    def get_object(self):
        return selectors.run_get(user=self.request.user, pk=self.kwargs["pk"])

    def list(self, request, *args, **kwargs):
        qs = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(qs)
        runs = selectors.attach_details(list(page if page is not None else qs))
        data = s.RunSerializer(runs, many=True).data
        return self.get_paginated_response(data) if page is not None else Response(data)

    @extend_schema(request=s.RunCreateSerializer, responses={201: s.RunSerializer})
    def create(self, request):
        data = s.RunCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        experiment = _experiment_from(request, values)
        parent = None
        if values.get("parent_run_id") is not None:
            parent = selectors.run_get(user=request.user, pk=values["parent_run_id"])
        run = services.run_create(
            actor=request.user, experiment=experiment, name=values["name"], parent=parent,
            dataset_version=_dataset_version(request, values.get("dataset_version_id")),
            source_version=values["source_version"], note=values["note"], tags=values["tags"],
            start_time=values.get("start_time"),
        )
        run = selectors.run_get(user=request.user, pk=run.pk)
        return Response(s.RunSerializer(run).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.RunUpdateSerializer, responses=s.RunSerializer)
    def partial_update(self, request, pk=None):
        data = s.RunUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.run_update(actor=request.user, run=self.get_object(), **data.validated_data)
        return Response(s.RunSerializer(selectors.run_get(user=request.user, pk=pk)).data)

    @extend_schema(request=s.LogBatchSerializer, responses=s.LogBatchResultSerializer)
    @action(detail=True, methods=["post"], url_path="log-batch")
    def log_batch(self, request, pk=None):
        body = request.data
        if not isinstance(body, dict):
            raise ValidationFailed("Expected a JSON object with metrics, params and tags.")
        result = services.run_log_batch(actor=request.user, run_id=pk, metrics=body.get("metrics") or [],
                                        params=body.get("params") or [], tags=body.get("tags") or [])
        return Response(result.as_dict())

    @extend_schema(request=s.RunFinishSerializer, responses=s.RunSerializer)
    @action(detail=True, methods=["post"])
    def finish(self, request, pk=None):
        data = s.RunFinishSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        run = selectors.run_get(user=request.user, pk=pk)
        services.run_finish(actor=request.user, run=run, **data.validated_data)
        return Response(s.RunSerializer(selectors.run_get(user=request.user, pk=pk)).data)

    @extend_schema(methods=["GET"], request=None, responses=s.ArtifactSerializer(many=True))
    @extend_schema(methods=["POST"], request={"multipart/form-data": s.ArtifactUploadSerializer},
                   responses={201: s.ArtifactSerializer})
    @max_body_size("MODEL_MAX_UPLOAD_SIZE")
    @action(detail=True, methods=["get", "post"], parser_classes=[MultiPartParser, FormParser, JSONParser],
            pagination_class=None, filter_backends=[])  # a plain list, as the schema says
    def artifacts(self, request, pk=None):
        run = selectors.run_get(user=request.user, pk=pk)
        if request.method == "GET":
            return Response(s.ArtifactSerializer(selectors.artifact_list(run=run), many=True).data)
        data = s.ArtifactUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        path = data.validated_data.get("path") or posixpath.basename(upload.name or "")
        artifact = services.artifact_log(actor=request.user, run=run, fileobj=upload, path=path,
                                         content_type=getattr(upload, "content_type", "") or "")
        return Response(s.ArtifactSerializer(artifact).data, status=status.HTTP_201_CREATED)

    @extend_schema(parameters=[OpenApiParameter("path", str, required=True)],
                   responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"], url_path="artifacts/download", url_name="artifacts-download")
    def download(self, request, pk=None):
        run = selectors.run_get(user=request.user, pk=pk)
        path = request.query_params.get("path", "")
        if not path:
            raise ValidationFailed("Give the artifact's path: ?path=...", details={"fields": {"path": ["Required."]}})
        artifact = selectors.artifact_get(run=run, path=path)
        try:
            handle = open_artifact(artifact.file)
        except (FileNotFoundError, OSError):
            raise NotFound(f"The file of artifact {path!r} is missing from storage.")
        response = user_content_response(handle, filename=posixpath.basename(artifact.path),
                                         inline=request.query_params.get("inline") == "1")
        response["X-Content-SHA256"] = artifact.sha256
        return response

    @extend_schema(request=s.RunSearchSerializer, responses=s.RunSearchResultSerializer)
    @action(detail=False, methods=["post"])
    def search(self, request):
        data = s.RunSearchSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        page = selectors.run_search(
            user=request.user, experiment_ids=values.get("experiment_ids"), filter_string=values["filter"],
            order_by=values["order_by"], max_results=values["max_results"], page_token=values.get("page_token"),
        )
        return Response({"runs": s.run_payloads(page.runs),
                         "next_page_token": page.next_page_token})

    @extend_schema(parameters=[OpenApiParameter("max_points", int, required=False,
                                                description="Downsample (LTTB) to at most this many points.")],
                   responses=s.MetricHistorySerializer)
    @action(detail=True, methods=["get"], url_path=rf"metrics/(?P<key>{METRIC_KEY_PATTERN})/history",
            url_name="metric-history")
    def metric_history(self, request, pk=None, key=None):
        run = selectors.run_get(user=request.user, pk=pk)
        raw = request.query_params.get("max_points")
        max_points = None
        if raw not in (None, ""):
            try:
                max_points = int(raw)
            except ValueError:
                raise ValidationFailed("max_points must be a whole number.",
                                       details={"fields": {"max_points": [raw]}})
            if max_points < 3:
                raise ValidationFailed("max_points must be at least 3.", details={"fields": {"max_points": [raw]}})
        # Returned as built: a serializer per point would cost seconds on a
        # full million-point history.
        return Response(selectors.metric_history(run=run, key=key, max_points=max_points))


class TrainingJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Training jobs: submit, follow (status, progress, progress_message) and
    cancel. A search is one job whose ``children`` are its candidates."""

    queryset = TrainingJob.objects.none()
    serializer_class = s.TrainingJobSerializer
    lookup_value_regex = ID_PATTERN
    filterset_class = TrainingJobFilter
    ordering_fields = ["created_at", "finished_at", "status"]

    def get_queryset(self):
        return selectors.training_job_list(user=self.request.user)

    def get_object(self):
        return selectors.training_job_get(user=self.request.user, pk=self.kwargs["pk"])

    @extend_schema(request=s.TrainingJobCreateSerializer, responses={201: s.TrainingJobSerializer})
    def create(self, request):
        data = s.TrainingJobCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        experiment = _experiment_from(request, values)
        version = _dataset_version(request, values["dataset_version_id"])
        job = services.training_job_create(
            actor=request.user, experiment=experiment, dataset_version=version, estimator=values["estimator"],
            target_column=values["target_column"], task=values.get("task"),
            hyperparameters=values["hyperparameters"], split=request.data.get("split"),
            cv_folds=values["cv_folds"], search=values.get("search"), run_name=values["run_name"],
        )
        job = selectors.training_job_get(user=request.user, pk=job.pk)
        return Response(s.TrainingJobSerializer(job).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=s.TrainingJobSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        job = services.training_job_cancel(actor=request.user, job=self.get_object())
        return Response(s.TrainingJobSerializer(selectors.training_job_get(user=request.user, pk=job.pk)).data)
