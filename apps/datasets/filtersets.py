import django_filters

from apps.core.filtersets import IdFilter
from apps.datasets.choices import TaskHint, VersionStatus
from apps.datasets.models import Dataset, DatasetVersion


class DatasetFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(field_name="name")
    name_contains = django_filters.CharFilter(field_name="name", lookup_expr="icontains")
    task_hint = django_filters.ChoiceFilter(choices=TaskHint.choices)
    owner = django_filters.CharFilter(field_name="owner__username")

    class Meta:
        model = Dataset
        fields = ["name", "name_contains", "task_hint", "owner"]


class DatasetVersionFilter(django_filters.FilterSet):
    dataset = IdFilter(field_name="dataset_id")
    status = django_filters.ChoiceFilter(choices=VersionStatus.choices)
    sha256 = django_filters.CharFilter(field_name="sha256")

    class Meta:
        model = DatasetVersion
        fields = ["dataset", "status", "sha256"]
