from rest_framework.routers import SimpleRouter

from apps.experiments.api import views

router = SimpleRouter()
router.register("experiments", views.ExperimentViewSet, basename="experiment")
router.register("runs", views.RunViewSet, basename="run")
router.register("training-jobs", views.TrainingJobViewSet, basename="training-job")

urlpatterns = router.urls
