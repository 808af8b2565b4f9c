from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.serving.api import views
from apps.serving.api.contract import document_predict_route
from apps.serving.api.predict import predict_view

document_predict_route()

router = SimpleRouter()
router.register("endpoints", views.EndpointViewSet, basename="endpoint")
router.register("deployments", views.DeploymentViewSet, basename="deployment")

urlpatterns = [
    # Before the router: the predict path is a plain view, not an action.
    path("endpoints/<slug:slug>/predict/", predict_view, name="endpoint-predict"),
    *router.urls,
]
