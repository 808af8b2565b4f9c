"""The form of the drift report page: two dataset versions and the dataset drift share."""

from __future__ import annotations

from django import forms

from apps.datasets.selectors import dataset_version_list
from apps.monitoring.choices import Correction


class DriftReportForm(forms.Form):
    reference_version = forms.ModelChoiceField(queryset=None, help_text="Usually the training data.")
    current_version = forms.ModelChoiceField(queryset=None, help_text="The data to check, e.g. this month's.")
    columns = forms.CharField(required=False, help_text="Comma-separated; empty tests every feature column.")
    drift_share = forms.FloatField(min_value=0.01, max_value=1, initial=0.5,
                                   help_text="Dataset drift when at least this share of columns drift.")
    correction = forms.ChoiceField(choices=Correction.choices, initial=Correction.NONE)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        versions = dataset_version_list(user=user).exclude(schema=None)
        self.fields["reference_version"].queryset = versions
        self.fields["current_version"].queryset = versions

    def clean_columns(self) -> list[str]:
        return [part.strip() for part in self.cleaned_data["columns"].split(",") if part.strip()]
