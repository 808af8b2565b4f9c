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
