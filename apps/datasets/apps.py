from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "apps.datasets"
    label = "datasets"
    verbose_name = "Datasets"

    role_permissions = {
        "Viewer": ["datasets.view_dataset", "datasets.view_datasetversion"],
        "Data Scientist": [
            "datasets.add_dataset",
            "datasets.change_dataset",
            "datasets.add_datasetversion",
        ],
    }

    def ready(self):
        from apps.core import navigation

        navigation.register("Datasets", "datasets:list", order=10)
