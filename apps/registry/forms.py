from django import forms

from apps.registry.choices import ModelTaskType, PromotionStage


class TransitionRequestForm(forms.Form):
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
