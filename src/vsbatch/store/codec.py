"""The ledger's stored forms: a row record as compact JSON (``ROW_KEYS``), a new row as the
staging script takes it, a batch's hashes as ``BatchInfo``, and batch ids."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from vsbatch.errors import InputError, NotFoundError
from vsbatch.model.row import TERMINAL, BatchInfo, BatchState, NewRow, Outcome, RowRecord
from vsbatch.store.keys import Keys

if TYPE_CHECKING:  # status decodes rows without importing redis-py
    import redis

# RowRecord attribute -> short key in the stored JSON. Defaults (None, 0, {}) are not stored.
# ``params`` and ``extra`` are stored as JSON *strings* so that the Lua transition script,
# which decodes and re-encodes the record with cjson, never reorders or reshapes them.
ROW_KEYS: dict[str, str] = {
    "session_id": "s",
    "account": "a",
    "params": "p",
    "idempotency_key": "k",
    "seq": "q",
    "outcome": "o",
    "reason": "r",
    "column": "c",
    "attempts": "n",
    "retryable": "y",
    "error_type": "et",
    "error_code": "ec",
    "error_message": "em",
    "request_id": "rq",
    "session_status": "ss",
    "unsettled": "u",
    "created_at": "ca",
    "updated_at": "ua",
    "extra": "x",
}
_FROM_SHORT = {v: k for k, v in ROW_KEYS.items()}
# Fields a transition may set: everything but the session, order, outcome and timestamps.
PATCHABLE = frozenset(ROW_KEYS) - {
    "session_id",
    "account",
    "seq",
    "outcome",
    "created_at",
    "updated_at",
}
ERROR_FIELDS = ("retryable", "error_type", "error_code", "error_message")
TERMINAL_NAMES = tuple(o.value for o in TERMINAL)


def as_text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def stored_form(name: str, value: Any) -> Any:
    """The stored form of one RowRecord field, or None when it is the default."""
    if value is None or (name in ("attempts", "unsettled", "extra") and not value):
        return None
    if name in ("params", "extra"):
        return compact_json(value)
    if name in ("created_at", "updated_at"):
        return round(float(value), 3)
    return value


def decode_row(batch_id: str, row: int, raw: bytes | str) -> RowRecord:
    data = {_FROM_SHORT[k]: v for k, v in json.loads(raw).items() if k in _FROM_SHORT}
    for name in ("params", "extra"):
        if name in data:
            data[name] = json.loads(data[name])
    return RowRecord(
        batch_id=batch_id,
        row=row,
        session_id=data.pop("session_id", ""),
        account=data.pop("account", None),
        params=data.pop("params", None),
        idempotency_key=data.pop("idempotency_key", None),
        seq=int(data.pop("seq", 0)),
        outcome=Outcome(data.pop("outcome")),
        created_at=float(data.pop("created_at", 0.0)),
        updated_at=float(data.pop("updated_at", 0.0)),
        **data,
    )


def new_batch_id(now: float) -> str:
    """``b_`` + milliseconds in 9 base-36 digits + 6 random base-36 digits: sortable, unique."""
    return "b_" + _base36(int(now * 1000), 9) + _base36(int.from_bytes(os.urandom(4)), 6)


def _base36(n: int, width: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out.rjust(width, "0")[-width:]


def encode_new(new: NewRow, now: float) -> tuple[str, str, str, str]:
    """One new row as add_rows.lua takes it: row, session field, record body, rejection tail."""
    if new.row < 1:
        raise ValueError(f"row numbers start at 1, got {new.row}")
    record: dict[str, Any] = {}
    if new.session_id:
        record["s"] = new.session_id
    if new.account is not None:
        record["a"] = new.account
    if new.params is not None:
        record["p"] = compact_json(new.params)
    if new.idempotency_key is not None:
        record["k"] = new.idempotency_key
    if new.extra:
        record["x"] = compact_json(new.extra)
    record["ca"] = now
    tail = ""
    if new.rejection is not None:
        column, reason = new.rejection
        tail = compact_json({"c": column, "r": reason} if column else {"r": reason})[1:-1]
    body = compact_json(record)[:-1]
    return str(new.row), Keys.session_field(new.account, new.session_id), body, tail


def batch_info(raw_batch: dict[Any, Any], raw_counts: dict[Any, Any]) -> BatchInfo:
    b = {as_text(k): as_text(v) for k, v in raw_batch.items()}
    counts = {o: 0 for o in Outcome}
    for k, v in raw_counts.items():
        counts[Outcome(as_text(k))] = int(v)
    return BatchInfo(
        id=b["id"],
        name=b.get("name", ""),
        kind=b.get("kind", ""),
        source=b.get("source", ""),
        digest=b.get("digest"),
        account=b.get("account"),
        created_at=float(b["created_at"]),
        state=BatchState(b["state"]),
        total=int(b.get("total", 0)),
        counts=counts,
        parent_id=b.get("parent_id"),
        finished_at=float(b["finished_at"]) if "finished_at" in b else None,
        options=json.loads(b["options"]) if "options" in b else {},
        touched_at=float(b["touched_at"]) if "touched_at" in b else None,
    )


def script_error(exc: redis.ResponseError, batch_id: str) -> Exception:
    """The vsbatch error for a ledger script's error reply (others are returned as they are)."""
    text = str(exc)
    if "NOBATCH" in text:
        return NotFoundError(f"no batch {batch_id} (unknown or expired)")
    if "BATCHSTATE" in text:
        state = text.split("BATCHSTATE", 1)[1].split()[0]
        return InputError(f"batch {batch_id} is {state}")
    if "NOROW" in text:
        return NotFoundError(f"batch {batch_id} has no such row")
    return exc
