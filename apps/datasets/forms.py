import json

from django import forms

from apps.datasets.choices import ExpectationKind, Severity, TaskHint
from apps.datasets.expectations import COLUMN_TYPES
from apps.datasets.features import NUMERIC_IMPUTATIONS, SCALINGS


class DatasetForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    task_hint = forms.ChoiceField(choices=TaskHint.choices, initial=TaskHint.UNSPECIFIED)
    target_column = forms.CharField(max_length=200, required=False)


class DatasetEditForm(forms.Form):
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    task_hint = forms.ChoiceField(choices=TaskHint.choices)
    target_column = forms.CharField(max_length=200, required=False)
    schema_version = forms.TypedChoiceField(coerce=int, required=False, empty_value=None,
                                            label="Compare new versions with")
    schema_check_severity = forms.ChoiceField(choices=Severity.choices, label="A schema difference is an")

    def __init__(self, *args, versions=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["schema_version"].choices = [("", "the previous valid version")] + [
            (v.pk, f"v{v.version}") for v in versions]


class UploadForm(forms.Form):
    """The upload, with read options that override detection (blank: detect)."""

    file = forms.FileField(allow_empty_file=True, widget=forms.ClearableFileInput(
        attrs={"accept": ".csv,.tsv,.txt,.tab,.xlsx,.parquet,.pq"}))
    note = forms.CharField(max_length=500, required=False)
    parent = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    delimiter = forms.ChoiceField(required=False, choices=[("", "detect"), (",", ", comma"), (";", "; semicolon"),
                                                           ("tab", "tab"), ("|", "| pipe")])
    decimal = forms.ChoiceField(required=False, label="Decimal mark",
                                choices=[("", "detect"), (".", ". point"), (",", ", comma")])
    thousands = forms.ChoiceField(required=False, label="Thousands separator",
                                  choices=[("", "detect"), ("none", "none"), (".", "."), (",", ","),
                                           ("space", "space"), ("'", "'")])
    encoding = forms.CharField(required=False, max_length=40, help_text="blank: detect (e.g. utf-8, cp1252)")
    header_row = forms.IntegerField(required=False, min_value=1, max_value=100, label="Header on line")
    sheet = forms.CharField(required=False, max_length=100, label="Sheet (.xlsx)")
    column_types = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, versions=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["parent"].choices = [("", "— none —")] + [(v.pk, f"v{v.version}") for v in versions]

    def clean_column_types(self):
        raw = (self.cleaned_data.get("column_types") or "").strip()
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}")
        return value

    def read_options(self) -> dict:
        """Only the options the user set; the service checks them."""
        data = self.cleaned_data
        options = {k: data[k] for k in ("delimiter", "decimal", "thousands", "encoding", "sheet") if data.get(k)}
        if data.get("header_row"):
            options["header_row"] = data["header_row"]
        if data.get("column_types"):
            options["column_types"] = data["column_types"]
        return options


class ExpectationForm(forms.Form):
    """One expectation; the params fields that apply depend on the kind."""

    kind = forms.ChoiceField(choices=ExpectationKind.choices)
    column = forms.CharField(max_length=200, required=False)
    severity = forms.ChoiceField(choices=Severity.choices, initial=Severity.ERROR)
    column_type = forms.ChoiceField(choices=[("", "—")] + [(t, t) for t in COLUMN_TYPES], required=False)
    minimum = forms.FloatField(required=False, label="min")
    maximum = forms.FloatField(required=False, label="max")
    values = forms.CharField(required=False, help_text="Allowed categories, comma-separated.")
    max_null_share = forms.FloatField(required=False, min_value=0, max_value=1)

    def params(self) -> dict:
        data, kind = self.cleaned_data, self.cleaned_data["kind"]
        if kind == ExpectationKind.COLUMN_TYPE:
            return {"type": data.get("column_type") or ""}
        if kind in (ExpectationKind.VALUE_RANGE, ExpectationKind.ROW_COUNT):
            params = {}
            for key, field in (("min", "minimum"), ("max", "maximum")):
                if data.get(field) is not None:
                    value = data[field]
                    params[key] = int(value) if kind == ExpectationKind.ROW_COUNT or value.is_integer() else value
            return params
        if kind == ExpectationKind.ALLOWED_CATEGORIES:
            return {"values": [v.strip() for v in (data.get("values") or "").split(",") if v.strip()]}
        if kind == ExpectationKind.NOT_NULL and data.get("max_null_share") is not None:
            return {"max_null_share": data["max_null_share"]}
        return {}


class FeatureSpecForm(forms.Form):
    """The spec editor: global options and one kind per column, or raw JSON."""

    numeric_imputation = forms.ChoiceField(choices=[(v, v) for v in NUMERIC_IMPUTATIONS])
    numeric_scaling = forms.ChoiceField(choices=[(v, v) for v in SCALINGS])
    max_categories = forms.IntegerField(min_value=1, max_value=200)
    spec_json = forms.CharField(widget=forms.Textarea(attrs={"rows": 8}), required=False,
                                label="Or edit the spec as JSON (wins over the fields above)")

    def __init__(self, *args, columns=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.column_names = []
        # Kinds the columns get anyway; choosing one of them keeps the spec short.
        self.defaults = {c["name"]: c["kind"] for c in columns if c.get("source") == "default"}
        for column in columns:
            if column["kind"] == "target":
                continue
            name = f"kind__{column['name']}"
            self.fields[name] = forms.ChoiceField(
                choices=[("numeric", "numeric"), ("categorical", "categorical"), ("drop", "drop")],
                initial=column["kind"], label=column["name"], required=False)
            self.column_names.append(column["name"])

    def clean_spec_json(self):
        raw = (self.cleaned_data.get("spec_json") or "").strip()
        if not raw:
            return None
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}")
        if not isinstance(value, dict):
            raise forms.ValidationError("The spec must be a JSON object.")
        return value

    def spec(self, current: dict) -> dict:
        if self.cleaned_data.get("spec_json") is not None:
            return self.cleaned_data["spec_json"]
        columns = dict(current.get("columns", {}))
        for name in self.column_names:
            kind = self.cleaned_data.get(f"kind__{name}")
            if kind and (name in columns or kind != self.defaults.get(name)):
                columns[name] = {**columns.get(name, {}), "kind": kind}
        return {
            "numeric": {**current.get("numeric", {}), "imputation": self.cleaned_data["numeric_imputation"],
                        "scaling": self.cleaned_data["numeric_scaling"]},
            "categorical": {**current.get("categorical", {}), "imputation": "constant",
                            "max_categories": self.cleaned_data["max_categories"]},
            "columns": columns,
        }

    def column_fields(self):
        return [self[f"kind__{name}"] for name in self.column_names]
