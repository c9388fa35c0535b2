"""Machine-facing hot paths skip the browser's middleware (``LeanPathsMiddleware``).

The webhook receiver answers providers, not browsers, and it runs at the platform's full rate.
Sessions, authentication, CSRF, messages, static files, clickjacking headers and login
lock-outs do nothing for a signed POST, yet the full ``MIDDLEWARE`` stack cost nearly twice
the CPU of the short chain below on every delivery (docs/benchmarks.md, "Session 9"). Django
has no per-URL middleware, so this middleware, first in ``MIDDLEWARE``, hands requests whose
path starts with one of ``CASTIEL_LEAN_PATH_PREFIXES`` to a second handler that runs
``CASTIEL_LEAN_MIDDLEWARE`` only (by default the correlation id and request metrics,
``SecurityMiddleware`` and ``CommonMiddleware``: what every HTTP answer needs), then resolves
and calls the view exactly as Django does. Every other request goes down the full stack
unchanged.

The lean handler is a ``BaseHandler`` whose chain is built here from its own list: Django's
``load_middleware`` reads ``settings.MIDDLEWARE`` and has no parameter for another list. Only
synchronous middleware is supported there (Castiel serves WSGI; under ASGI Django adapts this
middleware like any synchronous one).
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, MiddlewareNotUsed
from django.core.handlers.base import BaseHandler
from django.core.handlers.exception import convert_exception_to_response
from django.utils.module_loading import import_string


class _LeanHandler(BaseHandler):
    def __init__(self, middleware: list[str]):
        super().__init__()
        self._paths = list(middleware)
        self.load_middleware()

    def load_middleware(self, is_async: bool = False) -> None:
        if is_async:  # pragma: no cover - never asked for: the lean chain is synchronous
            raise ImproperlyConfigured("the lean middleware chain is synchronous only")
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler = convert_exception_to_response(self._get_response)
        for path in reversed(self._paths):
            try:
                middleware = import_string(path)(handler)
            except MiddlewareNotUsed:
                continue
            if middleware is None:
                raise ImproperlyConfigured(f"Middleware factory {path} returned None.")
            if hasattr(middleware, "process_view"):
                self._view_middleware.insert(0, middleware.process_view)
            if hasattr(middleware, "process_template_response"):
                self._template_response_middleware.append(middleware.process_template_response)
            if hasattr(middleware, "process_exception"):
                self._exception_middleware.append(middleware.process_exception)
            handler = convert_exception_to_response(middleware)
        self._lean_chain = handler

    def __call__(self, request):
        return self._lean_chain(request)


class LeanPathsMiddleware:
    """First in ``MIDDLEWARE``: see the module's docstring."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.prefixes = tuple(settings.CASTIEL_LEAN_PATH_PREFIXES)
        self.lean = _LeanHandler(settings.CASTIEL_LEAN_MIDDLEWARE) if self.prefixes else None

    def __call__(self, request):
        if self.lean is not None and request.path_info.startswith(self.prefixes):
            return self.lean(request)
        return self.get_response(request)
