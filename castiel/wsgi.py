"""WSGI entry point (gunicorn castiel.wsgi).

Once the application is loaded (settings, apps, models, the URLconf: imported here rather than
on the first request), what it built lives as long as the process. ``gc.freeze()`` moves it
out of the garbage collector's reach, so a full collection scans only what requests left
behind instead of the whole application, and with ``--preload`` forked workers share those
pages instead of copying them as the collector touches them (the use the Python documentation
gives for it). Requests that keep objects alive for a while — spans waiting for the batch
exporter, with tracing on — trigger full collections often; each scanned the ~140,000
objects of the loaded application (docs/benchmarks.md).

The cache backends are built here too: django-redis imports redis-py on first use (with its
asyncio and observability modules), ~0.2 s of CPU that each worker's first request
would otherwise pay — under load, every worker at once. Building a backend opens no
connection.
"""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "castiel.settings")
application = get_wsgi_application()


def _freeze_loaded_application() -> None:
    from django.core.cache import caches
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports the URLconf and every view now
    caches.all()  # builds (and imports) every configured cache backend now
    gc.collect()
    gc.freeze()


_freeze_loaded_application()
