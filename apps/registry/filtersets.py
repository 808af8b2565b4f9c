import django_filters

from apps.registry.choices import PromotionStage, RequestStatus, Stage
from apps.registry.models import ModelVersion, PromotionRequest


class PromotionRequestFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=RequestStatus.choices)
    target_stage = django_filters.ChoiceFilter(choices=PromotionStage.choices)
    registered_model = django_filters.CharFilter(field_name="version__registered_model__name")

    class Meta:
        model = PromotionRequest
        fields = ["status", "target_stage", "registered_model"]


class ModelVersionFilter(django_filters.FilterSet):
    stage = django_filters.ChoiceFilter(choices=Stage.choices)

    class Meta:
        model = ModelVersion
        fields = ["stage", "approval_status"]
