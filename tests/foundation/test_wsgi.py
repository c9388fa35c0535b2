"""The WSGI entry point a production server loads (``gunicorn castiel.wsgi``)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.processes import REPO, process_env

PROBE = """
import gc, json, sys
import castiel.wsgi
print(json.dumps({
    "frozen": gc.get_freeze_count(),
    "urlconf_loaded": "castiel.urls" in sys.modules,
    "receiver_loaded": "webhooks.views" in sys.modules,
    "redis_cache_loaded": "django_redis.client" in sys.modules,
}))
"""


def test_the_loaded_application_is_frozen_out_of_garbage_collection(tmp_path):
    """A web worker's full collections scan only what requests left behind, not the loaded
    application: settings, apps, the whole URLconf (every view) and the cache backends (with
    Redis: django-redis and redis-py, ~0.2 s of a first request otherwise) are imported at
    load time, then frozen (castiel/wsgi.py says why)."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=REPO,
        # Building the Redis cache backend opens no connection: no server is needed here.
        env={**process_env(tmp_path), "REDIS_URL": "redis://127.0.0.1:9/0"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    assert probe["urlconf_loaded"] and probe["receiver_loaded"] and probe["redis_cache_loaded"]
    # Tens of thousands of objects: the application, not a handful left after import.
    assert probe["frozen"] > 20_000, probe
