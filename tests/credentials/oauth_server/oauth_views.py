"""A protected resource plus test-only helpers (login, seeding, expiry, request counters)."""

import json
import secrets
import threading
from collections import Counter
from datetime import timedelta

from django.contrib.auth import authenticate, login
from django.contrib.auth.models import User
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.models import AccessToken, Application, RefreshToken
from oauth2_provider.oauth2_backends import get_oauthlib_core

_lock = threading.Lock()
_counts: Counter = Counter()


class TokenCounterMiddleware:
    """Counts token-endpoint requests by grant type and status (per process)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        grant = request.POST.get("grant_type", "") if request.path == "/o/token/" else ""
        response = self.get_response(request)
        if request.path == "/o/token/":
            error = ""
            if response.status_code >= 400:
                try:
                    error = json.loads(response.content).get("error", "")
                except ValueError:
                    error = "unparseable"
            with _lock:
                _counts[f"{grant}:{response.status_code}:{error}"] += 1
        return response


def me(request):
    valid, oauth_request = get_oauthlib_core().verify_request(request, scopes=[])
    if not valid:
        response = JsonResponse({"error": "invalid_token"}, status=401)
        response["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return response
    return JsonResponse(
        {"user": oauth_request.user.username, "scope": oauth_request.access_token.scope}
    )


@csrf_exempt
def login_view(request):
    if request.method == "GET":
        return HttpResponse("POST username and password", status=401)
    user = authenticate(
        request, username=request.POST.get("username"), password=request.POST.get("password")
    )
    if user is None:
        return HttpResponse("bad credentials", status=403)
    login(request, user)
    return HttpResponse("ok")


@csrf_exempt
def seed_tokens(request):
    """Create N access+refresh token pairs directly (bench and race tests)."""
    n = int(request.GET.get("n", "1"))
    expired = request.GET.get("expired") == "1"
    app = Application.objects.get(name="castiel")
    user = User.objects.get(username="alice")
    expires = timezone.now() + (timedelta(seconds=-5) if expired else timedelta(hours=1))
    out = []
    for _ in range(n):
        access = AccessToken.objects.create(
            user=user,
            application=app,
            token=secrets.token_urlsafe(30),
            expires=expires,
            scope="read",
        )
        refresh = RefreshToken.objects.create(
            user=user, application=app, token=secrets.token_urlsafe(30), access_token=access
        )
        out.append({"access_token": access.token, "refresh_token": refresh.token})
    return JsonResponse({"tokens": out})


@csrf_exempt
def expire_token(request):
    updated = AccessToken.objects.filter(token=request.POST["token"]).update(
        expires=timezone.now() - timedelta(seconds=5)
    )
    return JsonResponse({"expired": updated})


@csrf_exempt
def revoke_all(request):
    """The user withdraws consent at the provider: every token of the app goes."""
    count = 0
    for refresh in RefreshToken.objects.filter(revoked__isnull=True):
        refresh.revoke()
        count += 1
    AccessToken.objects.all().delete()
    return JsonResponse({"revoked": count})


@csrf_exempt
def stats(request):
    if request.method == "POST":
        with _lock:
            _counts.clear()
        return JsonResponse({})
    with _lock:
        return JsonResponse(dict(_counts))
