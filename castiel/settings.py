"""Castiel settings — one module, driven by the environment.

Two profiles (``CASTIEL_PROFILE``):

* ``embedded`` (the default, nothing set): SQLite in ``CASTIEL_DATA_DIR``, django-q2's ORM
  broker, a process-local cache, DEBUG on. Runs the whole product on a laptop.
* ``production``: ``SECRET_KEY`` is required, DEBUG is off, cookies are secure, HSTS is on.
  ``DATABASE_URL`` should point at PostgreSQL and ``REDIS_URL`` at Redis (system checks warn
  otherwise).

Every variable read here is documented in README.md ("Configuration reference"). One long
module on purpose (Django's convention): every setting sits next to its default and its
reason, grouped by area.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

import environ

from castiel.config_errors import ConfigurationError

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

PROFILE = env.str("CASTIEL_PROFILE", default="embedded")
if PROFILE not in ("embedded", "production"):
    raise ConfigurationError(f"CASTIEL_PROFILE must be 'embedded' or 'production', not {PROFILE!r}")
PRODUCTION = PROFILE == "production"

DATA_DIR = Path(env.str("CASTIEL_DATA_DIR", default=str(BASE_DIR / "var")))
if not DATA_DIR.exists():
    # Owner-only: it holds the secret key, the generated Fernet keys and the SQLite file.
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATA_DIR.chmod(0o700)


def _embedded_secret_key() -> str:
    """A random key generated once per data folder, so sessions survive restarts."""
    path = DATA_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


if PRODUCTION:
    SECRET_KEY = env.str("SECRET_KEY", default="")
    if not SECRET_KEY:
        raise ConfigurationError(
            "SECRET_KEY must be set when CASTIEL_PROFILE=production "
            '(generate one: python -c "import secrets; print(secrets.token_urlsafe(50))")'
        )
else:
    SECRET_KEY = env.str("SECRET_KEY", default="") or _embedded_secret_key()

DEBUG = env.bool("DEBUG", default=not PRODUCTION)
if PRODUCTION and DEBUG:
    # DEBUG pages show settings, SQL and stack frames to anyone who triggers an error.
    raise ConfigurationError("DEBUG must be off when CASTIEL_PROFILE=production (unset DEBUG)")
ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=[] if PRODUCTION else ["127.0.0.1", "localhost", "[::1]"]
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# ---------------------------------------------------------------------------------------------
# Applications
# ---------------------------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc served by the site, not a CDN
    "django_q",
    "axes",  # admin login lockout (castiel/login.py)
    "castiel",
    "castiel.tenancy",
    "castiel.observability",
    "ratelimit",
    "integrations",
    "credentials",
    "syncing",
    "webhooks",
    "sandbox",
    "notifications",
    "console",
]

MIDDLEWARE = [
    # First: the webhook receiver's requests take the short chain below (castiel/lean_paths.py).
    "castiel.lean_paths.LeanPathsMiddleware",
    "castiel.observability.middleware.CorrelationIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: turns a locked-out login into its 429 answer.
    "axes.middleware.AxesMiddleware",
]
# Paths served for machines, not browsers, at full rate: only these middleware run for them.
CASTIEL_LEAN_PATH_PREFIXES = ["/webhooks/"]
CASTIEL_LEAN_MIDDLEWARE = [
    "castiel.observability.middleware.CorrelationIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]

ROOT_URLCONF = "castiel.urls"
WSGI_APPLICATION = "castiel.wsgi.application"
ASGI_APPLICATION = "castiel.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# ---------------------------------------------------------------------------------------------
# Database
# ---------------------------------------------------------------------------------------------
DATABASES = {
    "default": env.db_url_config(
        env.str("DATABASE_URL", default="") or f"sqlite:///{DATA_DIR / 'castiel.sqlite3'}"
    ),
}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # Web process and qcluster workers share one file: WAL lets readers run beside the
    # writer, IMMEDIATE takes the write lock at BEGIN (no lock-upgrade deadlocks) and the
    # timeout makes writers queue instead of failing with "database is locked".
    _db.setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": env.int("SQLITE_TIMEOUT", default=30),
            "init_command": "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;",
        }
    )
    # Tests that start worker subprocesses need a file, not an in-memory database.
    _db.setdefault("TEST", {})["NAME"] = str(DATA_DIR / "test_castiel.sqlite3")
    # SQLite creates its file with the umask's permissions (0644), and its WAL and
    # shared-memory files copy them: create it owner-only first (an empty file is a new
    # database to SQLite).
    if str(_db["NAME"]) not in ("", ":memory:") and not Path(_db["NAME"]).exists():
        Path(_db["NAME"]).parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(_db["NAME"], os.O_CREAT | os.O_WRONLY, 0o600))
else:
    if env.str("TEST_DATABASE_NAME", default=""):
        _db.setdefault("TEST", {})["NAME"] = env.str("TEST_DATABASE_NAME")
# Persistent connections for every engine: a new connection per request costs a TCP/auth
# handshake on PostgreSQL and the WAL/synchronous PRAGMAs on SQLite.
_db["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
_db["CONN_HEALTH_CHECKS"] = True
DB_IS_POSTGRES = _db["ENGINE"].startswith("django.db.backends.postgresql")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ---------------------------------------------------------------------------------------------
# Cache and Redis
# ---------------------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
CACHE_KEY_PREFIX = env.str("CACHE_KEY_PREFIX", default="castiel")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CACHE_KEY_PREFIX,
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "SOCKET_CONNECT_TIMEOUT": 2,
                "SOCKET_TIMEOUT": 2,
                # A cache outage must degrade features, never take the platform down.
                "IGNORE_EXCEPTIONS": True,
            },
        }
    }
    DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
else:
    # Without Redis, the database cache is shared by the web process and every worker.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "castiel_cache",
            "KEY_PREFIX": CACHE_KEY_PREFIX,
        }
    }

# ---------------------------------------------------------------------------------------------
# Workers (django-q2)
# ---------------------------------------------------------------------------------------------
# The database is the source of truth for every piece of work (sync tasks, outbox rows,
# webhook events carry their own state and leases); the broker only wakes workers up. The
# Redis broker is the fast choice for production but loses a task held by a worker that dies,
# so the reaper re-enqueues anything whose lease expired. CASTIEL_BROKER=orm selects the
# database broker instead (redelivery after `retry` seconds, slower wake-ups).
CASTIEL_BROKER = env.str("CASTIEL_BROKER", default="redis" if REDIS_URL else "orm")
if CASTIEL_BROKER not in ("redis", "orm"):
    raise ConfigurationError(f"CASTIEL_BROKER must be 'redis' or 'orm', not {CASTIEL_BROKER!r}")
if CASTIEL_BROKER == "redis" and not REDIS_URL:
    raise ConfigurationError("CASTIEL_BROKER=redis needs REDIS_URL")

# Work kinds → django-q2 cluster (queue) names. Production runs one cluster per kind so each
# scales on its own; the embedded default runs them all in one cluster.
CASTIEL_SPLIT_CLUSTERS = env.bool("CASTIEL_SPLIT_CLUSTERS", default=PRODUCTION)
WORK_KINDS = ("inbound", "outbound", "webhooks", "maintenance")
# The queue (cluster) name; several Castiel sites (or test runs) can share one Redis with
# different names.
Q_DEFAULT_CLUSTER = env.str("CASTIEL_QUEUE_NAME", default="castiel")


def _cluster_conf(workers: int, timeout: int) -> dict:
    return {"workers": workers, "timeout": timeout, "retry": timeout + 60}


_q_timeout = env.int("Q_TIMEOUT", default=600)
Q_CLUSTER = {
    "name": Q_DEFAULT_CLUSTER,
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": _q_timeout,
    "retry": env.int("Q_RETRY", default=_q_timeout + 60),
    "max_attempts": 1,  # retries are decided by Castiel from the DB state, not redelivery
    "ack_failures": True,
    "catch_up": False,
    "save_limit": env.int("Q_SAVE_LIMIT", default=500),
    "poll": 0.2,
    "label": "Worker tasks",
    "queue_limit": 100,
}
if CASTIEL_BROKER == "redis":
    Q_CLUSTER["django_redis"] = "default"
else:
    Q_CLUSTER["orm"] = "default"
# Split clusters are named after their work kind ("inbound" …), prefixed with the queue name
# when it is not the default ("site2-inbound"): the cluster name is the Redis list, so two
# sites (or test runs) sharing one Redis must not share "webhooks".
CASTIEL_CLUSTER_NAMES = {
    kind: kind if Q_DEFAULT_CLUSTER == "castiel" else f"{Q_DEFAULT_CLUSTER}-{kind}"
    for kind in WORK_KINDS
}
if CASTIEL_SPLIT_CLUSTERS:
    Q_CLUSTER["ALT_CLUSTERS"] = {
        CASTIEL_CLUSTER_NAMES["inbound"]: _cluster_conf(
            env.int("Q_INBOUND_WORKERS", default=4), _q_timeout
        ),
        CASTIEL_CLUSTER_NAMES["outbound"]: _cluster_conf(
            env.int("Q_OUTBOUND_WORKERS", default=4), 300
        ),
        CASTIEL_CLUSTER_NAMES["webhooks"]: _cluster_conf(
            env.int("Q_WEBHOOKS_WORKERS", default=4), 120
        ),
        CASTIEL_CLUSTER_NAMES["maintenance"]: _cluster_conf(
            env.int("Q_MAINTENANCE_WORKERS", default=2), 600
        ),
    }

# Worker heartbeat: every worker process records that it is alive; /healthz turns stale.
CASTIEL_HEARTBEAT_INTERVAL = env.float("CASTIEL_HEARTBEAT_INTERVAL", default=10.0)
CASTIEL_HEARTBEAT_STALE_AFTER = env.float("CASTIEL_HEARTBEAT_STALE_AFTER", default=45.0)
# Web processes push the wake-ups of work a sweeper can recover (webhook processing) together,
# this many milliseconds after the first one (castiel/wakeups.py); 0 sends each at once.
CASTIEL_WAKEUP_COALESCE_MS = env.int("CASTIEL_WAKEUP_COALESCE_MS", default=50)

# ---------------------------------------------------------------------------------------------
# Rate limiting (ratelimit/, docs/ratelimit.md)
# ---------------------------------------------------------------------------------------------
# Where the three-level counters live: "redis" (one Lua round trip, shared by every process on
# every host), "database" (rows in the main database, serialised by the transaction: correct
# across every process sharing the database, the embedded default) or "local" (this process
# only: development and the degraded fallback).
CASTIEL_RATELIMIT_BACKEND = env.str(
    "CASTIEL_RATELIMIT_BACKEND", default="redis" if REDIS_URL else "database"
)
if CASTIEL_RATELIMIT_BACKEND not in ("redis", "database", "local"):
    raise ConfigurationError(
        "CASTIEL_RATELIMIT_BACKEND must be 'redis', 'database' or 'local', "
        f"not {CASTIEL_RATELIMIT_BACKEND!r}"
    )
CASTIEL_RATELIMIT_REDIS_URL = env.str("CASTIEL_RATELIMIT_REDIS_URL", default=REDIS_URL)
if CASTIEL_RATELIMIT_BACKEND == "redis" and not CASTIEL_RATELIMIT_REDIS_URL:
    raise ConfigurationError("CASTIEL_RATELIMIT_BACKEND=redis needs REDIS_URL")
# Socket timeout for limiter calls: a hung Redis must not stall outbound work for long.
CASTIEL_RATELIMIT_REDIS_TIMEOUT = env.float("CASTIEL_RATELIMIT_REDIS_TIMEOUT", default=0.5)
# While Redis is unreachable each process limits alone to limit / this many processes, and
# tries Redis again every CASTIEL_RATELIMIT_REDIS_RETRY_SECONDS.
CASTIEL_RATELIMIT_EXPECTED_PROCESSES = env.int("CASTIEL_RATELIMIT_EXPECTED_PROCESSES", default=4)
CASTIEL_RATELIMIT_REDIS_RETRY_SECONDS = env.float(
    "CASTIEL_RATELIMIT_REDIS_RETRY_SECONDS", default=5.0
)
# Sub-buckets per window: memory per counter and the worst-case throughput loss (1/(N+1)).
CASTIEL_RATELIMIT_BUCKETS = env.int("CASTIEL_RATELIMIT_BUCKETS", default=30)
# Level defaults (the integration level comes from the provider catalogue).
CASTIEL_RATELIMIT_TENANT_LIMIT = env.int("CASTIEL_RATELIMIT_TENANT_LIMIT", default=5000)
CASTIEL_RATELIMIT_TENANT_WINDOW = env.float("CASTIEL_RATELIMIT_TENANT_WINDOW", default=60.0)
CASTIEL_RATELIMIT_OPERATION_LIMITS = {
    "fetch": env.int("CASTIEL_RATELIMIT_FETCH_PER_MINUTE", default=200),
    "create": env.int("CASTIEL_RATELIMIT_CREATE_PER_MINUTE", default=100),
    "update": env.int("CASTIEL_RATELIMIT_UPDATE_PER_MINUTE", default=150),
    "delete": env.int("CASTIEL_RATELIMIT_DELETE_PER_MINUTE", default=60),
}
# Operations refused (never waited for) while throttled.
CASTIEL_RATELIMIT_RISKY_OPERATIONS = env.list(
    "CASTIEL_RATELIMIT_RISKY_OPERATIONS", default=["delete"]
)
# Safe operations sleep in-process up to this long; longer waits are re-scheduled.
CASTIEL_RATELIMIT_MAX_INPROCESS_WAIT = env.float(
    "CASTIEL_RATELIMIT_MAX_INPROCESS_WAIT", default=5.0
)
# Resolved policies (defaults + overrides) are cached per process for this long.
CASTIEL_RATELIMIT_POLICY_CACHE_SECONDS = env.float(
    "CASTIEL_RATELIMIT_POLICY_CACHE_SECONDS", default=10.0
)
# Adaptive state (multiplier, block) is forgotten after this long without provider feedback.
CASTIEL_RATELIMIT_ADAPTIVE_TTL = env.float("CASTIEL_RATELIMIT_ADAPTIVE_TTL", default=900.0)
# Block length when a provider reports an exhausted quota without saying when it resets.
CASTIEL_RATELIMIT_UNKNOWN_RESET_BLOCK = env.float(
    "CASTIEL_RATELIMIT_UNKNOWN_RESET_BLOCK", default=60.0
)

# ---------------------------------------------------------------------------------------------
# REST API
# ---------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["castiel.tenancy.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["castiel.tenancy.permissions.IsTenant"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["castiel.api.parsers.StorableJSONParser"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "castiel.api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "castiel.api.schema.AutoSchema",  # + standard error answers
    "EXCEPTION_HANDLER": "castiel.api.errors.exception_handler",
    "DEFAULT_VERSIONING_CLASS": "rest_framework.versioning.URLPathVersioning",
    "ALLOWED_VERSIONS": ["v1"],
    "DEFAULT_VERSION": "v1",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Castiel API",
    "DESCRIPTION": (
        "Tenant API of Castiel, the open-source integration platform. Authenticate with "
        "`Authorization: Bearer <api key>`; every object is scoped to the key's tenant."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v[0-9]+",
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    # No deep links: Swagger UI wraps each operation's path link in the operation's toggle
    # button, a control inside a control (axe-core's nested-interactive).
    "SWAGGER_UI_SETTINGS": {"deepLinking": False},
    "ENUM_NAME_OVERRIDES": {},
    # Swagger UI and Redoc from the application's static files (castiel/api/docs.py).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# ---------------------------------------------------------------------------------------------
# Outbound HTTP
# ---------------------------------------------------------------------------------------------
# Outbound calls reach only globally routable addresses (SSRF guard, castiel/http/ssrf.py)
# and the networks listed here. The embedded default allows loopback so the built-in sandbox
# and local test servers are reachable.
CASTIEL_OUTBOUND_ALLOWED_NETWORKS = env.list(
    "CASTIEL_OUTBOUND_ALLOWED_NETWORKS",
    default=[] if PRODUCTION else ["127.0.0.0/8", "::1/128"],
)
CASTIEL_OUTBOUND_TIMEOUT = env.float("CASTIEL_OUTBOUND_TIMEOUT", default=30.0)
CASTIEL_OUTBOUND_CONNECT_TIMEOUT = env.float("CASTIEL_OUTBOUND_CONNECT_TIMEOUT", default=5.0)

# ---------------------------------------------------------------------------------------------
# Secrets
# ---------------------------------------------------------------------------------------------
# Where credential values and signing secrets live: "db" (Fernet-encrypted rows; keys from
# CASTIEL_SECRET_KEYS, newest first — generated into the data folder in the embedded
# profile) or "azure_keyvault" (AZURE_KEYVAULT_URL, AZURE_KEYVAULT_CREDENTIAL).
CASTIEL_SECRET_STORE = env.str("CASTIEL_SECRET_STORE", default="db")
CASTIEL_SECRET_KEYS = env.list("CASTIEL_SECRET_KEYS", default=[])
AZURE_KEYVAULT_URL = env.str("AZURE_KEYVAULT_URL", default="")

# ---------------------------------------------------------------------------------------------
# Credentials: OAuth2 connect and token refresh (credentials app, docs/credentials.md)
# ---------------------------------------------------------------------------------------------
# Public base URL of this site (e.g. https://castiel.example.com): OAuth2 redirect URIs are
# built from it. Empty: from the request that starts the connection.
CASTIEL_PUBLIC_URL = env.str("CASTIEL_PUBLIC_URL", default="")
# How long an OAuth2 authorization may take between "connect" and the provider's redirect.
CASTIEL_OAUTH_STATE_TTL_SECONDS = env.int("CASTIEL_OAUTH_STATE_TTL_SECONDS", default=600)
# Proactive refresh: a maintenance schedule every INTERVAL minutes refreshes tokens expiring
# within LOOKAHEAD minutes. LOOKAHEAD must be longer than INTERVAL (system check
# credentials.E001), or a token can expire between two runs.
CASTIEL_TOKEN_REFRESH_INTERVAL_MINUTES = env.int(
    "CASTIEL_TOKEN_REFRESH_INTERVAL_MINUTES", default=10
)
CASTIEL_TOKEN_REFRESH_LOOKAHEAD_MINUTES = env.int(
    "CASTIEL_TOKEN_REFRESH_LOOKAHEAD_MINUTES", default=60
)
# Refreshes run in parallel by the maintenance job, and at most BATCH credentials per run.
CASTIEL_TOKEN_REFRESH_CONCURRENCY = env.int("CASTIEL_TOKEN_REFRESH_CONCURRENCY", default=4)
CASTIEL_TOKEN_REFRESH_BATCH = env.int("CASTIEL_TOKEN_REFRESH_BATCH", default=5000)
# On demand, a token expiring within this many seconds is refreshed before it is sent.
CASTIEL_TOKEN_REFRESH_LEEWAY_SECONDS = env.int("CASTIEL_TOKEN_REFRESH_LEEWAY_SECONDS", default=60)
# In-process attempts for transient token-endpoint failures (network, 5xx, 429) and the
# base of their exponential backoff with jitter; later retries follow next_retry_at.
CASTIEL_TOKEN_REFRESH_ATTEMPTS = env.int("CASTIEL_TOKEN_REFRESH_ATTEMPTS", default=3)
CASTIEL_TOKEN_REFRESH_BACKOFF_SECONDS = env.float(
    "CASTIEL_TOKEN_REFRESH_BACKOFF_SECONDS", default=0.5
)
# Longest wait for (and hold of) the per-credential refresh lock.
CASTIEL_TOKEN_REFRESH_LOCK_SECONDS = env.int("CASTIEL_TOKEN_REFRESH_LOCK_SECONDS", default=60)
# Credentials that cannot renew themselves (API keys, certificates, refresh tokens with an
# end date) turn "expiring" this many days before they expire.
CASTIEL_CREDENTIAL_EXPIRY_WARNING_DAYS = env.int(
    "CASTIEL_CREDENTIAL_EXPIRY_WARNING_DAYS", default=14
)
# Azure Key Vault store (CASTIEL_SECRET_STORE=azure_keyvault): an optional name prefix so
# several sites can share one vault, and what to do with a soft-deleted name that is written
# again: "purge" it (falls back to "recover" when purge protection forbids it) or "recover".
AZURE_KEYVAULT_SECRET_PREFIX = env.str("AZURE_KEYVAULT_SECRET_PREFIX", default="")
AZURE_KEYVAULT_DELETED_NAMES = env.str("AZURE_KEYVAULT_DELETED_NAMES", default="purge")
if AZURE_KEYVAULT_DELETED_NAMES not in ("purge", "recover"):
    raise ConfigurationError("AZURE_KEYVAULT_DELETED_NAMES must be 'purge' or 'recover'")
# Which azure-identity credential opens the vault: "default" (DefaultAzureCredential's chain),
# or one pinned so a production host never probes the others: "environment" (service
# principal from AZURE_TENANT_ID / AZURE_CLIENT_ID / AZURE_CLIENT_SECRET or
# AZURE_CLIENT_CERTIFICATE_PATH), "managed_identity" (user-assigned when AZURE_CLIENT_ID is
# set), "workload_identity" (AKS: AZURE_FEDERATED_TOKEN_FILE …) or "azure_cli".
_keyvault_credentials = (
    "default",
    "environment",
    "managed_identity",
    "workload_identity",
    "azure_cli",
)
AZURE_KEYVAULT_CREDENTIAL = env.str("AZURE_KEYVAULT_CREDENTIAL", default="default")
if AZURE_KEYVAULT_CREDENTIAL not in _keyvault_credentials:
    raise ConfigurationError(
        f"AZURE_KEYVAULT_CREDENTIAL must be one of {', '.join(_keyvault_credentials)}, "
        f"not {AZURE_KEYVAULT_CREDENTIAL!r}"
    )

# ---------------------------------------------------------------------------------------------
# Observability
# ---------------------------------------------------------------------------------------------
# Metrics are shared by every web and worker process through prometheus_client's multiprocess
# mode; the folder must exist before prometheus_client is imported (settings load first).
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default=str(DATA_DIR / "metrics"))
os.environ["PROMETHEUS_MULTIPROC_DIR"] = PROMETHEUS_MULTIPROC_DIR
Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)

# When set, GET /metrics requires "Authorization: Bearer <token>".
CASTIEL_METRICS_TOKEN = env.str("CASTIEL_METRICS_TOKEN", default="")

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("LOG_FORMAT", default="json")  # json | console
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "structured": {
            "()": "castiel.observability.logging.formatter_factory",
            "fmt": LOG_FORMAT,
        },
    },
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "formatter": "structured"},
    },
    "root": {"handlers": ["stderr"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # urllib3 logs whole request lines, query strings included, at DEBUG: a query-string
        # API key would end up in the logs (credentials; see tests/credentials).
        "urllib3": {"level": "INFO"},
        # The Azure SDKs log every request and its headers at INFO (most of the log with
        # Cosmos DB); their warnings and errors still show.
        "azure": {"level": env.str("CASTIEL_AZURE_LOG_LEVEL", default="WARNING")},
        # django-q2 logs every enqueue and every task at INFO; Castiel's own task wrapper
        # already logs each run with its correlation and execution ids.
        "django-q": {
            "handlers": ["stderr"],
            "level": env.str("Q_LOG_LEVEL", default="WARNING"),
            "propagate": False,
        },
    },
}

# ---------------------------------------------------------------------------------------------
# Traces and scaling signals (castiel/observability/tracing.py, scaling.py; docs/telemetry.md)
# ---------------------------------------------------------------------------------------------
# Traces are off (and cost nothing) unless an exporter is configured. OTLP/HTTP (protobuf) is
# on when OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set; the
# exporter, the batch processor, the sampler and the resource read the other standard OTEL_*
# variables themselves (_HEADERS, _TIMEOUT, OTEL_BSP_*, OTEL_TRACES_SAMPLER,
# OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES). APPLICATIONINSIGHTS_CONNECTION_STRING turns on
# Azure Monitor through Microsoft's distro (traces, and logs correlated to them); both may be
# on at once. OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none turns tracing off.
_otel_off = env.bool("OTEL_SDK_DISABLED", default=False) or (
    env.str("OTEL_TRACES_EXPORTER", default="otlp").strip().lower() == "none"
)
APPLICATIONINSIGHTS_CONNECTION_STRING = env.str("APPLICATIONINSIGHTS_CONNECTION_STRING", default="")
CASTIEL_TRACING_EXPORTERS = []
if not _otel_off and (
    env.str("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", default="")
    or env.str("OTEL_EXPORTER_OTLP_ENDPOINT", default="")
):
    CASTIEL_TRACING_EXPORTERS.append("otlp")
if not _otel_off and APPLICATIONINSIGHTS_CONNECTION_STRING:
    CASTIEL_TRACING_EXPORTERS.append("azure_monitor")
# The OTLP exporter's encoder: Castiel's (the same bytes as the library's for less CPU;
# castiel/observability/otlp.py, docs/benchmarks.md) or the library's own ('library').
CASTIEL_OTLP_ENCODER = env.str("CASTIEL_OTLP_ENCODER", default="castiel")
if CASTIEL_OTLP_ENCODER not in ("castiel", "library"):
    raise ConfigurationError(
        f"CASTIEL_OTLP_ENCODER must be 'castiel' or 'library', not {CASTIEL_OTLP_ENCODER!r}"
    )
# Paths never traced (load balancers' and Prometheus' polls), and instrumentations left out
# (any of django, requests, psycopg).
CASTIEL_TRACING_EXCLUDED_URLS = env.str(
    "OTEL_PYTHON_DJANGO_EXCLUDED_URLS", default="healthz,metrics,static/"
)
CASTIEL_TRACING_DISABLED_INSTRUMENTATIONS = env.list(
    "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", default=[]
)
# Scaling signals per work kind (castiel_scaling_* metrics, deploy/ examples): the bounds of
# each kind's instance count (the original design: scheduler fixed at one, inbound 1-10,
# outbound 1-50, webhooks 1-200), the waiting work one instance is expected to absorb, and the
# age of the oldest waiting work past which one more instance than are alive is recommended.
# CASTIEL_SCALING (JSON) overrides any of them: '{"inbound": {"max": 20}}'.
CASTIEL_SCALING = {
    "inbound": {"min": 1, "max": 10, "per_instance": 5, "max_age_seconds": 300},
    "outbound": {"min": 1, "max": 50, "per_instance": 100, "max_age_seconds": 120},
    "webhooks": {"min": 1, "max": 200, "per_instance": 50, "max_age_seconds": 60},
    "maintenance": {"min": 1, "max": 1, "per_instance": 1, "max_age_seconds": 0},
}
for _kind, _overrides in env.json("CASTIEL_SCALING", default={}).items():
    if _kind not in CASTIEL_SCALING or _kind == "maintenance":
        raise ConfigurationError(
            f"CASTIEL_SCALING: {_kind!r} is not a work kind that scales (inbound, outbound, "
            "webhooks)"
        )
    CASTIEL_SCALING[_kind] = {**CASTIEL_SCALING[_kind], **_overrides}

# ---------------------------------------------------------------------------------------------
# Auth, i18n, static
# ---------------------------------------------------------------------------------------------
# Admin login lockout (django-axes, castiel/login.py): after this many failed logins from one
# client address it is locked out (429) for the cool-off; a success resets the count. Locked
# addresses are listed (and released) in the admin under Axes → Access attempts.
AUTHENTICATION_BACKENDS = [
    "castiel.login.LoginLockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("CASTIEL_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("CASTIEL_LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
AXES_VERBOSE = False
# Failed API-key authentications per client address: past LIMIT within a WINDOW (seconds)
# the address gets 429 + Retry-After for failures until the window ends. Successes are not
# counted and a valid key is never refused (castiel/tenancy/authentication.py).
CASTIEL_API_AUTH_FAILURE_LIMIT = env.int("CASTIEL_API_AUTH_FAILURE_LIMIT", default=20)
CASTIEL_API_AUTH_FAILURE_WINDOW = env.int("CASTIEL_API_AUTH_FAILURE_WINDOW", default=300)
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = env.str("STATIC_ROOT", default=str(DATA_DIR / "static"))
Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)
# gunicorn does not serve files: whitenoise serves the admin's static files (run
# `manage.py collectstatic` at deploy time); compressed, cache-busting names in production.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# ---------------------------------------------------------------------------------------------
# Production hardening
# ---------------------------------------------------------------------------------------------
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_REFERRER_POLICY = "same-origin"
    X_FRAME_OPTIONS = "DENY"
    SILENCED_SYSTEM_CHECKS = env.list(
        "SILENCED_SYSTEM_CHECKS", default=[] if SECURE_HSTS_PRELOAD else ["security.W021"]
    )

# ---------------------------------------------------------------------------------------------
# Webhooks (webhooks/ — receiver, processing, audit; see docs/webhooks.md)
# ---------------------------------------------------------------------------------------------
# Largest request body the receiver reads; bigger deliveries are answered 413 without being
# read. GitHub caps payloads at 25 MB but real events are a few kB; raise it if a provider
# sends more.
CASTIEL_WEBHOOK_MAX_BODY_BYTES = env.int("CASTIEL_WEBHOOK_MAX_BODY_BYTES", default=1024 * 1024)
# Registration lookups are cached (Redis in production) for this long; changes invalidate.
CASTIEL_WEBHOOK_REGISTRATION_CACHE_SECONDS = env.int(
    "CASTIEL_WEBHOOK_REGISTRATION_CACHE_SECONDS", default=300
)
# …and kept in each web process for this long (saves a Redis round trip per delivery; a
# change reaches other processes within this time). 0 disables the per-process copy.
CASTIEL_WEBHOOK_LOCAL_CACHE_SECONDS = env.float("CASTIEL_WEBHOOK_LOCAL_CACHE_SECONDS", default=2.0)
# Default per-registration and per-tenant receive limits (requests per minute; 0 = no limit).
# A registration may set its own limit.
CASTIEL_WEBHOOK_RATE_LIMIT_PER_MINUTE = env.int(
    "CASTIEL_WEBHOOK_RATE_LIMIT_PER_MINUTE", default=6000
)
CASTIEL_WEBHOOK_TENANT_RATE_LIMIT_PER_MINUTE = env.int(
    "CASTIEL_WEBHOOK_TENANT_RATE_LIMIT_PER_MINUTE", default=30000
)
# Rejected and duplicate deliveries are audited up to this many per registration and minute;
# beyond it they are only counted in metrics, so a flood of forgeries cannot fill the table.
CASTIEL_WEBHOOK_NOISE_AUDIT_PER_MINUTE = env.int(
    "CASTIEL_WEBHOOK_NOISE_AUDIT_PER_MINUTE", default=120
)
# How long the previous signing secret stays valid after a rotation, unless the rotation
# names its own overlap.
CASTIEL_WEBHOOK_SECRET_OVERLAP_SECONDS = env.int(
    "CASTIEL_WEBHOOK_SECRET_OVERLAP_SECONDS", default=24 * 3600
)
# Processing: attempts before an event is marked failed (dead), and the backoff cap.
CASTIEL_WEBHOOK_MAX_ATTEMPTS = env.int("CASTIEL_WEBHOOK_MAX_ATTEMPTS", default=8)
CASTIEL_WEBHOOK_RETRY_BASE_SECONDS = env.float("CASTIEL_WEBHOOK_RETRY_BASE_SECONDS", default=30.0)
CASTIEL_WEBHOOK_RETRY_CAP_SECONDS = env.float("CASTIEL_WEBHOOK_RETRY_CAP_SECONDS", default=3600.0)
# A worker's claim on an event expires after this long (a crashed worker's event is retried).
CASTIEL_WEBHOOK_LEASE_SECONDS = env.int("CASTIEL_WEBHOOK_LEASE_SECONDS", default=300)
# Audit retention: events older than this are deleted by a maintenance schedule.
CASTIEL_WEBHOOK_RETENTION_DAYS = env.int("CASTIEL_WEBHOOK_RETENTION_DAYS", default=30)
# Public base URL the providers call (https://castiel.example.com). Needed by schemes that
# sign the URL (Twilio, HubSpot v3) when Castiel runs behind a proxy that rewrites it; empty
# means "the URL of the request as Django sees it".
CASTIEL_WEBHOOK_PUBLIC_BASE_URL = env.str("CASTIEL_WEBHOOK_PUBLIC_BASE_URL", default="")

# ---------------------------------------------------------------------------------------------
# Sync engine (syncing/, docs/sync.md)
# ---------------------------------------------------------------------------------------------
# Where synced records live: "orm" (the Record table) or "cosmos" (Azure Cosmos DB, one
# container partitioned by tenant).
CASTIEL_RECORD_STORE = env.str("CASTIEL_RECORD_STORE", default="orm")
if CASTIEL_RECORD_STORE not in ("orm", "cosmos"):
    raise ConfigurationError(
        f"CASTIEL_RECORD_STORE must be 'orm' or 'cosmos', not {CASTIEL_RECORD_STORE!r}"
    )
CASTIEL_COSMOS_ENDPOINT = env.str("CASTIEL_COSMOS_ENDPOINT", default="")
CASTIEL_COSMOS_KEY = env.str("CASTIEL_COSMOS_KEY", default="")
CASTIEL_COSMOS_DATABASE = env.str("CASTIEL_COSMOS_DATABASE", default="castiel")
CASTIEL_COSMOS_CONTAINER = env.str("CASTIEL_COSMOS_CONTAINER", default="records")
# Per-request connect and read timeout (seconds): past it (or on a refused connection, a 503)
# the store is "unavailable" — API 503, sync retried with backoff (docs/cosmos.md).
CASTIEL_COSMOS_TIMEOUT_SECONDS = env.float("CASTIEL_COSMOS_TIMEOUT_SECONDS", default=5.0)
# The SDK asks the account for its regional endpoints and then talks to those. Off for an
# emulator or a private endpoint reached through a port mapping or proxy, whose advertised
# endpoint is not the one Castiel can reach.
CASTIEL_COSMOS_ENDPOINT_DISCOVERY = env.bool("CASTIEL_COSMOS_ENDPOINT_DISCOVERY", default=True)
if CASTIEL_RECORD_STORE == "cosmos" and not (CASTIEL_COSMOS_ENDPOINT and CASTIEL_COSMOS_KEY):
    raise ConfigurationError(
        "CASTIEL_RECORD_STORE=cosmos needs CASTIEL_COSMOS_ENDPOINT and CASTIEL_COSMOS_KEY"
    )
# Scheduler: tasks claimed per transaction, and at most this many batches per tick.
CASTIEL_SYNC_BATCH_SIZE = env.int("CASTIEL_SYNC_BATCH_SIZE", default=100)
CASTIEL_SYNC_TICK_MAX_BATCHES = env.int("CASTIEL_SYNC_TICK_MAX_BATCHES", default=500)
# Wake-ups sent per claimed batch: up to this many workers start on a batch at once, each
# draining the batch's still-queued tasks from the database (so idle workers help finish it).
CASTIEL_SYNC_WAKEUPS_PER_BATCH = env.int("CASTIEL_SYNC_WAKEUPS_PER_BATCH", default=10)
# Leases: a running task's lease (renewed before every request and at every page) and how
# long a claimed task may wait in the queue before the reaper assumes its message was lost.
CASTIEL_SYNC_LEASE_SECONDS = env.int("CASTIEL_SYNC_LEASE_SECONDS", default=300)
CASTIEL_SYNC_QUEUE_LEASE_SECONDS = env.int("CASTIEL_SYNC_QUEUE_LEASE_SECONDS", default=900)
# Retries of a page fetch (timeouts, 429, 5xx, malformed pages): full-jitter backoff that
# never undercuts Retry-After; waits longer than MAX_INLINE_WAIT release the task instead.
CASTIEL_SYNC_MAX_RETRIES = env.int("CASTIEL_SYNC_MAX_RETRIES", default=5)
CASTIEL_SYNC_RETRY_BASE_SECONDS = env.float("CASTIEL_SYNC_RETRY_BASE_SECONDS", default=1.0)
CASTIEL_SYNC_RETRY_CAP_SECONDS = env.float("CASTIEL_SYNC_RETRY_CAP_SECONDS", default=120.0)
CASTIEL_SYNC_MAX_INLINE_WAIT = env.float("CASTIEL_SYNC_MAX_INLINE_WAIT", default=60.0)
CASTIEL_SYNC_FAILURE_BACKOFF_SECONDS = env.float(
    "CASTIEL_SYNC_FAILURE_BACKOFF_SECONDS", default=60.0
)
# One execution stops (and re-queues itself from its checkpoint) before the worker timeout.
CASTIEL_SYNC_RUN_BUDGET_SECONDS = env.float(
    "CASTIEL_SYNC_RUN_BUDGET_SECONDS", default=_q_timeout * 0.8
)
# Subtracted from the incremental watermark (for providers whose updated-at is not ordered).
CASTIEL_SYNC_SINCE_OVERLAP_SECONDS = env.float("CASTIEL_SYNC_SINCE_OVERLAP_SECONDS", default=0)

# ---------------------------------------------------------------------------------------------
# Outbound push (syncing/outbox.py, syncing/outbound.py, docs/outbound.md)
# ---------------------------------------------------------------------------------------------
# Dispatch: changes claimed per batch (one queue message each), and how many batches may wait
# in the outbound queue at once (the rest stay pending in the outbox until a worker frees up).
CASTIEL_OUTBOUND_BATCH_SIZE = env.int("CASTIEL_OUTBOUND_BATCH_SIZE", default=50)
CASTIEL_OUTBOUND_MAX_QUEUED_BATCHES = env.int("CASTIEL_OUTBOUND_MAX_QUEUED_BATCHES", default=8)
# Leases: a change being pushed (renewed while its batch runs) and a claimed batch waiting in
# the queue; the reaper returns expired ones to pending (same idempotency key on the re-push).
CASTIEL_OUTBOUND_LEASE_SECONDS = env.int("CASTIEL_OUTBOUND_LEASE_SECONDS", default=120)
CASTIEL_OUTBOUND_QUEUE_LEASE_SECONDS = env.int("CASTIEL_OUTBOUND_QUEUE_LEASE_SECONDS", default=900)
# Retries of retryable failures (timeouts, 408/425/429, 5xx): full-jitter backoff never below
# Retry-After, up to the attempt limit (a task may set its own), then a dead letter. Waits up
# to MAX_INLINE_WAIT happen inside the batch; longer ones release the change until then.
CASTIEL_OUTBOUND_MAX_ATTEMPTS = env.int("CASTIEL_OUTBOUND_MAX_ATTEMPTS", default=8)
CASTIEL_OUTBOUND_RETRY_BASE_SECONDS = env.float("CASTIEL_OUTBOUND_RETRY_BASE_SECONDS", default=1.0)
CASTIEL_OUTBOUND_RETRY_CAP_SECONDS = env.float("CASTIEL_OUTBOUND_RETRY_CAP_SECONDS", default=300.0)
CASTIEL_OUTBOUND_MAX_INLINE_WAIT = env.float("CASTIEL_OUTBOUND_MAX_INLINE_WAIT", default=30.0)
# One batch execution stops (releasing what is left) before the outbound worker timeout.
CASTIEL_OUTBOUND_BATCH_BUDGET_SECONDS = env.float(
    "CASTIEL_OUTBOUND_BATCH_BUDGET_SECONDS",
    default=0.8 * (300 if CASTIEL_SPLIT_CLUSTERS else _q_timeout),
)
# A local change wakes the dispatcher at most once per this many seconds (one queue message
# for a burst of edits; the row is the work, the message only a wake-up).
CASTIEL_OUTBOUND_WAKE_DEBOUNCE_SECONDS = env.float(
    "CASTIEL_OUTBOUND_WAKE_DEBOUNCE_SECONDS", default=2.0
)
# Push results are committed in groups of up to this many (one commit for several pushes) when
# pushing a change again after a crash is harmless (idempotency key, or update/delete); 1 = each
# result commits alone.
CASTIEL_OUTBOUND_ACK_GROUP = env.int("CASTIEL_OUTBOUND_ACK_GROUP", default=20)
# Finished changes (pushed, skipped, superseded, discarded) are deleted after this many days.
CASTIEL_OUTBOUND_RETENTION_DAYS = env.int("CASTIEL_OUTBOUND_RETENTION_DAYS", default=14)
# Record history (who changed what, syncing/history.py) is pruned hourly after this many days.
CASTIEL_RECORD_HISTORY_RETENTION_DAYS = env.int("CASTIEL_RECORD_HISTORY_RETENTION_DAYS", default=90)

# The sandbox: a simulated SaaS API served under /sandbox/ (demo and tests; off in production).
CASTIEL_SANDBOX = env.bool("CASTIEL_SANDBOX", default=not PRODUCTION)

# Extra views used only by the benchmark harness (a bare Django view as the baseline).
CASTIEL_BENCH_VIEWS = env.bool("CASTIEL_BENCH_VIEWS", default=False)

# ---------------------------------------------------------------------------------------------
# Notifications (notifications/, docs/notifications.md)
# ---------------------------------------------------------------------------------------------
# When an event opens an incident: a sync task after this many consecutive failures, token
# refresh after this many, the outbound backlog when its oldest push is this old (seconds),
# webhook signature rejections when this many arrive within the window (seconds), a provider
# block at least this long (seconds) counts as an exhausted quota.
CASTIEL_NOTIFY_SYNC_FAILURES = env.int("CASTIEL_NOTIFY_SYNC_FAILURES", default=3)
CASTIEL_NOTIFY_REFRESH_FAILURES = env.int("CASTIEL_NOTIFY_REFRESH_FAILURES", default=3)
CASTIEL_NOTIFY_BACKLOG_SECONDS = env.int("CASTIEL_NOTIFY_BACKLOG_SECONDS", default=900)
CASTIEL_NOTIFY_SIGNATURE_SPIKE = env.int("CASTIEL_NOTIFY_SIGNATURE_SPIKE", default=20)
CASTIEL_NOTIFY_SIGNATURE_SPIKE_SECONDS = env.int(
    "CASTIEL_NOTIFY_SIGNATURE_SPIKE_SECONDS", default=300
)
CASTIEL_NOTIFY_QUOTA_BLOCK_SECONDS = env.float("CASTIEL_NOTIFY_QUOTA_BLOCK_SECONDS", default=60.0)
# Incidents without a recovery event of their own (quota exhausted) resolve after this quiet.
CASTIEL_NOTIFY_QUIET_RESOLVE_MINUTES = env.float(
    "CASTIEL_NOTIFY_QUIET_RESOLVE_MINUTES", default=30.0
)
# A reminder while an incident stays open (and unacknowledged); 0 = never.
CASTIEL_NOTIFY_RENOTIFY_MINUTES = env.int("CASTIEL_NOTIFY_RENOTIFY_MINUTES", default=240)
# Delivery: attempts, backoff (full jitter, never below Retry-After), waits slept in the worker,
# a sender's lease, the read timeout, and one worker run's budget.
CASTIEL_NOTIFY_MAX_ATTEMPTS = env.int("CASTIEL_NOTIFY_MAX_ATTEMPTS", default=12)
# …and never dead-lettered sooner than this after the first attempt (outages shorter lose nothing).
CASTIEL_NOTIFY_RETRY_FOR_MINUTES = env.float("CASTIEL_NOTIFY_RETRY_FOR_MINUTES", default=60.0)
CASTIEL_NOTIFY_RETRY_BASE_SECONDS = env.float("CASTIEL_NOTIFY_RETRY_BASE_SECONDS", default=5.0)
CASTIEL_NOTIFY_RETRY_CAP_SECONDS = env.float("CASTIEL_NOTIFY_RETRY_CAP_SECONDS", default=600.0)
CASTIEL_NOTIFY_MAX_INLINE_WAIT = env.float("CASTIEL_NOTIFY_MAX_INLINE_WAIT", default=10.0)
CASTIEL_NOTIFY_LEASE_SECONDS = env.int("CASTIEL_NOTIFY_LEASE_SECONDS", default=120)
CASTIEL_NOTIFY_TIMEOUT = env.float("CASTIEL_NOTIFY_TIMEOUT", default=10.0)
CASTIEL_NOTIFY_BATCH_BUDGET_SECONDS = env.float(
    "CASTIEL_NOTIFY_BATCH_BUDGET_SECONDS", default=120.0
)
# Failed attempts in a row before a channel raises its own (platform) incident.
CASTIEL_NOTIFY_CHANNEL_FAILURES = env.int("CASTIEL_NOTIFY_CHANNEL_FAILURES", default=3)
# Channel URLs must be https in production; plain http is allowed in embedded (the demo inbox).
CASTIEL_NOTIFY_ALLOW_HTTP = env.bool("CASTIEL_NOTIFY_ALLOW_HTTP", default=not PRODUCTION)
# Base of the admin links in messages (empty: no links).
CASTIEL_NOTIFY_LINK_BASE_URL = env.str(
    "CASTIEL_NOTIFY_LINK_BASE_URL",
    default=CASTIEL_PUBLIC_URL
    or ("" if PRODUCTION else f"http://127.0.0.1:{env.int('CASTIEL_PORT', default=8000)}"),
)
# Delivered deliveries and resolved incidents are deleted after this many days.
CASTIEL_NOTIFY_RETENTION_DAYS = env.int("CASTIEL_NOTIFY_RETENTION_DAYS", default=30)
# Email channels: Django's email settings. Without EMAIL_HOST the embedded profile prints
# messages to the worker's console; production sends through EMAIL_HOST (SMTP).
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.smtp.EmailBackend"
    if PRODUCTION or "EMAIL_HOST" in os.environ
    else "django.core.mail.backends.console.EmailBackend",
)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="castiel@localhost")
