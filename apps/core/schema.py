"""How the OpenAPI document describes the API beyond what drf-spectacular
infers: the one error shape on every 4xx an operation can answer, and ids in
paths stated as bounded integers.

Clients (the LIMS, the Python client) and the API fuzz test read the schema as
a contract, so an answer the API really gives must be in it."""

from __future__ import annotations

import re

from drf_spectacular.openapi import AutoSchema
from rest_framework import permissions, serializers

# Path ids are BigAutoField keys: 18 digits stay below 2**63 (19 may not), so
# a longer number is no route at all rather than an overflow in the database.
ID_PATTERN = r"[0-9]{1,18}"
# Version numbers are PositiveIntegerField values: 9 digits stay below 2**31.
NUMBER_PATTERN = r"[0-9]{1,9}"

_DIGITS = re.compile(r"^\^?\[0-9\]\{1,(\d+)\}\$?$")

# (path, Django route, method, DRF view) of routes served by plain views.
_SCHEMA_ONLY_ENDPOINTS: list[tuple[str, str, str, object]] = []


def schema_only_endpoint(*, path: str, route: str, method: str, view_class) -> None:
    """Document a route served by a plain Django view through ``view_class``,
    a DRF view that only carries ``extend_schema`` annotations and is never
    dispatched: the served view itself stays as lean as it is."""
    entry = (path, route, method.upper(), view_class.as_view())
    if all(existing[:3] != entry[:3] for existing in _SCHEMA_ONLY_ENDPOINTS):
        _SCHEMA_ONLY_ENDPOINTS.append(entry)


def add_schema_only_endpoints(endpoints):
    """drf-spectacular preprocessing hook: the plain views' stand-ins join the
    endpoints, replacing what the enumerator found at the same path and method."""
    extra = {(path, method) for path, _, method, _ in _SCHEMA_ONLY_ENDPOINTS}
    kept = [endpoint for endpoint in endpoints if (endpoint[0], endpoint[2]) not in extra]
    return kept + list(_SCHEMA_ONLY_ENDPOINTS)


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable, machine-readable: not_found, validation_failed, conflict, ...")
    message = serializers.CharField(help_text="For people; may change.")
    details = serializers.DictField(help_text="Which field or item was at fault, limits, and the like.")


class ErrorSerializer(serializers.Serializer):
    """The body of every 4xx (apps/core/errors.py)."""

    error = ErrorDetailSerializer()


ERROR_DESCRIPTIONS = {
    "400": "The request is invalid (validation_failed, malformed_request, ...).",
    "401": "No credentials, or invalid ones.",
    "403": "Authenticated, but without the right for this.",
    "404": "No such object, or not visible to you; also a malformed id in the path or a page past the end.",
    "409": "The object's current state does not allow this (conflict, invalid_state, duplicate_name).",
    "413": "The request body is over the size limit.",
    "415": "The body's content type is not one this operation reads, or the body cannot be read as it.",
    "429": "Too many attempts; retry later.",
}


class ApiAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema plus the error responses and integer path ids."""

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        parameters = operation.get("parameters", [])
        for parameter in parameters:
            if parameter.get("in") == "path":
                _integer_if_digits(parameter)
        responses = operation.setdefault("responses", {})
        for code in self.error_codes(operation):
            if code not in responses:
                response = self._get_response_for_code(ErrorSerializer, code)
                response["description"] = ERROR_DESCRIPTIONS[code]
                responses[code] = response
        return operation

    def error_codes(self, operation: dict) -> list[str]:
        """The 4xx answers this operation can give, from its shape: what it
        reads (path, query, body), whether it writes, and who may call it.
        A view with its own ``error_codes`` states them instead."""
        if getattr(self.view, "error_codes", None) is not None:
            return list(self.view.error_codes)
        where = {p.get("in") for p in operation.get("parameters", [])}
        has_body = "requestBody" in operation
        writes = self.method in ("POST", "PUT", "PATCH", "DELETE")
        anyone = self._allows_anyone()
        codes = []
        if has_body or "query" in where or writes:
            codes.append("400")
        codes.append("401")
        if not anyone:
            codes.append("403")
        # A write can also name other objects in its body (experiment_id, registered_model, run_id).
        if "path" in where or self._is_list_view() or (writes and not anyone):
            codes.append("404")
        if writes and not anyone:
            codes.append("409")
        if has_body:
            codes += ["413", "415"]
        return codes

    def _allows_anyone(self) -> bool:
        return all(isinstance(p, permissions.AllowAny) for p in self.view.get_permissions())


def _integer_if_digits(parameter: dict) -> None:
    schema = parameter.get("schema", {})
    match = _DIGITS.match(schema.get("pattern", ""))
    if schema.get("type") == "string" and match:
        parameter["schema"] = {"type": "integer", "minimum": 0, "maximum": 10 ** int(match.group(1)) - 1}
