import django_filters

from apps.core.filtersets import IdFilter
from apps.experiments.choices import JobStatus, RunStatus
from apps.experiments.models import Experiment, Run, TrainingJob


class ExperimentFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(field_name="name", help_text="Exact name.")
    name_contains = django_filters.CharFilter(field_name="name", lookup_expr="icontains")

    class Meta:
        model = Experiment
        fields = ["name", "name_contains"]


class RunFilter(django_filters.FilterSet):
    experiment_id = IdFilter(field_name="experiment_id")
    status = django_filters.ChoiceFilter(choices=RunStatus.choices)
    parent_run_id = IdFilter(field_name="parent_id")
    top_level = django_filters.BooleanFilter(field_name="parent", lookup_expr="isnull",
                                             help_text="Only runs without a parent.")

    class Meta:
        model = Run
        fields = ["experiment_id", "status", "parent_run_id", "top_level"]


class TrainingJobFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=JobStatus.choices)
    experiment_id = IdFilter(field_name="run__experiment_id")
    parent_job_id = IdFilter(field_name="parent_id")
    top_level = django_filters.BooleanFilter(field_name="parent", lookup_expr="isnull")

    class Meta:
        model = TrainingJob
        fields = ["status", "experiment_id", "parent_job_id", "top_level"]
