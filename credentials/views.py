"""The OAuth2 redirect endpoint: providers send the user's browser here after consent."""

from __future__ import annotations

from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from castiel.observability.logging import get_logger
from credentials.connect import ConnectError, oauth_connect_finish

log = get_logger(__name__)


@never_cache
@require_GET
def oauth_callback(request):
    params = request.GET
    try:
        credential, state = oauth_connect_finish(
            state=params.get("state"),
            code=params.get("code"),
            error=params.get("error"),
            error_description=params.get("error_description"),
        )
    except ConnectError as exc:
        log.warning("oauth.callback_refused", code=exc.code)
        return render(
            request,
            "credentials/oauth_result.html",
            {"ok": False, "code": exc.code, "message": exc.message},
            status=exc.status,
        )
    log.info(
        "oauth.connected",
        integration_id=str(credential.integration_id),
        cred=str(credential.pk),
    )
    if state.return_url and url_has_allowed_host_and_scheme(
        state.return_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(state.return_url)
    return render(
        request,
        "credentials/oauth_result.html",
        {"ok": True, "integration": credential.integration, "credential": credential},
    )
