from rest_framework.routers import SimpleRouter

from apps.registry.api import views

router = SimpleRouter()
router.register("models", views.RegisteredModelViewSet, basename="registry-model")
router.register(rf"models/(?P<name>{views.NAME_PATTERN})/versions", views.ModelVersionViewSet,
                basename="registry-model-version")
router.register("promotion-requests", views.PromotionRequestViewSet, basename="registry-promotion-request")
# The MLflow-style name of the same resource, kept as an alias.
router.register("transition-requests", views.TransitionRequestViewSet, basename="registry-transition-request")

urlpatterns = router.urls
