"""The one view class every MLflow route uses: MLflow's authentication and
error shape, request fields read from the JSON body (POST, PATCH, DELETE) or
the query string (GET), and no OpenAPI entry (the routes follow MLflow's own
REST specification, not the platform's /api/v1/ schema)."""

from __future__ import annotations

from collections.abc import Callable

from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.mlflow_api.authentication import AUTHENTICATION_CLASSES
from apps.mlflow_api.errors import invalid, mlflow_exception_handler


class Fields:
    """The request's fields, with MLflow's coercions: ids and times may
    come as numbers or strings (protobuf JSON writes int64 as either)."""

    def __init__(self, request):
        if request.method == "GET":
            query = request.query_params
            self.data = {key: (values if len(values) > 1 else values[0]) for key, values in query.lists()}
        else:
            data = request.data
            if not isinstance(data, dict):
                raise invalid("The request body must be a JSON object.")
            self.data = data

    def get(self, key: str, default=None):
        return self.data.get(key, default)

    def str(self, key: str, *, required: bool = False, default: str = "") -> str:
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                raise invalid(f"Missing value for required parameter '{key}'.")
            return default
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise invalid(f"Invalid value {value!r} for parameter '{key}': expected a string.")
        return str(value)

    def int(self, key: str, *, required: bool = False, default: int | None = None) -> int | None:
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                raise invalid(f"Missing value for required parameter '{key}'.")
            return default
        try:
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        except (TypeError, ValueError):
            raise invalid(f"Invalid value {value!r} for parameter '{key}': expected an integer.")

    def list(self, key: str) -> list:
        value = self.data.get(key)
        if value is None:
            return []
        if isinstance(value, list):
            return value
        return [value]


Handler = Callable[..., dict]


class MlflowEndpoint(APIView):
    """One MLflow route; ``handler(request, fields)`` returns the JSON body."""

    authentication_classes = AUTHENTICATION_CLASSES
    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser]
    schema = None
    handler: Handler | None = None

    def get_exception_handler(self):
        return mlflow_exception_handler

    def _dispatch_handler(self, request, *args, **kwargs):
        return Response(self.handler(request, Fields(request), **kwargs))

    get = post = patch = delete = _dispatch_handler


def endpoint(handler: Handler, *methods: str):
    """The view of ``handler`` answering ``methods``."""
    allowed = [m.lower() for m in methods] + ["options"]
    view_class = type(f"Mlflow_{handler.__name__}", (MlflowEndpoint,), {
        "handler": staticmethod(handler), "http_method_names": allowed,
    })
    return view_class.as_view()
