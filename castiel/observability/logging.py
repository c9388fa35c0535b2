"""Structured JSON logs through structlog, for both structlog and stdlib loggers.

Every line carries the correlation and execution ids bound in the current context (and, while
tracing is on, the current span's trace and span ids), and keys that look like secrets are
redacted before rendering.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import structlog

from castiel.observability.context import correlation_id_var, execution_id_var
from castiel.observability.redaction import REDACTED, is_secret_key, redact_text

# Set by castiel.observability.tracing when tracing is on: returns the current span's
# (trace_id, span_id), so a log line and its trace find each other.
_trace_ids: Callable[[], tuple[str, str] | None] | None = None


def set_trace_ids(source: Callable[[], tuple[str, str] | None] | None) -> None:
    global _trace_ids
    _trace_ids = source


def add_context_ids(_logger, _method, event_dict):
    correlation_id = correlation_id_var.get()
    if correlation_id and "correlation_id" not in event_dict:
        event_dict["correlation_id"] = correlation_id
    execution_id = execution_id_var.get()
    if execution_id and "execution_id" not in event_dict:
        event_dict["execution_id"] = execution_id
    if _trace_ids is not None and "trace_id" not in event_dict:
        ids = _trace_ids()
        if ids is not None:
            event_dict["trace_id"], event_dict["span_id"] = ids
    return event_dict


def redact_secrets(_logger, _method, event_dict):
    for key in list(event_dict):
        if key.lower() in ("correlation_id", "execution_id", "trace_id", "span_id"):
            continue
        if key.lower() != "event" and is_secret_key(key):
            event_dict[key] = REDACTED
        elif isinstance(event_dict[key], str):
            # Request lines and URLs in messages or fields: secret query values go.
            event_dict[key] = redact_text(event_dict[key])
    return event_dict


_shared = [
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def formatter_factory(fmt: str = "json") -> logging.Formatter:
    renderer = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            add_context_ids,
            redact_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )


def configure_structlog() -> None:
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def get_logger(name: str):
    return structlog.get_logger(name)
