from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.abtests import selectors, services
from apps.abtests.api import serializers as s
from apps.abtests.choices import TestStatus
from apps.abtests.models import ABTest
from apps.core.errors import ValidationFailed
from apps.core.schema import ID_PATTERN, ErrorSerializer
from apps.serving.selectors import endpoint_get
from apps.serving.services import model_version_resolve

# Fifty arms with every optional sum fit in a tenth of this.
MAX_ANALYSIS_BODY_SIZE = 64 * 1024

EXAMPLE_REQUEST = {
    "metric_type": "proportion",
    "arms": [{"name": "control", "n": 53, "sum": 5, "sum_squares": 5},
             {"name": "b", "n": 47, "sum": 7, "sum_squares": 7}],
    "engine": "frequentist",
    "difference": "relative",
    "alpha": 0.05,
    "correction": "none",
}
EXAMPLE_RESPONSE = {
    "srm": {"p_value": 0.5485, "mismatch": False},
    "comparisons": [{"arm": "b", "estimate": 0.5787, "ci": [-1.147, 2.305], "p_value": 0.507, "stddev": 0.8686,
                     "dof": 89.23, "chance_to_win": None, "risk": None, "significant": False, "error": None}],
}
EXAMPLE_BAYESIAN_RESPONSE = {
    "srm": {"p_value": 0.5485, "mismatch": False},
    "comparisons": [{"arm": "b", "estimate": 0.5787, "ci": [-1.1237, 2.2812], "p_value": None, "stddev": 0.8686,
                     "dof": None, "chance_to_win": 0.7474, "risk": {"control": 0.7101, "treatment": 0.1314},
                     "significant": False, "error": None}],
}
EXAMPLE_ERROR = {"error": {
    "code": "validation_failed",
    "message": "arms[1].sum_squares: must equal sum for a proportion (values are 0 or 1)",
    "details": {"fields": {"arms[1].sum_squares": ["must equal sum for a proportion (values are 0 or 1)"]}},
}}


def field_errors(detail, path: str = "") -> dict[str, list[str]]:
    """DRF's nested error tree as ``{"arms[1].n": [messages]}``, the keys the statistics core uses."""
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            if key == "non_field_errors":
                sub = path
            elif isinstance(key, int) or str(key).isdigit():  # an item of a list of objects
                sub = f"{path}[{key}]"
            else:
                sub = f"{path}.{key}" if path else str(key)
            out.update(field_errors(value, sub))
        return out
    if isinstance(detail, list) and any(isinstance(item, dict | list) for item in detail):
        out = {}
        for index, item in enumerate(detail):
            out.update(field_errors(item, f"{path}[{index}]"))
        return out
    messages = [str(item) for item in detail] if isinstance(detail, list) else [str(detail)]
    return {path or "body": messages} if messages else {}


class MetricAnalysisView(APIView):
    """Stateless analysis of one metric from per-arm sufficient statistics."""

    parser_classes = [JSONParser]
    max_body_size = MAX_ANALYSIS_BODY_SIZE
    # It reads and writes nothing stored: no object to be refused (403 is CSRF
    # for a browser session), none to be missing, no state to conflict with.
    error_codes = ["400", "401", "403", "413", "415"]

    @extend_schema(
        operation_id="ab_tests_analyze",
        tags=["ab-tests"],
        summary="Analyse a metric: per-arm sums in, sample-ratio check and comparisons with the control out",
        description=(
            "Arm 0 is the control; every other arm is compared with it by the chosen engine (GrowthBook gbstats "
            "0.8 methods: Welch t-test, asymptotic confidence sequences, Gaussian-posterior Bayesian test). "
            "Stores nothing; any authenticated user may call it. The bayesian engine fills chance_to_win and "
            "risk and leaves p_value null. A comparison that cannot be computed (relative lift on a zero control "
            "mean, zero variance) has `error` and null numbers. Invalid input is a 400 whose "
            "`details.fields` is keyed by the field, e.g. `arms[1].n`. Defaults: engine frequentist, difference "
            "relative, alpha 0.05, correction none, equal expected weights, flat prior, sequential_tuning 5000."),
        request=s.MetricAnalysisSerializer,
        responses={
            200: s.MetricAnalysisResultSerializer,
            400: OpenApiResponse(ErrorSerializer, description=(
                "A missing or mistyped field, n < 2, sum_squares inconsistent with sum, weights not summing to 1, "
                "an unknown engine, too many arms; details.fields names the field.")),
            401: OpenApiResponse(ErrorSerializer, description="No credentials, or invalid ones."),
            403: OpenApiResponse(ErrorSerializer, description="A browser session without its CSRF token."),
            413: OpenApiResponse(ErrorSerializer, description=f"The body is over {MAX_ANALYSIS_BODY_SIZE} bytes."),
            415: OpenApiResponse(ErrorSerializer, description="The body is not JSON."),
        },
        examples=[
            OpenApiExample("Two-arm conversion test", value=EXAMPLE_REQUEST, request_only=True),
            OpenApiExample("Frequentist answer", value=EXAMPLE_RESPONSE, response_only=True, status_codes=["200"]),
            OpenApiExample("Bayesian answer", value=EXAMPLE_BAYESIAN_RESPONSE, response_only=True,
                           status_codes=["200"]),
            OpenApiExample("Inconsistent sums", value=EXAMPLE_ERROR, response_only=True, status_codes=["400"]),
        ],
    )
    def post(self, request):
        data = s.MetricAnalysisSerializer(data=request.data)
        try:
            data.is_valid(raise_exception=True)
        except ValidationError as exc:
            fields = field_errors(exc.detail)
            key, messages = next(iter(fields.items()))
            raise ValidationFailed(f"{key}: {messages[0]}", details={"fields": fields}) from exc
        return Response(services.metric_analyze(**data.validated_data))


class ABTestViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """A/B tests on the endpoints you can see. Creating and steering a test
    needs the deploy right on its endpoint; ``approve`` (production tests
    whose challengers are not in Production) needs an Approver other than the
    creator. ``results`` reads the incrementally kept per-arm statistics."""

    queryset = ABTest.objects.none()
    serializer_class = s.ABTestSerializer
    lookup_value_regex = ID_PATTERN
    filterset_fields = ["status", "endpoint__slug"]
    ordering_fields = ["created_at"]

    def get_queryset(self):
        return selectors.ab_test_list(user=self.request.user)

    def get_object(self, perm: str = "serving.view_endpoint"):
        return selectors.ab_test_get(user=self.request.user, pk=int(self.kwargs["pk"]), perm=perm)

    def _detail(self, pk: int, status_code: int = status.HTTP_200_OK) -> Response:
        return Response(s.ABTestSerializer(self.get_queryset().get(pk=pk)).data, status=status_code)

    @extend_schema(request=s.ABTestCreateSerializer, responses={201: s.ABTestSerializer},
                   summary="Create a draft A/B test on an endpoint")
    def create(self, request):
        data = s.ABTestCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        endpoint = endpoint_get(user=request.user, slug=values.pop("endpoint"))
        arms = [{"model_version": model_version_resolve(actor=request.user, model=arm.get("model"),
                                                        version=arm.get("version"),
                                                        model_version_id=arm.get("model_version_id")),
                 "weight": arm["weight"], "name": arm.get("name")} for arm in values.pop("arms")]
        test = services.ab_test_create(endpoint=endpoint, arms=arms, actor=request.user, **values)
        return self._detail(test.pk, status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=s.ABTestSerializer,
                   summary="Start the test (or ask for approval on a production endpoint)")
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        services.ab_test_start(ab_test=self.get_object(), actor=request.user)
        return self._detail(int(pk))

    @extend_schema(request=None, responses=s.ABTestSerializer, summary="Approve a production test and start it")
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        services.ab_test_approve(ab_test=self.get_object(), actor=request.user)
        return self._detail(int(pk))

    @extend_schema(request=s.ABTestStopSerializer, responses=s.ABTestSerializer,
                   summary="Stop the test: the control takes all traffic again")
    @action(detail=True, methods=["post"])
    def stop(self, request, pk=None):
        data = s.ABTestStopSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.ab_test_stop(ab_test=self.get_object(), actor=request.user, reason=data.validated_data["reason"])
        return self._detail(int(pk))

    @extend_schema(request=s.ABTestAbortSerializer, responses=s.ABTestSerializer, summary="Give the test up")
    @action(detail=True, methods=["post"])
    def abort(self, request, pk=None):
        data = s.ABTestAbortSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.ab_test_abort(ab_test=self.get_object(), actor=request.user, reason=data.validated_data["reason"])
        return self._detail(int(pk))

    @extend_schema(request=s.ABTestConcludeSerializer, responses=s.ABTestSerializer,
                   summary="Record the decision of a stopped test with its results")
    @action(detail=True, methods=["post"])
    def conclude(self, request, pk=None):
        data = s.ABTestConcludeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.ab_test_conclude(ab_test=self.get_object(), actor=request.user, **data.validated_data)
        return self._detail(int(pk))

    @extend_schema(request=s.ABTestShipSerializer, responses=s.ABTestSerializer,
                   summary="Ship the winner: a promotion request to Production, then a deployment once approved")
    @action(detail=True, methods=["post"])
    def ship(self, request, pk=None):
        data = s.ABTestShipSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.ab_test_ship(ab_test=self.get_object(), actor=request.user, **data.validated_data)
        return self._detail(int(pk))

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT,
                   summary="Per-arm numbers and comparisons with the control, for every metric")
    @action(detail=True, methods=["get"])
    def results(self, request, pk=None):
        test = self.get_object()
        if test.status == TestStatus.CONCLUDED and test.result_snapshot:
            return Response({**test.result_snapshot, "frozen": True})
        return Response({**selectors.ab_test_results(ab_test=test), "frozen": False})
