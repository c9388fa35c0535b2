"""OpenAPI generation for the tenant API (drf-spectacular).

Every operation documents the errors it can answer, in the one shape every error has
(``{"code", "message", "details"}``, :mod:`castiel.api.errors`): 400 (invalid input or
filter, malformed JSON), 401 (missing or wrong API key) and 404 (no such object for this
tenant — another tenant's ids give 404 too —, or no such page). Operations with domain
conflicts add their 409 (and others) with :func:`error_response`. Documenting them is what
lets clients (and schemathesis) check every answer against the schema.
"""

from __future__ import annotations

from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(
        help_text="Stable, machine-readable error code (invalid, not_found, conflict …)."
    )
    message = serializers.CharField(help_text="What went wrong, for humans.")
    details = serializers.DictField(
        help_text="Field errors for `invalid` (field → list of messages); other facts "
        "(e.g. `retry_after`) for other codes; empty otherwise."
    )

    class Meta:
        ref_name = "Error"


def error_example(code: str, message: str, details=None, *, status: int | str) -> OpenApiExample:
    return OpenApiExample(
        f"{code} ({status})",
        value={"code": code, "message": message, "details": details or {}},
        response_only=True,
        status_codes=[str(status)],
    )


def error_response(description: str, *examples: OpenApiExample) -> OpenApiResponse:
    """A documented error answer (use in ``extend_schema(responses={409: …})``)."""
    return OpenApiResponse(ErrorSerializer, description=description, examples=list(examples))


STANDARD_ERRORS = {
    "400": error_response(
        "Invalid input: `details` maps each field to its errors (also for invalid filter "
        "values and malformed JSON, code `parse_error`).",
        error_example(
            "invalid",
            "Invalid input.",
            {"name": ["This field is required."]},
            status=400,
        ),
    ),
    "401": error_response(
        "Missing, malformed, wrong or revoked API key.",
        error_example("authentication_failed", "Invalid or revoked API key.", status=401),
    ),
    "404": error_response(
        "No such object for this tenant (another tenant's ids give 404 too), or no such page.",
        error_example("not_found", "Not found.", status=404),
    ),
    "429": error_response(
        "Too many failed API-key authentications from this address: retry after "
        "`Retry-After` seconds (a valid key is never refused).",
        error_example(
            "throttled",
            "Too many failed API-key authentications from this address. "
            "Expected available in 120 seconds.",
            {"retry_after": 120},
            status=429,
        ),
    ),
}


# Operations that read a body also answer 413 when it is larger than Django reads
# (``DATA_UPLOAD_MAX_MEMORY_SIZE``).
BODY_ERRORS = {
    "413": error_response(
        "The request body is larger than the server reads (`details.max_bytes`).",
        error_example(
            "request_too_large",
            "The request body is larger than 2621440 bytes.",
            {"max_bytes": 2621440},
            status=413,
        ),
    ),
}


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's schema, plus the standard error answers on every operation."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        errors = dict(STANDARD_ERRORS)
        if self.method in ("POST", "PUT", "PATCH"):
            errors.update(BODY_ERRORS)
        for code, response in errors.items():
            if code not in responses:
                responses[code] = self._get_response_for_code(response, code, direction=direction)
        return responses
