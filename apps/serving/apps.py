from django.apps import AppConfig


class ServingConfig(AppConfig):
    name = "apps.serving"
    label = "serving"
    verbose_name = "Serving: endpoints and deployments"

    role_permissions = {
        "Viewer": [
            "serving.view_endpoint",
            "serving.view_deployment",
            "serving.view_rolloutevent",
            "serving.view_predictionlog",
            "serving.view_feedback",
            "serving.view_trafficsplit",
        ],
        # Data scientists try their models on an endpoint ("try it") and send feedback.
        "Data Scientist": ["serving.predict_endpoint"],
        "ML Engineer": [
            "serving.add_endpoint",
            "serving.change_endpoint",
            "serving.delete_endpoint",
            "serving.deploy_endpoint",
            # They reconcile the lab's ground truth (LIMS exports, backfills)
            # for every client's predictions; others label only their own.
            "serving.send_feedback_endpoint",
            "serving.add_deployment",
            "serving.change_deployment",
        ],
    }

    # With lab sharing, anyone whose role predicts (data scientists' "try it",
    # lab software's keys) may use any lab endpoint; changing and deploying
    # stay with the endpoint's owner and the people they name.
    lab_duties = ["serving.predict_endpoint", "serving.send_feedback_endpoint"]

    def ready(self):
        from apps.core import events, lineage, navigation
        from apps.serving import handlers
        from apps.serving.lineage import PROVIDER

        navigation.register("Endpoints", "serving:list", order=40)
        lineage.register(PROVIDER)
        events.subscribe("registry.model_version.stage_changed", handlers.on_model_version_stage_changed)
        events.subscribe("registry.demo.ready", handlers.on_registry_demo_ready)
        handlers.connect_worker_signals()
