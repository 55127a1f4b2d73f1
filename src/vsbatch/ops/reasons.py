"""Why a row ended as it did, and ledger values as text for people: one wording everywhere.

:func:`reason` is the short, stable reason every machine-readable report gives (JSON and CSV
alike, and the metrics label): the skip or rejection reason, else the failure's Stripe code,
else its error class. :func:`why` is the phrase the terminal shows. :func:`shown` writes a
value as a person reads it, never as a Python repr (``None``, ``{'a': 'b'}``).
"""

from __future__ import annotations

import json
from typing import Any

from vsbatch.model.row import Outcome, RowRecord

__all__ = ["reason", "shown", "why"]

UNSET = "(unset)"


def reason(record: RowRecord) -> str:
    """The row's short reason (``""`` for a row applied): the same text in JSON and CSV."""
    return record.reason or record.error_code or record.error_type or ""


def why(record: RowRecord) -> str:
    """One readable phrase: the reason and status for skips, the column for rejections, the
    code and message for failures."""
    if record.outcome is Outcome.SKIPPED:
        status = f" (status {record.session_status})" if record.session_status else ""
        return f"{record.reason or 'skipped'}{status}"
    parts = [record.column or "", reason(record)]
    if record.error_message and record.error_message != parts[1]:
        parts.append(record.error_message)
    return ": ".join(p for p in parts if p)


def shown(value: Any) -> str:
    """``value`` as a person reads it: text as it is, ``(unset)`` for nothing, JSON for data.

    Args:
        value: A field's value from a session or an update (str, bool, number, dict, list,
            or None).
    """
    if value is None or value == {}:
        return UNSET
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
