"""The analysts' calculator: one metric's settings and a row of sums per arm."""

from __future__ import annotations

from django import forms

from apps.abtests.stats import MAX_ARMS
from apps.abtests.stats.inputs import MAX_UNITS

DEFAULT_ROWS = 4


class AnalysisForm(forms.Form):
    metric_type = forms.ChoiceField(
        choices=[("proportion", "Proportion (conversions)"), ("mean", "Mean")], initial="proportion",
        label="Metric type")
    engine = forms.ChoiceField(
        choices=[("frequentist", "Frequentist (t-test)"), ("sequential", "Sequential (safe to peek)"),
                 ("bayesian", "Bayesian")], initial="frequentist")
    difference = forms.ChoiceField(choices=[("relative", "Relative lift"), ("absolute", "Absolute difference")],
                                   initial="relative")
    alpha = forms.FloatField(initial=0.05, min_value=0.0001, max_value=0.5, label="Alpha",
                             help_text="Significance level; intervals are 1 - alpha.")
    correction = forms.ChoiceField(
        choices=[("none", "None"), ("holm", "Holm"), ("bh", "Benjamini-Hochberg")], initial="none",
        help_text="Across several treatment arms; not for the Bayesian engine.")


class ArmForm(forms.Form):
    """One arm's sufficient statistics; a row left empty is no arm."""

    name = forms.CharField(max_length=100, required=False)
    n = forms.IntegerField(required=False, min_value=0, max_value=MAX_UNITS, label="Units (n)")
    sum = forms.FloatField(required=False, label="Sum")
    sum_squares = forms.FloatField(required=False, label="Sum of squares",
                                   help_text="Proportions: may stay empty (equals the sum).")

    def is_blank(self) -> bool:
        data = getattr(self, "cleaned_data", {})
        return all(data.get(key) is None for key in ("n", "sum", "sum_squares"))


def arm_formset(data=None, *, rows: int = DEFAULT_ROWS):
    """The arm rows: ``rows`` empty ones on a fresh page (the first named control), what was posted after."""
    rows = max(2, min(rows, MAX_ARMS))
    formset_class = forms.formset_factory(ArmForm, extra=rows - 1, max_num=MAX_ARMS, absolute_max=MAX_ARMS,
                                          validate_max=True)
    return formset_class(data, initial=[{"name": "control"}], prefix="arms")


# --- The tests list: a new test, and the planner ------------------------------------------------

ARM_ROWS = 6  # a multivariate test has at most six arms


def _metric_choices():
    from apps.abtests.choices import TestMetric

    return TestMetric.choices


class ABTestForm(forms.Form):
    """A new A/B test. Arm rows left empty are no arm; the first row is the
    control. Two arms make a champion/challenger test, more a multivariate one."""

    endpoint = forms.ModelChoiceField(queryset=None, to_field_name="slug")
    name = forms.CharField(max_length=200)
    hypothesis = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    primary_metric = forms.ChoiceField(choices=_metric_choices, initial="accuracy", label="Primary metric")
    secondary_metrics = forms.MultipleChoiceField(choices=_metric_choices, required=False,
                                                  widget=forms.CheckboxSelectMultiple, label="Secondary metrics")
    guardrail_metrics = forms.MultipleChoiceField(choices=_metric_choices, required=False, initial=["error_rate"],
                                                  widget=forms.CheckboxSelectMultiple, label="Guardrail metrics",
                                                  help_text="A challenger significantly worse on one stops the test.")
    minimum_detectable_effect = forms.FloatField(initial=0.02, min_value=0.0001, max_value=10,
                                                 label="Minimum detectable effect",
                                                 help_text="Relative lift, e.g. 0.02 for 2 %.")
    alpha = forms.FloatField(initial=0.05, min_value=0.0001, max_value=0.5)
    power = forms.FloatField(initial=0.8, min_value=0.5, max_value=0.999)
    engine = forms.ChoiceField(choices=[("sequential", "Sequential (safe to peek)"), ("frequentist", "Frequentist"),
                                        ("bayesian", "Bayesian")], initial="sequential")
    correction = forms.ChoiceField(choices=[("holm", "Holm-Bonferroni"), ("bh", "Benjamini-Hochberg"),
                                            ("none", "None")], initial="holm")

    def __init__(self, *args, endpoints, versions, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["endpoint"].queryset = endpoints
        self.fields["endpoint"].label_from_instance = lambda e: f"{e.slug} ({e.get_environment_display()})"
        for i in range(ARM_ROWS):
            version = forms.ModelChoiceField(queryset=versions, required=i < 2,
                                             label="Control version" if i == 0 else f"Arm {i} version")
            version.label_from_instance = lambda v: f"{v.registered_model.name} v{v.version} ({v.get_stage_display()})"
            self.fields[f"arm{i}_version"] = version
            self.fields[f"arm{i}_weight"] = forms.FloatField(required=False, min_value=0.0001, initial=50 if i < 2
                                                             else None, label="Weight")

    def arm_rows(self):
        return [(self[f"arm{i}_version"], self[f"arm{i}_weight"]) for i in range(ARM_ROWS)]

    def arms(self) -> list[dict]:
        data = self.cleaned_data
        return [{"model_version": data[f"arm{i}_version"], "weight": data.get(f"arm{i}_weight") or 1.0}
                for i in range(ARM_ROWS) if data.get(f"arm{i}_version") is not None]

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        arms = self.arms()
        return {"endpoint": data["endpoint"], "name": data["name"], "arms": arms,
                "kind": "champion_challenger" if len(arms) == 2 else "multivariate",
                "hypothesis": data["hypothesis"], "primary_metric": data["primary_metric"],
                "secondary_metrics": list(data["secondary_metrics"]),
                "guardrail_metrics": list(data["guardrail_metrics"]),
                "minimum_detectable_effect": data["minimum_detectable_effect"], "alpha": data["alpha"],
                "power": data["power"], "engine": data["engine"], "correction": data["correction"]}


class PlanForm(forms.Form):
    """The planner: units needed and days at the endpoint's current traffic."""

    endpoint = forms.ModelChoiceField(queryset=None, to_field_name="slug")
    metric = forms.ChoiceField(choices=_metric_choices, initial="accuracy")
    baseline = forms.FloatField(required=False, label="Current value",
                                help_text="A rate (0-1) or a mean; empty: an assumed rate.")
    std_dev = forms.FloatField(required=False, min_value=0, label="Standard deviation (means)")
    mde = forms.FloatField(initial=0.02, min_value=0.0001, max_value=10, label="Minimum detectable effect")
    alpha = forms.FloatField(initial=0.05, min_value=0.0001, max_value=0.5)
    power = forms.FloatField(initial=0.8, min_value=0.5, max_value=0.999)
    arms = forms.IntegerField(initial=2, min_value=2, max_value=ARM_ROWS, label="Arms (equal weights)")

    def __init__(self, *args, endpoints, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["endpoint"].queryset = endpoints


class ActionForm(forms.Form):
    reason = forms.CharField(max_length=2000, required=False)
    winner = forms.IntegerField(required=False, min_value=0, max_value=ARM_ROWS - 1)
    summary = forms.CharField(max_length=2000, required=False)
