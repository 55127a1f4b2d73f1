"""The ledger's stored forms: a row record as compact JSON (``ROW_KEYS``), a new row as the
staging script takes it, a batch's hashes as ``BatchInfo``, and batch ids.

A million queued rows are mostly their records, so a record leaves out what it can: fields
at their defaults, the outcome while it is ``queued`` (the first one), and the update's long
key names (:func:`pack_params`). Records written by earlier versions (``params`` as a JSON
string, the outcome always given) decode alike.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from vsbatch.errors import InputError, NotFoundError
from vsbatch.model.row import TERMINAL, BatchInfo, BatchState, NewRow, Outcome, RowRecord
from vsbatch.store.keys import Keys

if TYPE_CHECKING:  # status decodes rows without importing redis-py
    import redis

# RowRecord attribute -> short key in the stored JSON. Defaults (None, 0, {}) are not stored,
# nor the outcome "queued". ``extra`` is stored as a JSON *string* so that the Lua scripts,
# which decode and re-encode the record with cjson, never reorder or reshape it; ``params``
# is an object of short keys (:func:`pack_params`), read back in canonical order whatever
# order cjson wrote it in.
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
DEFAULT_OUTCOME = Outcome.QUEUED.value  # a record without "o" is queued
# A staged record's created_at, as milliseconds after its batch id's time (encode_new).
_CREATED_AFTER = "cd"
_BATCH_ID = re.compile(r"b_[0-9a-z]{15}")
# A validated update's parts -> their short keys in a stored record's "p" (``options`` holds
# only ``document``, stored as "D"); each part's own keys are mapped too (metadata's are the
# user's and kept).
_PARTS = {"metadata": "m", "options": "D", "provided_details": "d", "type": "t"}
_DOCUMENT = {
    "allowed_types": "a",
    "require_id_number": "i",
    "require_live_capture": "l",
    "require_matching_selfie": "s",
}
_DETAILS = {"email": "e", "phone": "p"}
_NAMES = {"options": _DOCUMENT, "provided_details": _DETAILS}  # the parts with known keys
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_TEXT = json.encoder.encode_basestring  # a str as JSON, as _JSON writes it
# _JSON's C encoder, made once: ``encode`` makes one per call, a good part of the time a
# staged row costs (None where the C accelerator is missing).
_MAKE_ENCODER: Any = getattr(json.encoder, "c_make_encoder", None)  # not in the stubs
_C_ENCODE = (
    _MAKE_ENCODER(None, _JSON.default, _TEXT, None, ":", ",", False, False, True)
    if _MAKE_ENCODER is not None
    else None
)


def as_text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def compact_json(value: Any) -> str:
    """``value`` as compact JSON, non-ASCII kept (what every stored form is written with)."""
    if _C_ENCODE is None or isinstance(value, str):
        return _JSON.encode(value)
    return "".join(_C_ENCODE(value, 0))


def pack_params(params: dict[str, Any]) -> dict[str, Any] | str:
    """An update's stored form: its parts under short keys (see ``_PARTS``), or its JSON
    text when it has a shape a validated update never has."""
    packed: dict[str, Any] = {}
    for part, value in params.items():
        short = _PARTS.get(part)
        if short is None:
            return compact_json(params)
        if part in _NAMES:
            if part == "options":
                if not isinstance(value, dict) or len(value) != 1 or "document" not in value:
                    return compact_json(params)
                value = value["document"]
            if isinstance(value, dict):
                names = _NAMES[part]
                if not all(key in names for key in value):
                    return compact_json(params)
                value = {names[key]: item for key, item in value.items()}
        packed[short] = value
    return packed


def params_json(params: dict[str, Any]) -> str:
    """``compact_json(pack_params(params))``, written straight from a validated update's
    parts (a third of the time; any other shape takes the long way)."""
    try:
        return "{" + ",".join([_PART_JSON[part](value) for part, value in params.items()]) + "}"
    except (KeyError, TypeError, AttributeError):
        return compact_json(pack_params(params))


def _fields_json(value: Any, names: dict[str, str] | None) -> str:
    """A part's object (its keys mapped by ``names``) or "" (an unset), as compact JSON."""
    if value == "":
        return '""'
    members = []
    for key, item in value.items():
        if item is True or item is False:
            text = "true" if item else "false"
        elif type(item) is list:
            text = "[" + ",".join([_TEXT(entry) for entry in item]) + "]"
        else:
            text = _TEXT(item)
        members.append(_TEXT(key if names is None else names[key]) + ":" + text)
    return "{" + ",".join(members) + "}"


def _options_json(value: Any) -> str:
    if len(value) != 1:
        raise KeyError("options")
    return '"D":' + _fields_json(value["document"], _DOCUMENT)


def unpack_params(stored: Any) -> dict[str, Any]:
    """The canonical params (keys sorted at every level) of a stored form of any version."""
    if isinstance(stored, str):
        return cast(dict[str, Any], json.loads(stored))
    params: dict[str, Any] = {}
    if "m" in stored:
        metadata = stored["m"]
        params["metadata"] = {k: metadata[k] for k in sorted(metadata)} if metadata else ""
    if "D" in stored:
        params["options"] = {"document": _unpacked(stored["D"], _DOCUMENT)}
    if "d" in stored:
        params["provided_details"] = _unpacked(stored["d"], _DETAILS)
    if "t" in stored:
        params["type"] = stored["t"]
    return params


def _unpacked(stored: Any, names: dict[str, str]) -> Any:
    """A part's fields under their long names, in sorted order ("" stays "")."""
    if not isinstance(stored, dict):
        return stored
    return {name: stored[short] for name, short in names.items() if short in stored}


def outcome_name(raw: bytes | str) -> str:
    """The outcome of a stored record (``queued`` when it names none)."""
    return cast(str, json.loads(raw).get("o", DEFAULT_OUTCOME))


def stored_form(name: str, value: Any) -> Any:
    """The stored form of one RowRecord field, or None when it is the default."""
    if value is None or (name in ("attempts", "unsettled", "extra") and not value):
        return None
    if name == "params":
        return pack_params(value)
    if name == "extra":
        return compact_json(value)
    if name in ("created_at", "updated_at"):
        return round(float(value), 3)
    return value


def decode_row(batch_id: str, row: int, raw: bytes | str) -> RowRecord:
    stored = json.loads(raw)
    data = {_FROM_SHORT[k]: v for k, v in stored.items() if k in _FROM_SHORT}
    if _CREATED_AFTER in stored and "created_at" not in data:
        base = batch_millis(batch_id)
        data["created_at"] = 0.0 if base is None else (base + int(stored[_CREATED_AFTER])) / 1000
    if "params" in data:
        data["params"] = unpack_params(data["params"])
    if "extra" in data:
        data["extra"] = json.loads(data["extra"])
    return RowRecord(
        batch_id=batch_id,
        row=row,
        session_id=data.pop("session_id", ""),
        account=data.pop("account", None),
        params=data.pop("params", None),
        idempotency_key=data.pop("idempotency_key", None),
        seq=int(data.pop("seq", 0)),
        outcome=Outcome(data.pop("outcome", DEFAULT_OUTCOME)),
        created_at=float(data.pop("created_at", 0.0)),
        updated_at=float(data.pop("updated_at", 0.0)),
        **data,
    )


def batch_millis(batch_id: str) -> int | None:
    """The creation time a batch id (:func:`new_batch_id`) holds, in ms; None for another id."""
    if _BATCH_ID.fullmatch(batch_id) is None:
        return None
    return int(batch_id[2:11], 36)


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


def encode_new(new: NewRow, now: float, batch_id: str | None = None) -> tuple[str, str, str, str]:
    """One new row's parts as add_rows.lua takes them: row, record body, rejection tail,
    session field (the only part that may hold a NUL: it comes last).

    The body is the record's compact JSON without its closing brace (add_rows.lua ends it).
    With the row's ``batch_id``, the creation time is stored as milliseconds after the
    batch's (its id tells it): 11 characters a row instead of 20.
    """
    if new.row < 1:
        raise ValueError(f"row numbers start at 1, got {new.row}")
    members = []
    if new.session_id:
        members.append('"s":' + _TEXT(new.session_id))
    if new.account is not None:
        members.append('"a":' + _TEXT(new.account))
    if new.params is not None:
        members.append('"p":' + params_json(new.params))
    if new.idempotency_key is not None:
        members.append('"k":' + _TEXT(new.idempotency_key))
    if new.extra:
        members.append('"x":' + _TEXT(compact_json(new.extra)))
    base = None if batch_id is None else batch_millis(batch_id)
    if base is None:
        members.append('"ca":' + repr(float(now)))  # what JSON writes for a float
    else:
        members.append(f'"{_CREATED_AFTER}":{round(now * 1000) - base}')
    tail = ""
    if new.rejection is not None:
        column, reason = new.rejection
        tail = compact_json({"c": column, "r": reason} if column else {"r": reason})[1:-1]
    body = "{" + ",".join(members)
    return str(new.row), body, tail, Keys.session_field(new.account, new.session_id)


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


# Each part of a validated update as its member of the stored params (see params_json).
_PART_JSON: dict[str, Callable[[Any], str]] = {
    "metadata": lambda value: '"m":' + _fields_json(value, None),
    "options": _options_json,
    "provided_details": lambda value: '"d":' + _fields_json(value, _DETAILS),
    "type": lambda value: '"t":' + _TEXT(value),
}
