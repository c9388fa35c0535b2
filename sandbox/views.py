"""Sandbox HTTP endpoints (plain Django views: this is a fake third-party API, not Castiel's).

Every request is counted and rate-limited, may receive an injected fault, and is logged in
``SandboxRequest``. Faults: ``429`` (with ``Retry-After``), ``500``/``503``, ``timeout``
(the answer comes after ``timeout_seconds``, later than a client should wait), ``malformed``
(a 200 whose JSON is cut in half), ``latency`` (extra delay on every answer).
"""

from __future__ import annotations

import hmac
import json
import time

from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from sandbox import services
from sandbox.faults import admit
from sandbox.models import SandboxAccount, SandboxObject, SandboxRequest


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
        admission = admit(acct.pk)
        log.number, log.fault = (
            admission.number,
            admission.fault or ("rate_limited" if admission.limited else ""),
        )
        if admission.latency:
            time.sleep(admission.latency)
        response = _respond(handler, request, acct, admission, *args, **kwargs)
        for key, value in admission.headers.items():
            response[key] = value
        log.status = response.status_code
        log.answered_at = timezone.now()
        log.save()
        return response

    return view


def _respond(handler, request, account, admission, *args, **kwargs):
    if admission.limited or admission.fault == "429":
        return _error(
            429, "rate limit exceeded", {"Retry-After": str(max(1, admission.retry_after))}
        )
    if admission.fault in ("500", "503"):
        return _error(int(admission.fault), "injected server error")
    if admission.fault == "timeout":
        time.sleep(admission.timeout_seconds)
        return _error(504, "injected timeout")
    try:
        response = handler(request, account, *args, **kwargs)
    except services.BadRequest as exc:
        return _error(400, str(exc))
    if admission.fault == "malformed" and response.status_code == 200:
        content = response.content
        return HttpResponse(content[: len(content) // 2], content_type="application/json")
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
        obj = services.object_create(account=account, collection=name, data=_body(request))
        return JsonResponse(services.serialize(obj), status=201)
    return _error(405, "method not allowed")


@sandbox_endpoint
def item(request, account, name: str, pk: int):
    obj = get_object_or_404(SandboxObject, account=account, collection=name, pk=pk)
    if request.method == "GET":
        if obj.deleted_at is not None:
            return _error(404, "deleted")
        return JsonResponse(services.serialize(obj))
    if request.method in ("PATCH", "PUT"):
        if obj.deleted_at is not None:
            return _error(404, "deleted")
        services.object_update(obj=obj, data=_body(request), replace=request.method == "PUT")
        return JsonResponse(services.serialize(obj))
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
