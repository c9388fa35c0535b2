"""Integration operations: test the connection, pause and resume.

``integration_test_connection`` makes the provider's one cheap authenticated call (the
catalogue's ``test_connection``, through the adapter and the integration's outbound client:
its credential, rate-limit gate and SSRF guard) and says in plain words what is wrong when it
fails: no or unusable credential, the provider rejecting it, a missing scope, a host that does
not resolve (a mistyped Salesforce instance URL), an address that is not the provider's API,
a rate limit. It changes nothing: the result is returned (and logged), not stored.
"""

from __future__ import annotations

import socket
import time
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from django.db import transaction
from django.utils import timezone

from castiel.http.errors import (
    AuthUnavailable,
    HttpError,
    NotSentDeferred,
    NotSentRefused,
    OutboundError,
    SsrfBlockedError,
    TransportError,
)
from castiel.observability.logging import get_logger
from integrations.adapters import errors as E
from integrations.adapters.base import AdapterConfigError, AdapterError, adapter_for
from integrations.connections import credential_problem
from integrations.models import Integration
from integrations.providers import registry
from integrations.signals import integration_resumed

log = get_logger(__name__)

# Which config key decides the host, per provider (named when the host cannot be reached).
HOST_CONFIG_KEY = {"salesforce": "instance_url", "generic_rest": "base_url", "github": "api_base"}


@dataclass(frozen=True)
class ConnectionResult:
    ok: bool
    code: str  # "ok" or a stable failure code (see docs/providers.md)
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class IntegrationStateError(Exception):
    """The integration's status does not allow the operation (e.g. resuming one that needs
    re-authorisation)."""

    code = "invalid_state"


# -- test connection -------------------------------------------------------------------------


def integration_test_connection(*, integration: Integration) -> ConnectionResult:
    """One cheap authenticated call; what it proves or what is wrong (never raises for a
    failed check)."""
    started = time.monotonic()
    result = _test(integration)
    details = {**result.details, "duration_ms": round((time.monotonic() - started) * 1000, 1)}
    result = ConnectionResult(result.ok, result.code, result.message, details)
    log.info(
        "integration.test_connection",
        integration_id=str(integration.pk),
        provider=integration.provider,
        ok=result.ok,
        code=result.code,
    )
    return result


def _fail(code: str, message: str, /, **details: Any) -> ConnectionResult:
    return ConnectionResult(False, code, message, details)


def _test(integration: Integration) -> ConnectionResult:
    try:
        provider = registry.get(integration.provider)
    except registry.UnknownProvider:
        known = ", ".join(p.slug for p in registry.all_providers())
        return _fail(
            "unknown_provider",
            f"Unknown provider {integration.provider!r} (known: {known}).",
        )
    errors = provider.validate_config(integration.config or {})
    if errors:
        listed = "; ".join(f"{key}: {message}" for key, message in sorted(errors.items()))
        return _fail("invalid_config", f"The configuration is not usable: {listed}", config=errors)
    if not provider.adapter:
        return _fail("not_supported", f"{provider.name} has no adapter to test with.")

    problem = credential_problem(integration)
    if problem is not None:
        return _fail(problem.code, problem.message, **problem.details)
    entity = _entity_for(integration, provider)
    try:
        adapter = adapter_for(integration, entity)
        check = getattr(adapter, "check_connection", None)
        details = check() if check is not None else _generic_check(adapter)
    except Exception as exc:  # every failure is a report, never an API error
        return _explain(exc, integration, provider)
    missing = details.get("missing_scopes") or []
    if missing:
        return ConnectionResult(
            False,
            E.MISSING_SCOPE,
            f"{provider.name} accepted the credential, but it lacks the scope(s) "
            f"{', '.join(missing)}: grant them and connect again.",
            details,
        )
    who = details.get("login") or details.get("user") or details.get("team") or ""
    suffix = f" as {who}" if who else ""
    return ConnectionResult(True, "ok", f"Connected to {provider.name}{suffix}.", details)


def _entity_for(integration: Integration, provider) -> str:
    if provider.entity_types:
        return provider.entity_types[0]
    entities = (integration.config or {}).get("entities") or {}
    return next(iter(entities), "records") if isinstance(entities, dict) else "records"


def _generic_check(adapter) -> dict[str, Any]:
    """Generic REST: GET the configured list path (or the base URL itself)."""
    config = adapter.integration.config or {}
    path = adapter.options["list_path"] if ("list_path" in config or config.get("entities")) else ""
    response = adapter.client.get(path)
    return {"status": response.status_code}


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _is_dns_failure(exc: BaseException) -> bool:
    for link in _chain(exc):
        if isinstance(link, socket.gaierror) or type(link).__name__ == "NameResolutionError":
            return True
        text = str(link)
        if "Name or service not known" in text or "nodename nor servname" in text:
            return True
        if "getaddrinfo failed" in text or "Temporary failure in name resolution" in text:
            return True
    return False


def _host_of(integration: Integration, provider) -> str:
    try:
        base = provider.api_base_for(integration.config or {}) or (integration.config or {}).get(
            "base_url", ""
        )
    except (KeyError, IndexError, ValueError):
        return ""
    return urlsplit(str(base)).hostname or ""


def _explain(exc: BaseException, integration: Integration, provider) -> ConnectionResult:
    name = provider.name
    key = HOST_CONFIG_KEY.get(provider.slug)
    check_key = f" Check {key!r} in the configuration." if key else ""
    for link in _chain(exc):
        if isinstance(link, AuthUnavailable):
            return _fail("credential_unavailable", str(link))
    if isinstance(exc, AdapterConfigError):
        return _fail("invalid_config", str(exc))
    if isinstance(exc, NotSentDeferred | NotSentRefused):
        wait = f" for {exc.retry_after:.0f}s" if exc.retry_after else ""
        return _fail(
            E.RATE_LIMITED,
            f"Castiel's rate limiter is holding requests to {name}{wait}; the connection was not "
            "checked. Try again later.",
            retry_after=exc.retry_after,
        )
    if isinstance(exc, SsrfBlockedError):
        return _fail("blocked_address", f"{exc}.{check_key}")
    if isinstance(exc, TransportError):
        host = _host_of(integration, provider)
        if _is_dns_failure(exc):
            return _fail(
                "host_not_found",
                f"The host {host or '(none)'} does not resolve (DNS).{check_key}",
                host=host,
            )
        if any(isinstance(link, requests.Timeout) for link in _chain(exc)):
            return _fail("timeout", f"{host or name} did not answer in time.", host=host)
        if any(isinstance(link, requests.exceptions.SSLError) for link in _chain(exc)):
            return _fail("tls_error", f"TLS with {host} failed: {exc}.", host=host)
        return _fail("connection_failed", f"Cannot connect to {host or name}: {exc}.", host=host)
    if isinstance(exc, HttpError):
        return _http_failure(exc, integration, provider, check_key)
    if isinstance(exc, AdapterError):
        # A non-JSON or foreign answer: something is listening, but it is not the API.
        return _fail(
            "unexpected_response",
            f"The address answered, but not like the {name} API: {exc}.{check_key}",
        )
    if isinstance(exc, OutboundError):
        return _fail("connection_failed", f"The call to {name} failed: {exc}.")
    log.exception("integration.test_connection_crashed", integration_id=str(integration.pk))
    return _fail("internal_error", f"The check itself failed ({type(exc).__name__}); see logs.")


def _http_failure(exc: HttpError, integration, provider, check_key: str) -> ConnectionResult:
    name = provider.name
    reason = E.reason_of(exc) or E.reason_for_status(exc.status)
    details: dict[str, Any] = {"status": getattr(exc, "http_status", None) or exc.status}
    details.update(getattr(exc, "details", None) or {})
    code = getattr(exc, "provider_code", "")
    if code:
        details["provider_code"] = code
    said = str(exc)
    if reason == E.INVALID_CREDENTIALS:
        message = f"{name} rejected the credential (wrong, expired or revoked): {said}"
    elif reason == E.MISSING_SCOPE:
        scopes = details.get("required_scopes") or []
        need = f" It needs: {', '.join(scopes)}." if scopes else ""
        message = f"The credential lacks a permission (scope) {name} requires.{need} {said}"
    elif reason == E.FORBIDDEN:
        message = f"{name} accepted the credential but refused access: {said}"
    elif reason == E.NOT_FOUND:
        message = f"{name} answered 404 for the test call: the address is wrong.{check_key} {said}"
    elif reason == E.RATE_LIMITED:
        details["retry_after"] = exc.retry_after
        message = f"{name} is rate limiting this credential; try again later. {said}"
    elif reason == E.UNAVAILABLE:
        message = f"{name} is having trouble (HTTP {exc.status}); try again later."
    else:
        message = f"{name} refused the test call: {said}"
    return _fail(reason, message.strip(), **details)


# -- pause / resume --------------------------------------------------------------------------


def integration_pause(*, integration: Integration, reason: str = "") -> Integration:
    """Stop syncs and pushes (``is_operational`` turns False; work waits, nothing is lost)."""
    status = Integration.Status
    if integration.status == status.REAUTH_REQUIRED:
        raise IntegrationStateError(
            f"{integration.name!r} is waiting for re-authorisation: connect it again first "
            "(pausing would hide that)."
        )
    text = "Paused by an operator" + (f": {reason.strip()}" if reason.strip() else "")
    Integration.objects.filter(pk=integration.pk).exclude(status=status.REAUTH_REQUIRED).update(
        status=status.PAUSED, status_reason=text, updated_at=timezone.now()
    )
    integration.refresh_from_db()
    log.info("integration.paused", integration_id=str(integration.pk))
    return integration


def integration_resume(*, integration: Integration) -> Integration:
    """Let syncs and pushes run again (from paused or error; not from re-authorisation)."""
    status = Integration.Status
    if integration.status == status.REAUTH_REQUIRED:
        raise IntegrationStateError(
            f"{integration.name!r} needs its credential connected again; resuming cannot fix "
            "that (reconnecting resumes it)."
        )
    resumed = Integration.objects.filter(
        pk=integration.pk, status__in=[status.PAUSED, status.ERROR]
    ).update(status=status.ACTIVE, status_reason="", updated_at=timezone.now())
    integration.refresh_from_db()
    if resumed:
        # Changes held while paused are due now: the push side wakes its workers after commit.
        transaction.on_commit(
            lambda: integration_resumed.send(sender=Integration, integration=integration)
        )
        log.info("integration.resumed", integration_id=str(integration.pk))
    return integration
