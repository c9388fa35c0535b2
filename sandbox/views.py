"""Sandbox HTTP endpoints (plain Django views: this is a fake third-party API, not Castiel's).

Every request is counted and rate-limited, may receive an injected fault, and is logged in
``SandboxRequest``. Faults: ``429`` (with ``Retry-After``), ``500``/``503``, ``timeout``
(the answer comes after ``timeout_seconds``, later than a client should wait), ``malformed``
(a 200 whose JSON is cut in half), ``latency`` (extra delay on every answer), ``lost`` (a
write is applied, then its answer is lost: a 504 after ``timeout_seconds``).

Writes behave like a careful real API: ``Idempotency-Key`` (Stripe's semantics, see
``SandboxIdempotencyKey``), ``ETag`` on single objects and ``If-Match`` on writes (412 when
the object changed), and validation errors as 422 (a contact's ``email`` needs an ``@``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from django.db import IntegrityError, transaction
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from sandbox import services
from sandbox.faults import admit
from sandbox.models import (
    SandboxAccount,
    SandboxIdempotencyKey,
    SandboxObject,
    SandboxRequest,
)

UNSAFE = ("POST", "PATCH", "PUT", "DELETE")


def _error(status: int, message: str, headers=None) -> JsonResponse:
    response = JsonResponse({"error": message}, status=status)
    for key, value in (headers or {}).items():
        response[key] = value
    return response


def _body(request):
    try:
        return json.loads(request.body or b"{}")
    except ValueError:
        raise services.BadRequest("body is not JSON") from None


def sandbox_endpoint(handler):
    @csrf_exempt
    def view(request, account: str, *args, **kwargs):
        acct = SandboxAccount.objects.filter(slug=account).first()
        if acct is None:
            return _error(404, f"no sandbox account {account!r}")
        if acct.api_key:
            supplied = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(supplied.encode(), acct.api_key.encode()):
                return _error(401, "missing or wrong API key")
        log = SandboxRequest(
            account=acct,
            method=request.method,
            path=request.path[:500],
            query=request.META.get("QUERY_STRING", "")[:1000],
            number=0,
            status=0,
        )
        admission = admit(acct.pk, request.method)
        log.number, log.fault = (
            admission.number,
            admission.fault or ("rate_limited" if admission.limited else ""),
        )
        if request.method in UNSAFE:
            log.idempotency_key = request.headers.get("Idempotency-Key", "")[:255]
        if admission.latency:
            time.sleep(admission.latency)
        response = _respond(handler, request, acct, admission, log, *args, **kwargs)
        for key, value in admission.headers.items():
            response[key] = value
        log.status = response.status_code
        log.answered_at = timezone.now()
        log.save()
        return response

    return view


def _respond(handler, request, account, admission, log, *args, **kwargs):
    if admission.limited or admission.fault == "429":
        return _error(
            429, "rate limit exceeded", {"Retry-After": str(max(1, admission.retry_after))}
        )
    if admission.fault in ("500", "503"):
        return _error(int(admission.fault), "injected server error")
    if admission.fault == "timeout":
        time.sleep(admission.timeout_seconds)
        return _error(504, "injected timeout")
    if log.idempotency_key:
        response = _idempotent(handler, request, account, log, *args, **kwargs)
    else:
        response = _handle(handler, request, account, *args, **kwargs)
        log.applied = request.method in UNSAFE and response.status_code < 300
    if admission.fault == "lost" and request.method in UNSAFE:
        # The write happened (and its key is stored); the client never hears about it.
        time.sleep(admission.timeout_seconds)
        return _error(504, "injected timeout after the write")
    if admission.fault == "malformed" and response.status_code == 200:
        content = response.content
        return HttpResponse(content[: len(content) // 2], content_type="application/json")
    return response


def _handle(handler, request, account, *args, **kwargs):
    try:
        return handler(request, account, *args, **kwargs)
    except services.BadRequest as exc:
        return _error(400, str(exc))
    except services.Invalid as exc:
        return JsonResponse({"error": "validation failed", "fields": exc.fields}, status=422)


def _idempotent(handler, request, account, log, *args, **kwargs):
    """Run a keyed write once; answer repeats from the stored result (Stripe's semantics).

    The key row is inserted before the write, in the same transaction: a concurrent request
    with the same key waits on the unique index and then replays the committed answer. Server
    errors are not stored (the write did not complete), so a retry runs it again.
    """
    key = log.idempotency_key
    body_hash = hashlib.sha256(request.body or b"").hexdigest()
    try:
        with transaction.atomic():
            stored = SandboxIdempotencyKey.objects.create(
                account=account,
                key=key,
                method=request.method,
                path=request.path[:500],
                body_hash=body_hash,
                status=0,
            )
            response = _handle(handler, request, account, *args, **kwargs)
            if response.status_code >= 500:
                transaction.set_rollback(True)
                return response
            stored.status = response.status_code
            stored.response = response.content.decode()
            stored.save(update_fields=["status", "response"])
            log.applied = response.status_code < 300
            return response
    except IntegrityError:
        pass
    stored = SandboxIdempotencyKey.objects.get(account=account, key=key)
    if stored.method == "BATCH":
        # First used by an item of a batch request (``batch.py``): its answer, replayed.
        item = json.loads(stored.response or "{}")
        body = item.get("record") or {"error": item.get("error")}
        response = JsonResponse(body, status=item.get("status") or 200)
        log.replayed = True
        response["Idempotent-Replayed"] = "true"
        return response
    if (stored.method, stored.path, stored.body_hash) != (
        request.method,
        request.path[:500],
        body_hash,
    ):
        return JsonResponse(
            {
                "error": {
                    "type": "idempotency_error",
                    "message": "Keys for idempotent requests can only be used with the same "
                    "parameters they were first used with.",
                }
            },
            status=400,
        )
    log.replayed = True
    response = HttpResponse(stored.response, status=stored.status, content_type="application/json")
    response["Idempotent-Replayed"] = "true"
    return response


def _etag(obj: SandboxObject) -> str:
    return f'"{services.iso(obj.updated_at)}"'


def _object_response(obj: SandboxObject, status: int = 200) -> JsonResponse:
    response = JsonResponse(services.serialize(obj), status=status)
    response["ETag"] = _etag(obj)
    return response


@sandbox_endpoint
def collection(request, account, name: str):
    if request.method == "GET":
        page = services.list_objects(account=account, collection=name, params=request.GET)
        response = JsonResponse(page)
        if page["next_cursor"] or page.get("next_page"):
            query = request.GET.copy()
            if page.get("next_page"):
                query["page"] = str(page["next_page"])
            elif "offset" in query:
                query["offset"] = str(int(query["offset"]) + page["limit"])
            else:
                query["cursor"] = page["next_cursor"]
            response["Link"] = (
                f'<{request.build_absolute_uri(request.path)}?{query.urlencode()}>; rel="next"'
            )
        return response
    if request.method == "POST":
        data = _body(request)
        services.validate(name, data)
        obj = services.object_create(account=account, collection=name, data=data)
        return _object_response(obj, status=201)
    return _error(405, "method not allowed")


@sandbox_endpoint
def item(request, account, name: str, pk: int):
    obj = get_object_or_404(SandboxObject, account=account, collection=name, pk=pk)
    if request.method == "GET":
        if obj.deleted_at is not None:
            return _error(404, "deleted")
        return _object_response(obj)
    if_match = request.headers.get("If-Match")
    if if_match and obj.deleted_at is None and if_match not in ("*", _etag(obj)):
        return _error(412, "the object changed (If-Match does not match its ETag)")
    if request.method in ("PATCH", "PUT"):
        if obj.deleted_at is not None:
            return _error(404, "deleted")
        data = _body(request)
        services.validate(name, data)
        services.object_update(obj=obj, data=data, replace=request.method == "PUT")
        return _object_response(obj)
    if request.method == "DELETE":
        if obj.deleted_at is None:
            services.object_delete(obj=obj)
        return HttpResponse(status=204)
    return _error(405, "method not allowed")


@csrf_exempt
def control(request, account: str):
    """GET/PUT an account's switches (faults, rate limit, webhook target) at run time."""
    acct = SandboxAccount.objects.filter(slug=account).first()
    if request.method == "PUT" and acct is None:
        acct = services.account_create(slug=account)
    if acct is None:
        return _error(404, f"no sandbox account {account!r}")
    if acct.api_key:
        supplied = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(supplied.encode(), acct.api_key.encode()):
            return _error(401, "missing or wrong API key")
    if request.method == "PUT":
        try:
            services.account_configure(account=acct, **_body(request))
        except services.BadRequest as exc:
            return _error(400, str(exc))
    elif request.method != "GET":
        return _error(405, "method not allowed")
    return JsonResponse(
        {
            "account": acct.slug,
            "faults": acct.faults,
            "rate_limit": acct.rate_limit,
            "rate_window_seconds": acct.rate_window_seconds,
            "webhook_url": acct.webhook_url,
            "webhook_scheme": acct.webhook_scheme,
            "requests": acct.request_count,
        }
    )
