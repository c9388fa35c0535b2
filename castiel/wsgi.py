"""WSGI entry point (gunicorn castiel.wsgi).

Once the application is loaded (settings, apps, models, the URLconf: imported here rather than
on the first request), what it built lives as long as the process. ``gc.freeze()`` moves it
out of the garbage collector's reach, so a full collection scans only what requests left
behind instead of the whole application, and with ``--preload`` forked workers share those
pages instead of copying them as the collector touches them (the use the Python documentation
gives for it). Requests that keep objects alive for a while — spans waiting for the batch
exporter, with tracing on — trigger full collections often; each scanned the ~140,000
objects of the loaded application (docs/benchmarks.md).
"""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "castiel.settings")
application = get_wsgi_application()


def _freeze_loaded_application() -> None:
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports the URLconf and every view now
    gc.collect()
    gc.freeze()


_freeze_loaded_application()
