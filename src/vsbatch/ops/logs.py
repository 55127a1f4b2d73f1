"""Logging: one handler on the root logger, JSON lines or readable text, always redacted.

``VSBATCH_LOG_FORMAT``: ``json`` (one JSON object per line), ``text`` (a readable line with
``key=value`` fields), or ``auto`` (the default): text when stderr is a terminal, JSON when
it is not (containers, systemd, files), which is where logs are collected and parsed.

Fields: every line carries ``ts``, ``level``, ``logger`` and ``message``, plus the fields a
caller passed with ``extra=``; a row outcome (``vsbatch.worker.process_row``) carries ``batch``,
``row``, ``session``, ``outcome``, ``reason``, ``attempts`` and ``request_id``.

Redaction happens in one place, :class:`RedactingFilter` on the handler: it sees every
record that reaches the handler (vsbatch's, Celery's, httpx's), renders message and
traceback, and removes API keys (any ``sk_``/``rk_`` key, and the configured key in every
spelling) and URL credentials always, email/phone when ``VSBATCH_REDACT_PII=true``.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
from typing import Any, TextIO

from vsbatch.config import Settings
from vsbatch.ops.redaction import redact_text, redact_value
from vsbatch.ops.terminal_text import visible
from vsbatch.stripe.keyscrub import scrub_text, scrub_value

__all__ = [
    "JsonFormatter",
    "RedactingFilter",
    "TextFormatter",
    "setup_logging",
    "setup_worker_logging",
    "wants_json",
]

# The attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class RedactingFilter(logging.Filter):
    """Renders each record's message and traceback once, with secrets removed."""

    def __init__(self, *, pii: bool, secret: str = "") -> None:
        super().__init__()
        self.pii = pii
        self.secret = secret  # the configured key: removed in every spelling, not only by shape

    def _text(self, text: str) -> str:
        return redact_text(scrub_text(text, self.secret), pii=self.pii)

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record in place (message, arguments, traceback, extra fields)."""
        record.msg = self._text(record.getMessage())
        record.args = None
        if record.exc_info:  # another handler may have cached the full traceback already
            record.exc_text = _exception_text(record.exc_info)
        if record.exc_text:
            record.exc_text = self._text(record.exc_text)
        record.exc_info = None  # the text above is what gets printed
        if record.stack_info:
            record.stack_info = self._text(record.stack_info)
        for key, value in _extras(record).items():
            setattr(record, key, redact_value(scrub_value(value, self.secret), pii=self.pii))
        return True


# A lost or refused connection (a Redis restart, a broker hiccup) is an operational event the
# libraries already retry: one line says it; a traceback would only bury the log.
_CONNECTION_ERRORS = frozenset({"ConnectionError", "TimeoutError", "OperationalError"})


def _is_connection_trouble(exc: BaseException | None) -> bool:
    if exc is None:
        return False
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    return any(
        cls.__name__ in _CONNECTION_ERRORS and cls.__module__.split(".")[0] in {"redis", "kombu"}
        for cls in type(exc).__mro__
    )


def _exception_text(exc_info: Any) -> str:
    """The traceback, or one line ``Type: message`` for a lost connection."""
    exc = exc_info[1] if isinstance(exc_info, tuple) else None
    if _is_connection_trouble(exc):
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    return logging.Formatter().formatException(exc_info)


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, extra fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        data: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update(_extras(record))
        if record.exc_text:
            data["exception"] = record.exc_text
        if record.stack_info:
            data["stack"] = record.stack_info
        return json.dumps(data, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``HH:MM:SS LEVEL logger: message key=value ...`` for people at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a readable line (plus a traceback, if any)."""
        clock = datetime.datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        fields = " ".join(f"{k}={v}" for k, v in _extras(record).items() if v is not None)
        line = f"{clock} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if fields:
            line += f"  {fields}"
        if record.exc_text:
            line += "\n" + record.exc_text
        if record.stack_info:
            line += "\n" + record.stack_info
        # Messages carry data and Stripe's words: no escape sequence reaches the terminal.
        return visible(line, lines=True)


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def wants_json(log_format: str, stream: TextIO | None = None) -> bool:
    """True for ``json``, and for ``auto`` when the stream (stderr) is not a terminal."""
    if log_format == "auto":
        stream = stream if stream is not None else sys.stderr
        return not (hasattr(stream, "isatty") and stream.isatty())
    return log_format == "json"


def setup_logging(settings: Settings, *, level: str | int | None = None) -> logging.Handler:
    """Install vsbatch's handler on the root logger (replacing one installed before).

    Logger levels are left alone; the handler shows records at ``level`` and above.

    Args:
        settings: ``log_format``, ``log_level`` and ``redact_pii`` are read.
        level: The handler's level (default ``settings.log_level``).

    Returns:
        The installed handler.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_vsbatch", False):
            root.removeHandler(handler)
    handler = _StderrHandler()
    handler._vsbatch = True  # type: ignore[attr-defined]
    handler.setLevel(_level(level or settings.log_level))
    secret = settings.stripe_api_key.get_secret_value() if settings.stripe_api_key else ""
    handler.addFilter(RedactingFilter(pii=settings.redact_pii, secret=secret))
    handler.setFormatter(JsonFormatter() if wants_json(settings.log_format) else TextFormatter())
    root.addHandler(handler)
    return handler


def setup_worker_logging(settings: Settings, *, others_level: str | int = "WARNING") -> None:
    """A worker process's logging: vsbatch at ``log_level``, everything else at ``others_level``.

    Row outcomes are logged at INFO by ``vsbatch.worker.process_row``; Celery's and httpx's own
    lines follow the worker's ``--loglevel``.
    """
    setup_logging(settings, level=logging.NOTSET)
    logging.getLogger().setLevel(_level(others_level))
    logging.getLogger("vsbatch").setLevel(_level(settings.log_level))


def _level(value: str | int) -> int:
    if isinstance(value, int):
        return value
    number = logging.getLevelName(value.upper())
    return number if isinstance(number, int) else logging.INFO
