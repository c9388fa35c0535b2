"""Every API error is JSON: ``{"code", "message", "details"}`` with the right HTTP status.

``code`` is stable and machine-readable (DRF's error codes: ``invalid``, ``parse_error``,
``not_authenticated``, ``authentication_failed``, ``permission_denied``, ``not_found``,
``method_not_allowed``, ``throttled``, ``server_error`` …); ``message`` is for humans;
``details`` carries field errors for validation failures.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler

from castiel.observability.logging import get_logger
from castiel.unavailable import TemporarilyUnavailable

log = get_logger(__name__)

API_PREFIX = "/api/"


class ApiError(exceptions.APIException):
    """Raise from services or views for a domain error with its own code and status."""

    def __init__(self, message: str, *, code: str, status: int = 400, details=None):
        super().__init__(detail=message, code=code)
        self.status_code = status
        self.extra_details = details or {}


def error_body(code: str, message: str, details=None) -> dict:
    return {"code": code, "message": message, "details": details or {}}


def exception_handler(exc, context):
    if isinstance(exc, RequestDataTooBig):
        return request_too_large()
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None and isinstance(exc, TemporarilyUnavailable):
        return unavailable(exc)
    if response is None:
        log.exception("api.unhandled_error", view=context.get("view").__class__.__name__)
        return JsonResponse(
            error_body("server_error", "Internal server error. The failure was logged."),
            status=500,
        )
    response.data = _body_for(exc)
    return response


def request_too_large() -> JsonResponse:
    """413 for a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (Django refuses to read it)."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return JsonResponse(
        error_body(
            "request_too_large",
            f"The request body is larger than {limit} bytes.",
            {"max_bytes": limit},
        ),
        status=413,
    )


def _body_for(exc: exceptions.APIException) -> dict:
    if isinstance(exc, ApiError):
        return error_body(exc.detail.code, str(exc.detail), exc.extra_details)
    if isinstance(exc, exceptions.ValidationError):
        details = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        return error_body("invalid", "Invalid input.", details)
    codes = exc.get_codes()
    code = codes if isinstance(codes, str) else exc.default_code
    message = exc.detail if isinstance(exc.detail, str) else str(exc.default_detail)
    details = {}
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        details = {"retry_after": int(exc.wait)}
    return error_body(code, str(message), details)


def _is_api(request) -> bool:
    return request.path.startswith(API_PREFIX)


# Exempt from CSRF like every API view (they authenticate with keys, never cookies): without
# it, a POST/PUT/PATCH/DELETE to an unknown API route got the CSRF failure page (403 HTML).
@csrf_exempt
def api_not_found(request, *args, **kwargs):
    return JsonResponse(error_body("not_found", f"No API endpoint at {request.path}."), status=404)


def handler404(request, exception=None):
    if _is_api(request):
        return api_not_found(request)
    return defaults.page_not_found(request, exception)


def handler500(request):
    if _is_api(request):
        return JsonResponse(
            error_body("server_error", "Internal server error. The failure was logged."),
            status=500,
        )
    return defaults.server_error(request)


def handler400(request, exception=None):
    if _is_api(request):
        return JsonResponse(error_body("bad_request", "Bad request."), status=400)
    return defaults.bad_request(request, exception)


def handler403(request, exception=None):
    if _is_api(request):
        return JsonResponse(error_body("permission_denied", "Forbidden."), status=403)
    return defaults.permission_denied(request, exception)


def unavailable(exc: TemporarilyUnavailable) -> JsonResponse:
    """503 + ``Retry-After`` when a dependency (e.g. the Cosmos DB record store) is unreachable
    for now: not a bug, so not a 500 — the client is told when to come back."""
    log.warning(f"api.{exc.code}", reason=str(exc.reason)[:300])
    wait = max(1, round(exc.retry_after or exc.default_retry_after))
    response = JsonResponse(
        error_body(exc.code, exc.message, {**exc.details(), "retry_after": wait}),
        status=503,
    )
    response["Retry-After"] = str(wait)
    return response
