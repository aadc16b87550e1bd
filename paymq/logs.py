"""Logging for paymq processes: one line per event, card numbers masked, pika and the Stripe
SDK kept quiet.

Two formats (`PAYMQ_LOG_FORMAT`): `json`, one object per line for log pipelines, and `text` for
people; `auto` (the default) picks text on a terminal and JSON otherwise (a container, a file,
a service manager). A JSON line always has `time`, `level`, `logger`, `message`, `payment_id`
and `message_id` (null when the line is about no payment, e.g. start-up), plus any `extra=`
fields. Masking runs before formatting, so JSON lines and tracebacks are masked too.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from common.logcontext import ContextFilter
from common.redact import PanMaskingFilter, mask_pans
from common.settings import Settings
from common.tracing import configure_tracing

FORMATS = ("auto", "json", "text")
#: uvicorn attaches an ANSI-coloured copy of each message; the plain one is enough.
_DROPPED = ("color_message",)


class _MaskedJsonFormatter(JsonFormatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        moment = datetime.fromtimestamp(record.created, UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def formatException(self, ei: Any) -> str:  # noqa: N802 - logging's name
        return mask_pans(logging.Formatter.formatException(self, ei))


def json_formatter() -> logging.Formatter:
    return _MaskedJsonFormatter(
        ["asctime", "levelname", "name", "message", "payment_id", "message_id"],
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        reserved_attrs=[*RESERVED_ATTRS, *_DROPPED],
    )


def text_formatter() -> logging.Formatter:
    return logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")


def handler(log_format: str = "auto", stream: IO[str] | None = None) -> logging.Handler:
    """A handler writing masked lines, with payment and message ids, in `log_format`."""
    if log_format not in FORMATS:
        raise ValueError(f"log format {log_format!r} is not one of {', '.join(FORMATS)}")
    out = stream if stream is not None else sys.stderr
    if log_format == "auto":
        log_format = "text" if out.isatty() else "json"
    result = logging.StreamHandler(out)
    result.setFormatter(json_formatter() if log_format == "json" else text_formatter())
    result.addFilter(ContextFilter())
    result.addFilter(PanMaskingFilter())
    return result


def configure_process(settings: Settings, service_name: str) -> None:
    """Logging and tracing of a long-running process, from its settings."""
    configure(settings.observability.log_level, settings.observability.log_format)
    configure_tracing(settings.observability.tracing, service_name)


def configure(level: str, log_format: str = "auto") -> None:
    root = logging.getLogger()
    root.handlers[:] = [handler(log_format)]
    root.setLevel(level.upper())
    # pika narrates every frame at INFO; its warnings and errors still show.
    logging.getLogger("pika").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # The Stripe SDK logs every request and answer at INFO: one pair per payment.
    logging.getLogger("stripe").setLevel(max(logging.WARNING, root.level))
