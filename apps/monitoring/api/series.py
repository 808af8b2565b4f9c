"""The metric series of an endpoint under
``/api/v1/endpoints/<slug>/series/`` (serving's ``.../metrics/`` is its live
window over the raw log; this reads the stored series)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.monitoring import selectors
from apps.monitoring.choices import Granularity


class HistogramBucketSerializer(serializers.Serializer):
    le = serializers.FloatField(allow_null=True, help_text="Upper edge of the bucket; null: above the last edge.")
    count = serializers.IntegerField()


class SeriesPointSerializer(serializers.Serializer):
    start = serializers.DateTimeField(help_text="Start of the minute, hour or day (UTC).")
    requests = serializers.IntegerField()
    successes = serializers.IntegerField()
    invalid = serializers.IntegerField(help_text="Requests refused with a 4xx.")
    errors = serializers.IntegerField(help_text="Requests that failed with a 5xx.")
    request_rate = serializers.FloatField(help_text="Requests per second over the bucket.")
    error_rate = serializers.FloatField(allow_null=True, help_text="5xx / (requests - 4xx).")
    invalid_rate = serializers.FloatField(allow_null=True, help_text="4xx / requests.")
    latency_p50 = serializers.FloatField(allow_null=True, help_text="Milliseconds, answered requests.")
    latency_p95 = serializers.FloatField(allow_null=True)
    latency_p99 = serializers.FloatField(allow_null=True)
    latency_mean = serializers.FloatField(allow_null=True)
    instances = serializers.IntegerField(help_text="Answered instances (a batch request has several).")
    class_counts = serializers.DictField(child=serializers.IntegerField(), help_text="Classifiers: answers per class.")
    prediction_histogram = HistogramBucketSerializer(many=True, help_text="Regressors: answers per fixed bucket.")
    mean_confidence = serializers.FloatField(allow_null=True, help_text="Mean top-class probability.")
    judged = serializers.IntegerField(help_text="Classifier answers with feedback.")
    correct = serializers.IntegerField()
    accuracy = serializers.FloatField(allow_null=True)
    scored = serializers.IntegerField(help_text="Regressor answers with feedback.")
    abs_error = serializers.FloatField(allow_null=True, help_text="Mean absolute error.")
    rmse = serializers.FloatField(allow_null=True)


class SeriesSerializer(serializers.Serializer):
    endpoint = serializers.CharField()
    deployment = serializers.IntegerField(allow_null=True)
    granularity = serializers.ChoiceField(choices=Granularity.choices)
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    points = SeriesPointSerializer(many=True)


PARAMETERS = [
    OpenApiParameter("granularity", OpenApiTypes.STR, enum=Granularity.values,
                     description="minute (kept 14 days), hour (400 days) or day (forever); default minute."),
    OpenApiParameter("since", OpenApiTypes.DATETIME, description="ISO 8601; default: an hour, a week or 90 days "
                                                                "before until."),
    OpenApiParameter("until", OpenApiTypes.DATETIME, description="ISO 8601, exclusive; default now."),
    OpenApiParameter("deployment", OpenApiTypes.INT, description="One deployment's points; default all merged."),
]


class EndpointSeriesView(APIView):
    """Per-minute, hour or day metric series of an endpoint you can see:
    traffic, errors, latency percentiles (from merged fixed-bucket
    histograms), prediction distribution, confidence and — where feedback
    arrived — accuracy or error, attributed to the prediction's bucket.
    Buckets without requests or feedback are left out."""

    @extend_schema(parameters=PARAMETERS, responses=SeriesSerializer, operation_id="endpoints_series_retrieve",
                   tags=["monitoring"], summary="Stored metric series of an endpoint")
    def get(self, request, slug: str):
        params = request.query_params
        data = selectors.metric_series_get(user=request.user, endpoint=slug, deployment=params.get("deployment"),
                                           granularity=params.get("granularity") or Granularity.MINUTE,
                                           since=params.get("since"), until=params.get("until"))
        return Response(SeriesSerializer(data).data)
