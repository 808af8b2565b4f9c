"""The OpenAPI description of ``POST /api/v1/endpoints/{slug}/predict/``.

The predict path is a plain Django view (apps/serving/api/predict.py), which
drf-spectacular cannot see. ``PredictContract`` is a DRF view that is never
routed or dispatched; the schema generator documents the route through it
(apps/core/schema.py). Requests never touch this module, so the hot path
costs what it did; the lab's software gets a contract for the call it makes
most."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from apps.core.schema import ErrorSerializer, schema_only_endpoint
from apps.serving.services.predictions import MAX_UNIT_ID_LENGTH


class PredictSerializer(serializers.Serializer):
    instances = serializers.ListField(
        child=serializers.DictField(), min_length=1,
        help_text="One object per instance, keyed by the model signature's input names; at most the endpoint's "
                  "max_batch_size (config, 100 by default).")
    unit_id = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=MAX_UNIT_ID_LENGTH,
        help_text="Sticky routing key (a sample or submission id): the same unit always reaches the same "
                  "deployment while the traffic split stands. A whole number is taken as its decimal string. "
                  "Without it, the input field named by the endpoint's config.unit_field (first instance) is "
                  "the unit, if set; else the request is routed at random.")


class PredictResponseSerializer(serializers.Serializer):
    request_id = serializers.CharField(help_text="Send it back with the ground truth (feedback).")
    model = serializers.CharField(help_text="Registered model name of the version that answered.")
    version = serializers.IntegerField()
    deployment_id = serializers.IntegerField()
    predictions = serializers.ListField(child=serializers.JSONField(), help_text="One per instance, in order.")
    probabilities = serializers.ListField(
        child=serializers.DictField(child=serializers.FloatField()), required=False,
        help_text='Classification only: one {"<class>": probability} object per instance.')
    serving_path = serializers.CharField(help_text="onnx or sklearn: how the model was run.")
    split = serializers.DictField(
        child=serializers.IntegerField(), required=False,
        help_text='While a steady split (an A/B test) holds the endpoint: {"id": split id, "arm": arm index}.')


_ERROR = ErrorSerializer  # keeps the response table below readable


class PredictContract(APIView):
    """Schema-only stand-in for ``predict_view``; never dispatched."""

    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]
    error_codes = ["400", "401", "403", "404", "413"]

    @extend_schema(
        operation_id="endpoints_predict_create",
        tags=["endpoints"],
        summary="Predict: the instances in, one prediction per instance out",
        description=(
            "The lean hot path. Each instance is validated against the deployed version's signature (a 400 "
            "names the instance and field); the request is routed by the endpoint's traffic split, sticky per "
            "``unit_id``; the answer names the version that gave it and a ``request_id`` for feedback. Needs "
            "the predict right on the endpoint (ML Engineer, Data Scientist, Admin; lab software through an "
            "API key)."),
        request=PredictSerializer,
        responses={
            200: PredictResponseSerializer,
            400: OpenApiResponse(_ERROR, description="Not a JSON object, no instances, more than the maximum "
                                                     "batch, or an instance that does not fit the signature."),
            401: OpenApiResponse(_ERROR, description="No credentials, or invalid ones."),
            403: OpenApiResponse(_ERROR, description="You may view the endpoint but not predict with it."),
            404: OpenApiResponse(_ERROR, description="No such endpoint, or not visible to you."),
            413: OpenApiResponse(_ERROR, description="The body is over API_MAX_BODY_SIZE."),
            500: OpenApiResponse(_ERROR, description="The model raised while predicting (prediction_failed); the "
                                                     "answer is logged and counts in the deployment's error rate, "
                                                     "which a rollout watches."),
            503: OpenApiResponse(_ERROR, description="The endpoint has no healthy deployment to answer "
                                                     "(no_healthy_deployment)."),
        },
    )
    def post(self, request, slug):  # pragma: no cover - never dispatched
        raise NotImplementedError


def document_predict_route() -> None:
    schema_only_endpoint(path="/api/v1/endpoints/{slug}/predict/", route="api/v1/endpoints/<slug:slug>/predict/",
                         method="POST", view_class=PredictContract)
