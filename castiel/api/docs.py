"""The interactive API documentation: Swagger UI at /api/docs/, Redoc at /api/redoc/.

Both are served by the application (drf-spectacular-sidecar's static copies, collected with
the other static files), never from a CDN: they work offline and in networks that block
third-party hosts, and no foreign script runs next to the API key a user pastes into Swagger
UI. Swagger UI's start-up script is a separate same-site URL (``?script=``), so no inline
script is needed and the Content-Security-Policy allows the site itself only. Inline
*styles* stay allowed: Redoc styles its components at run time.
"""

from __future__ import annotations

from functools import wraps

from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def same_site_only(view):
    """Answer with the site-only Content-Security-Policy."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return response

    return wrapped


swagger_ui = same_site_only(SpectacularSwaggerSplitView.as_view(url_name="schema"))
redoc = same_site_only(
    SpectacularRedocView.as_view(url_name="schema", template_name="api/redoc.html")
)
