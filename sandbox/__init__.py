"""The sandbox: a simulated SaaS API served by Castiel itself under ``/sandbox/``.

Paginated CRUD collections with updated-at filtering, real rate-limit headers and 429 +
``Retry-After``, switchable fault injection (latency, 5xx, 429, timeouts, malformed pages)
and signed webhooks on every change. The demo and many tests sync from it. Enabled by
``CASTIEL_SANDBOX`` (on in the embedded profile, off in production).
"""
