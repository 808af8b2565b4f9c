from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    name = "apps.experiments"
    label = "experiments"
    verbose_name = "Experiments and training"

    role_permissions = {
        "Viewer": ["experiments.view_experiment", "experiments.view_run", "experiments.view_trainingjob"],
        "Data Scientist": [
            "experiments.add_experiment",
            "experiments.change_experiment",
            "experiments.add_run",
            "experiments.change_run",
            "experiments.add_trainingjob",
            "experiments.change_trainingjob",
        ],
    }

    def ready(self):
        from apps.core import lineage, navigation
        from apps.experiments.lineage import PROVIDER

        navigation.register("Experiments", "experiments:list", order=20)
        lineage.register(PROVIDER)
