"""Drift reports under /api/v1/drift-reports/: views parse input, call a
service or selector and shape the output."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from apps.core.schema import ID_PATTERN
from apps.monitoring import selectors, services
from apps.monitoring.api import serializers as s
from apps.monitoring.models import DriftReport


class DriftReportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Data drift reports: compare a current dataset version, or an
    endpoint's logged inputs over a window, with a reference column by
    column. Created queued; a worker computes it (poll until ``status`` is
    ``done`` or ``failed``)."""

    queryset = DriftReport.objects.none()
    serializer_class = s.DriftReportSerializer
    lookup_value_regex = ID_PATTERN

    def get_queryset(self):
        return selectors.drift_report_list(user=self.request.user)

    def get_object(self):
        return selectors.drift_report_get(user=self.request.user, pk=self.kwargs["pk"])

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        data = [selectors.drift_report_payload(report) for report in page]
        return self.get_paginated_response(s.DriftReportSerializer(data, many=True).data)

    def retrieve(self, request, pk=None):
        return Response(s.DriftReportSerializer(selectors.drift_report_payload(self.get_object())).data)

    @extend_schema(request=s.DriftReportCreateSerializer, responses={201: s.DriftReportCreatedSerializer})
    def create(self, request):
        data = s.DriftReportCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        options = {name: values[name] for name in ("columns", "drift_share", "correction", "methods", "thresholds")}
        if "endpoint" in values:
            report = services.drift_report_create_for_endpoint(
                actor=request.user, endpoint=values["endpoint"], since=values.get("since"),
                until=values.get("until"), reference_version_id=values.get("reference_version_id"), **options)
        else:
            report = services.drift_report_create(
                actor=request.user, reference_version_id=values["reference_version_id"],
                current_version_id=values["current_version_id"], **options)
        return Response({"id": report.pk, "status": report.status}, status=status.HTTP_201_CREATED)
