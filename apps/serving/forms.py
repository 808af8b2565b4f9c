"""Forms of the serving pages: new endpoint, deploy (with the rollout
settings of the chosen strategy), and the reason for a pause or rollback."""

from __future__ import annotations

from django import forms

from apps.core.permissions import filter_visible
from apps.registry.models import ModelVersion
from apps.registry.stages import stages_servable_in
from apps.serving.choices import Environment, FollowMode, Strategy
from apps.serving.models import Endpoint
from apps.serving.policy import STRATEGY_DEFAULTS


class EndpointForm(forms.Form):
    slug = forms.SlugField(max_length=100, help_text="Part of the predict URL, e.g. sample-qc.")
    name = forms.CharField(max_length=200, required=False)
    environment = forms.ChoiceField(choices=Environment.choices, initial=Environment.STAGING)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    max_batch_size = forms.IntegerField(min_value=1, max_value=10_000, initial=100,
                                        help_text="Most instances one request may send.")


def _steps(text: str) -> list:
    try:
        return [float(part) if "." in part else int(part) for part in text.replace(",", " ").split()]
    except ValueError:
        raise forms.ValidationError("Percentages separated by commas, e.g. 10, 25, 50, 100.")


class DeployForm(forms.Form):
    """Deploy a version. Only the settings the chosen strategy uses are sent;
    empty fields keep the strategy's defaults."""

    model_version = forms.ModelChoiceField(queryset=ModelVersion.objects.none(), label="Model version")
    strategy = forms.ChoiceField(choices=Strategy.choices, initial=Strategy.CANARY)
    steps = forms.CharField(required=False, initial="10, 25, 50, 100", help_text="Canary / rolling: % per step.")
    step_seconds = forms.FloatField(required=False, min_value=1, initial=300, label="Seconds per step")
    min_requests = forms.IntegerField(required=False, min_value=0, initial=50, label="Minimum requests per step")
    max_error_rate = forms.FloatField(required=False, min_value=0, max_value=1, initial=0.05,
                                      label="Maximum error rate")
    max_p95_ms = forms.FloatField(required=False, min_value=0.001, initial=250, label="Maximum p95 latency (ms)")
    rollback_window_s = forms.FloatField(required=False, min_value=0, initial=300,
                                         label="Blue-green rollback window (s)")

    def __init__(self, *args, endpoint: Endpoint, user, **kwargs):
        super().__init__(*args, **kwargs)
        allowed = stages_servable_in(endpoint.environment)
        visible = filter_visible(user, ModelVersion.objects.all(), "registry.view_registeredmodel",
                                 via="registered_model")
        self.fields["model_version"].queryset = (visible.filter(stage__in=allowed)
                                                 .select_related("registered_model")
                                                 .order_by("registered_model__name", "-version"))
        self.fields["model_version"].label_from_instance = (
            lambda v: f"{v.registered_model.name} v{v.version} ({v.get_stage_display()})")

    def clean_steps(self):
        text = (self.cleaned_data.get("steps") or "").strip()
        return _steps(text) if text else None

    def config(self) -> dict:
        """The deployment config for the chosen strategy (validated by the service)."""
        data = self.cleaned_data
        wanted = set(STRATEGY_DEFAULTS[data["strategy"]]) | {"min_requests", "max_error_rate", "max_p95_ms"}
        config = {}
        for key in ("steps", "step_seconds", "min_requests", "max_error_rate", "max_p95_ms", "rollback_window_s"):
            if key in wanted and data.get(key) not in (None, ""):
                config[key] = data[key]
        return config


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=2000, required=False)


class FollowForm(forms.Form):
    """How a production endpoint follows the registry, and its bake."""

    follow_mode = forms.ChoiceField(choices=FollowMode.choices, label="When a new version enters Production")
    follow_strategy = forms.ChoiceField(choices=Strategy.choices, label="Roll it out with")
    bake_minutes = forms.IntegerField(required=False, min_value=0, max_value=7 * 24 * 60, label="Bake (minutes)",
                                      help_text="Empty: the platform default.")


class PredictionLogFilterForm(forms.Form):
    """The prediction log viewer's filters (GET). Times are in the lab's time
    zone; ``until`` is exclusive."""

    version = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Model version")
    status = forms.ChoiceField(required=False, choices=[("", "Any"), ("ok", "OK"), ("error", "Error")])
    unit = forms.CharField(required=False, max_length=200, label="Unit id")
    since = forms.DateTimeField(required=False, label="From",
                                widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    until = forms.DateTimeField(required=False, label="Until",
                                widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def __init__(self, *args, versions, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["version"].choices = [("", "Any")] + [
            (v.pk, f"{v.registered_model.name} v{v.version}") for v in versions]

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] >= data["until"]:
            self.add_error("until", "Must be later than the start.")
        return data

    def filters(self):
        from apps.serving.selectors import PredictionLogFilter

        data = self.cleaned_data
        return PredictionLogFilter(model_version_id=data.get("version"), status=data.get("status") or "",
                                   unit_id=(data.get("unit") or "").strip(), since=data.get("since"),
                                   until=data.get("until"))
