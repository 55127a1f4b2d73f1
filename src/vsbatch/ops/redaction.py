"""Redaction: what vsbatch removes from everything it shows or writes for people.

Two kinds of secrets:

- **Stripe API keys** (``sk_``/``rk_`` followed by ``test``/``live``), always, wherever they
  appear in text: log lines, error messages, reports. The key should never reach any of them
  (it lives only in each process's settings); this is the second line of defence.
- **Passwords in URLs** (``redis://:password@host``, the embedded Redis's and yours), always.
- **PII**: ``provided_details.email`` and ``provided_details.phone``, when asked
  (``VSBATCH_REDACT_PII=true``, or ``--redact`` on ``report`` and ``failures``). Structured
  values are redacted by field name (``email``, ``phone``, ``provided_details.email``...);
  free text is redacted by pattern (an email address; a phone number written with a leading
  ``+`` or as ``(555) 555-0100`` / ``555-555-0100``).

- **URL credentials**, always: the userinfo of every URL (``redis://:pw@host`` becomes
  ``redis://***@host``) and query parameters such as ``password=``, ``token=``, ``secret=``.
  :func:`vsbatch.urls.safe_url` is the one function every printed URL goes through.

Each output applies these functions in one place: the logging filter (``vsbatch.ops.logs``), the
CLI's error printer, and :class:`~vsbatch.ops.redacted_ledger.RedactedLedger`, the read-only
view the report writers get.
The ledger itself keeps the update parameters in clear: workers need them to apply the row.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from vsbatch.model.row import RowRecord
from vsbatch.urls import safe_url

__all__ = [
    "EMAIL_MARK",
    "KEY_MARK",
    "PHONE_MARK",
    "redact_record",
    "redact_text",
    "redact_value",
]

KEY_MARK = "[redacted-key]"
EMAIL_MARK = "[redacted-email]"
PHONE_MARK = "[redacted-phone]"

# sk_test_..., rk_live_...: no word boundary, so that a key glued to other text goes too.
_KEY_RE = re.compile(r"[sr]k_(?:test|live)_[A-Za-z0-9_]+")
_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# "+15555550100", "+1 555 555 0100", "(555) 555-0100", "555-555-0100": a leading "+" or the
# North American grouping, so that row numbers, timestamps and counts are left alone.
_PHONE_RE = re.compile(
    r"\+\d[\d\s().-]{5,20}\d|\(\d{3}\)\s?\d{3}[\s.-]\d{4}\b|\b\d{3}[.-]\d{3}[.-]\d{4}\b"
)
_PII_FIELDS = {
    "email": EMAIL_MARK,
    "phone": PHONE_MARK,
    "provided_details.email": EMAIL_MARK,
    "provided_details.phone": PHONE_MARK,
}


def redact_text(text: str, *, pii: bool = False) -> str:
    """Remove API keys and URL passwords (always), emails and phone numbers (when ``pii``).

    Args:
        text: Any text meant for people (a log message, an error, a report cell).
        pii: Also remove email addresses and phone numbers.

    Returns:
        The text with each secret replaced by a marker such as ``[redacted-key]``.
    """
    text = _KEY_RE.sub(KEY_MARK, text)
    if "://" in text or "=" in text:
        text = safe_url(text)
    if pii:
        text = _EMAIL_RE.sub(EMAIL_MARK, text)
        text = _PHONE_RE.sub(PHONE_MARK, text)
    return text


def redact_value(value: Any, *, pii: bool = False) -> Any:
    """A copy of ``value`` (str, dict, list, tuple or scalar) with secrets removed.

    Dictionary entries named ``email``/``phone`` (or their ``provided_details.`` columns) are
    replaced whole when ``pii``; every string is passed through :func:`redact_text`.
    """
    if isinstance(value, str):
        return redact_text(value, pii=pii)
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            mark = _PII_FIELDS.get(key) if pii and isinstance(key, str) else None
            if mark is not None and item not in (None, ""):
                out[key] = mark
            else:
                out[key] = redact_value(item, pii=pii)
        return out
    if isinstance(value, list | tuple):
        return type(value)(redact_value(item, pii=pii) for item in value)
    return value


def redact_record(record: RowRecord, *, pii: bool = False) -> RowRecord:
    """A copy of a ledger row with secrets removed from its update, cells and messages."""
    return dataclasses.replace(
        record,
        params=redact_value(record.params, pii=pii),
        reason=redact_value(record.reason, pii=pii),
        error_message=redact_value(record.error_message, pii=pii),
        extra=redact_value(record.extra, pii=pii),
    )
