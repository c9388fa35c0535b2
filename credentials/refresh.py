"""Token refresh: single-flight per credential across threads, processes and hosts.

``credential_refresh`` is the one way a token is renewed (on demand, by the schedule, or by
an operator):

1. a Redis lock in front when Redis is configured (waiters queue there, not in the DB);
2. the database lock, which is what guarantees correctness: a ``SELECT … FOR UPDATE`` row
   lock held for the refresh on PostgreSQL; on databases without row locks (SQLite) a lease
   taken with a conditional ``UPDATE … WHERE lease is free`` (never a long write
   transaction, which would block every writer of an SQLite file);
3. re-read the credential under the lock and skip when someone else already refreshed it;
4. call the token endpoint (transient failures retried in-process with tenacity);
5. store the new secret version **before** anything uses it, then record it on the row;
   a provider that omits the refresh token keeps the old one;
6. ``invalid_grant`` → the credential and its integration become ``reauth_required`` (syncs
   and pushes pause: ``Integration.is_operational`` turns False);
7. one ``TokenRefreshAudit`` row per call, whatever happened.
"""

from __future__ import annotations

import contextvars
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, connections, transaction
from django.utils import timezone
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from castiel import events
from castiel.http.retry import RetryPolicy
from castiel.observability.context import ensure_correlation_id
from castiel.observability.logging import get_logger
from credentials import metrics
from credentials.errors import GrantError, OAuthConfigError, RefreshBusyError
from credentials.models import Credential, CredentialStatus, TokenRefreshAudit
from credentials.oauth import integration_config_from_token
from credentials.refresh_locks import db_lock, redis_lock
from credentials.secrets import SecretStoreError
from credentials.secrets_io import read_document, write_document
from credentials.timing import needs_new_token, renew_after_for

log = get_logger(__name__)

# When the next proactive refresh is tried after a failure: a transient one (the provider or
# the network) soon, a permanent one (bad client configuration) rarely.
TRANSIENT_RETRY = RetryPolicy(base=60, cap=3600)
ERROR_RETRY = RetryPolicy(base=300, cap=6 * 3600)

Trigger = TokenRefreshAudit.Trigger
Outcome = TokenRefreshAudit.Outcome


@dataclass
class RefreshResult:
    credential: Credential
    outcome: str
    error_code: str = ""
    message: str = ""

    @property
    def refreshed(self) -> bool:
        return self.outcome == Outcome.REFRESHED


def credential_refresh(
    *,
    credential_id,
    trigger: str,
    seen_version: str | None = None,
    force: bool = False,
) -> RefreshResult:
    """Renew the credential's token if it still needs it once the lock is held.

    ``seen_version``: the secret version the caller used (after a 401). If the credential
    has moved on since, another worker refreshed it and this call only re-reads.
    ``force``: refresh even if the token looks valid (operator's "refresh now").
    """
    if _inside_caller_transaction():
        # The new tokens must be committed whatever the caller's transaction does later:
        # a rotated refresh token that is rolled back is lost for good.
        return _in_own_thread(
            credential_refresh,
            credential_id=credential_id,
            trigger=trigger,
            seen_version=seen_version,
            force=force,
        )
    correlation_id = ensure_correlation_id()
    started = time.perf_counter()
    try:
        with redis_lock(credential_id):
            with db_lock(credential_id) as credential:
                return _refresh_locked(
                    credential, trigger, seen_version, force, started, correlation_id
                )
    except RefreshBusyError as exc:
        credential = Credential.objects.get(pk=credential_id)
        _audit(credential, trigger, Outcome.TRANSIENT_ERROR, started, correlation_id, exc=exc)
        return RefreshResult(credential, Outcome.TRANSIENT_ERROR, exc.code, exc.message)
    except Credential.DoesNotExist:
        raise
    except Exception as exc:
        log.exception("credential.refresh_failed", cred=str(credential_id))
        credential = Credential.objects.filter(pk=credential_id).first()
        if credential is not None:
            _audit(
                credential,
                trigger,
                Outcome.ERROR,
                started,
                correlation_id,
                error_code=exc.__class__.__name__,
                message="unexpected error during refresh (see logs)",
            )
        raise


def _refresh_locked(credential, trigger, seen_version, force, started, correlation_id):
    skip_reason = _skip_reason(credential, trigger, seen_version, force)
    if skip_reason:
        _audit(credential, trigger, Outcome.SKIPPED, started, correlation_id, message=skip_reason)
        return RefreshResult(credential, Outcome.SKIPPED, message=skip_reason)
    attempts = 0
    try:
        secret = read_document(credential)
        for attempt in Retrying(
            stop=stop_after_attempt(settings.CASTIEL_TOKEN_REFRESH_ATTEMPTS),
            wait=_backoff,
            retry=retry_if_exception(lambda e: isinstance(e, GrantError) and e.transient),
            reraise=True,
        ):
            with attempt:
                attempts += 1
                result = credential.kind.grant(credential=credential, secret=secret)
    except GrantError as exc:
        return _record_failure(credential, trigger, exc, attempts, started, correlation_id)
    except (OAuthConfigError, SecretStoreError) as exc:
        error = GrantError(exc.__class__.__name__, str(exc), transient=False)
        return _record_failure(credential, trigger, error, attempts, started, correlation_id)

    # Store first, use after: the new version is durable before the row points at it and
    # before any caller sees the new access token.
    was_unhealthy = credential.failure_count > 0 or credential.status != CredentialStatus.ACTIVE
    document = {**secret, **result.secret}
    version = write_document(credential, document)
    now = timezone.now()
    credential.secret_version = version.version
    credential.secret_fields = sorted(document)
    credential.expires_at = result.expires_at
    credential.renew_after = renew_after_for(result.expires_at, now=now)
    if result.refresh_expires_at is not None or result.refresh_token_rotated:
        credential.refresh_expires_at = result.refresh_expires_at
    if result.scopes is not None:
        credential.scopes = result.scopes
    credential.last_refreshed_at = now
    credential.failure_count = 0
    credential.next_retry_at = None
    credential.last_error = ""
    credential.status = CredentialStatus.ACTIVE
    credential.status_reason = ""
    lease_fields = []
    lease = getattr(credential, "_refresh_lease", None)
    if lease is not None:  # release the lease in the same write (one SQLite write fewer)
        credential.refresh_lease_until = None
        credential.refresh_lease_owner = ""
        lease_fields = ["refresh_lease_until", "refresh_lease_owner"]
    # No savepoint: inside the PostgreSQL lock's transaction a failure here fails it anyway.
    with transaction.atomic(savepoint=False):
        credential.save(
            update_fields=[
                *lease_fields,
                "secret_version",
                "secret_fields",
                "expires_at",
                "renew_after",
                "refresh_expires_at",
                "scopes",
                "last_refreshed_at",
                "failure_count",
                "next_retry_at",
                "last_error",
                "status",
                "status_reason",
                "updated_at",
            ]
        )
        _audit(
            credential,
            trigger,
            Outcome.REFRESHED,
            started,
            correlation_id,
            attempts=attempts,
            message="refresh token rotated" if result.refresh_token_rotated else "",
        )
    if lease is not None:
        lease.released = True
    if was_unhealthy:
        notify(credential, events.Kind.CREDENTIAL_HEALTHY)
    integration_config_from_token(credential.integration, result)
    log.info(
        "credential.refreshed",
        cred=str(credential.pk),
        integration_id=str(credential.integration_id),
        trigger=trigger,
        version=version.version,
        rotated=result.refresh_token_rotated,
    )
    return RefreshResult(credential, Outcome.REFRESHED)


def _skip_reason(credential, trigger, seen_version, force) -> str:
    if credential.status == CredentialStatus.REVOKED:
        return "credential is revoked"
    if credential.status == CredentialStatus.REAUTH_REQUIRED:
        return "credential needs re-authorisation"
    if not credential.kind.refreshable:
        return f"{credential.type} credentials are not refreshable"
    # Whatever asks (the schedule, a worker after a 401, an operator), a deactivated tenant's
    # or a disabled integration's credential is not used to call the provider.
    if not _tenant_active(credential.tenant_id):
        return "the tenant is deactivated"
    if not credential.integration.enabled:
        return "the integration is disabled"
    if force:
        return ""
    if seen_version is not None:
        if credential.secret_version != seen_version:
            return "already refreshed by another worker"
        return ""
    if trigger == Trigger.SCHEDULE:
        if credential.next_retry_at and credential.next_retry_at > timezone.now():
            return "backing off after a failure"
        lookahead = timedelta(minutes=settings.CASTIEL_TOKEN_REFRESH_LOOKAHEAD_MINUTES)
        if not needs_new_token(credential, within=lookahead):
            return "token is not due"
        return ""
    if not needs_new_token(credential):
        return "token is still valid (refreshed by another worker)"
    return ""


def _tenant_active(tenant_id) -> bool:
    from castiel.db import raw_sql
    from castiel.tenancy.models import Tenant

    # SQL written once per process, like the lock's statements (the refresh is CPU-bound).
    tenant = raw_sql.first(
        Tenant, raw_sql.select(Tenant, "{id} = %s"), [raw_sql.param(Tenant, "id", tenant_id)]
    )
    return tenant is not None and tenant.is_active


def _record_failure(credential, trigger, exc: GrantError, attempts, started, correlation_id):
    now = timezone.now()
    credential.failure_count += 1
    credential.last_error = exc.message[:1000]
    fields = ["failure_count", "last_error", "next_retry_at", "updated_at"]
    if exc.needs_reauth:
        outcome = Outcome.REAUTH_REQUIRED
        credential.status = CredentialStatus.REAUTH_REQUIRED
        credential.status_reason = (
            f"The provider rejected the refresh ({exc.code}); connect the integration again."
        )
        credential.next_retry_at = None
        fields += ["status", "status_reason"]
    elif exc.transient:
        outcome = Outcome.TRANSIENT_ERROR
        credential.next_retry_at = now + timedelta(
            seconds=TRANSIENT_RETRY.delay(credential.failure_count, retry_after=exc.retry_after)
        )
    else:
        outcome = Outcome.ERROR
        credential.status = CredentialStatus.ERROR
        credential.status_reason = f"Token refresh failed: {exc.message}"[:1000]
        credential.next_retry_at = now + timedelta(
            seconds=ERROR_RETRY.delay(credential.failure_count)
        )
        fields += ["status", "status_reason"]
    with transaction.atomic(savepoint=False):
        credential.save(update_fields=fields)
        if outcome == Outcome.REAUTH_REQUIRED:
            pause_integration_for(credential, reason=credential.status_reason)
        _audit(
            credential,
            trigger,
            outcome,
            started,
            correlation_id,
            attempts=attempts,
            error_code=exc.code,
            message=exc.message,
        )
    if outcome == Outcome.REAUTH_REQUIRED:
        notify(credential, events.Kind.CREDENTIAL_REAUTH_REQUIRED, credential.status_reason)
    else:
        notify(
            credential,
            events.Kind.CREDENTIAL_REFRESH_FAILING,
            f"Token refresh failed ({exc.code}): {exc.message}",
            failures=credential.failure_count,
        )
    log.warning(
        "credential.refresh_failed",
        cred=str(credential.pk),
        integration_id=str(credential.integration_id),
        trigger=trigger,
        outcome=outcome,
        error_code=exc.code,
        attempts=attempts,
    )
    return RefreshResult(credential, outcome, exc.code, exc.message)


def notify(credential, kind, message: str = "", **details) -> None:
    """Raise a credential event; its subject is the integration, so a reconnect resolves it."""
    events.emit(
        kind,
        tenant=credential.tenant_id,
        integration=credential.integration_id,
        subject=events.Subject("integration", str(credential.integration_id), _label(credential)),
        message=message,
        details=details,
    )


def _label(credential) -> str:
    integration = credential._state.fields_cache.get("integration")
    return integration.name if integration is not None else str(credential.integration_id)


def pause_integration_for(credential, *, reason: str) -> None:
    """Syncs and pushes pause: the integration is no longer operational until reconnected."""
    from integrations.models import Integration

    Integration.objects.filter(pk=credential.integration_id).update(
        status=Integration.Status.REAUTH_REQUIRED,
        status_reason=f"Credential needs re-authorisation: {reason}",
        updated_at=timezone.now(),
    )


def _audit(
    credential,
    trigger,
    outcome,
    started,
    correlation_id,
    *,
    attempts=0,
    error_code="",
    message="",
    exc: GrantError | None = None,
):
    if exc is not None:
        error_code, message = exc.code, exc.message
    duration = time.perf_counter() - started
    metrics.REFRESHES.labels(credential.type, trigger, outcome).inc()
    if outcome != Outcome.SKIPPED:
        metrics.REFRESH_DURATION.labels(credential.type).observe(duration)
    TokenRefreshAudit.objects.create(
        credential=credential,
        trigger=trigger,
        outcome=outcome,
        error_code=error_code[:100],
        message=message[:1000],
        attempts=attempts,
        duration_ms=round(duration * 1000, 2),
        correlation_id=correlation_id or "",
        secret_version=credential.secret_version,
    )


def _backoff(retry_state) -> float:
    base = wait_random_exponential(
        multiplier=settings.CASTIEL_TOKEN_REFRESH_BACKOFF_SECONDS, max=8
    )(retry_state)
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    retry_after = getattr(exc, "retry_after", None) or 0
    return min(max(base, retry_after), 30)


def _inside_caller_transaction() -> bool:
    """Is the caller inside its own transaction (not just a test case's wrapper)?

    On SQLite the caller's open write transaction holds the database lock, so a second
    connection could not write anyway: there the refresh joins the caller's transaction
    (documented in docs/credentials.md).
    """
    if connection.vendor == "sqlite" or not connection.in_atomic_block:
        return False
    return not all(getattr(block, "_from_testcase", False) for block in connection.atomic_blocks)


def _in_own_thread(fn, **kwargs):
    outcome: dict = {}
    context = contextvars.copy_context()

    def target():
        try:
            outcome["value"] = context.run(fn, **kwargs)
        except BaseException as exc:  # re-raised in the caller's thread
            outcome["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=target, name="credential-refresh", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
