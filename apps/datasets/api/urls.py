from rest_framework.routers import SimpleRouter

from apps.datasets.api import views

router = SimpleRouter()
router.register("datasets", views.DatasetViewSet, basename="dataset")
router.register("dataset-versions", views.DatasetVersionViewSet, basename="dataset-version")

urlpatterns = router.urls
