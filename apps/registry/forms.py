import json

from django import forms

from apps.registry.choices import ModelTaskType, PromotionStage


class PromotionRequestForm(forms.Form):
    stage = forms.ChoiceField(choices=PromotionStage.choices)
    justification = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}),
                                    help_text="Why this version should move: evidence, tickets, data.")


class ApproveForm(forms.Form):
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))
    override_reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}),
                                      help_text="Admins only, when quality gates failed: why it may go ahead.")


class RejectForm(forms.Form):
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))


class RollbackForm(forms.Form):
    reason = forms.CharField(widget=forms.TextInput(attrs={"placeholder": "Why roll back?"}))


class AliasForm(forms.Form):
    alias = forms.SlugField(max_length=50, initial="challenger")
    version = forms.IntegerField(min_value=1)


class RegisterFromRunForm(forms.Form):
    run = forms.IntegerField(label="Run id", min_value=1)
    registered_model = forms.SlugField(label="Registered model", max_length=100,
                                       help_text="An existing model, or a new name to create it.")
    task_type = forms.ChoiceField(choices=ModelTaskType.choices, required=False,
                                  help_text="Only used when the model is new.")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class GovernanceForm(forms.Form):
    """Quality gates and the holdout they are scored on; Approvers and Admins only."""

    quality_gates = forms.CharField(widget=forms.Textarea(attrs={"rows": 6}), help_text=(
        'JSON, e.g. {"metrics": [{"metric": "test_roc_auc", "op": ">=", "threshold": 0.85}], '
        '"max_regression": {"metric": "test_roc_auc", "margin": 0.02}}'))
    evaluation_dataset_version = forms.IntegerField(
        required=False, min_value=1, label="Evaluation dataset version id",
        help_text="The holdout metric gates score candidates on. Empty: the test split of the platform "
                  "training job that trained the candidate.")
    evaluation_target = forms.CharField(required=False, max_length=200,
                                        help_text="Its label column (default: the dataset's target column).")

    def clean_quality_gates(self):
        try:
            return json.loads(self.cleaned_data["quality_gates"] or "{}")
        except ValueError:
            raise forms.ValidationError("Not valid JSON.")
