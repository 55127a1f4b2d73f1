"""What each VerificationSession operation does once a request is admitted.

Assumptions where Stripe's behaviour is UNVERIFIED (see FACTS.md), each switchable in
:class:`~vsbatch.emulator.config.EmulatorConfig` where it matters:

- An update, cancel or redact refused for the session's status is HTTP 400
  ``invalid_request_error`` with code ``session_invalid_status`` and param ``status``; it is an
  executed request, so its answer is stored under the idempotency key. ``allow_update_any_status``
  accepts updates in every status, ``allow_metadata_update_any_status`` accepts metadata-only
  ones; a redacted session is never updated.
- ``options[document]=""`` removes the document options, leaving ``options`` as ``{}``.
- Redaction follows Stripe's lifecycle (:mod:`vsbatch.emulator.sessions`): ``processing`` in
  the answer, ``redacted`` with ``[redacted]`` placeholders ``redaction_seconds`` later.
  Redacting twice answers 200 with the session as it is.
- A 404 for an unknown session is an executed request (stored); validation 400s and
  ``lock_timeout`` 429s are not.
"""

from __future__ import annotations

import asyncio
import json
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Final

from vsbatch.emulator.faults import Fault
from vsbatch.emulator.forms import (
    CREATE_PARAMETERS,
    EXPAND_ONLY_PARAMETERS,
    LIST_PARAMETERS,
    UPDATE_PARAMETERS,
    ParamError,
    Schema,
    parse_pairs,
    validate,
)
from vsbatch.emulator.sessions import Session, cancel
from vsbatch.emulator.state import World
from vsbatch.emulator.views import expansions, show
from vsbatch.emulator.wire import MESSAGES, error_body, to_json

__all__ = ["MAX_EMAIL", "MAX_METADATA_KEYS", "Result", "execute"]

MAX_METADATA_KEYS: Final = 50
MAX_METADATA_KEY: Final = 40
MAX_METADATA_VALUE: Final = 500
MAX_EMAIL: Final = 800
_TABLES: Final[dict[str, dict[str, Schema]]] = {
    "create": CREATE_PARAMETERS,
    "update": UPDATE_PARAMETERS,
    "cancel": EXPAND_ONLY_PARAMETERS,
    "redact": EXPAND_ONLY_PARAMETERS,
    "retrieve": EXPAND_ONLY_PARAMETERS,
    "list": LIST_PARAMETERS,
}
_RETRY: Final = {"Stripe-Should-Retry": "true"}
_request_id: ContextVar[str] = ContextVar("request_id", default="req_unknown")


@dataclass(slots=True)
class Result:
    """An operation's answer and whether it is stored under the idempotency key."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    store: bool = True
    applied: bool = False


def _fail(
    status: int,
    message: str,
    *,
    code: str | None = None,
    param: str | None = None,
    store: bool = False,
    headers: dict[str, str] | None = None,
) -> Result:
    body = error_body(_request_id.get(), "invalid_request_error", message, code=code, param=param)
    return Result(status, body, headers or {}, store=store)


def _missing(session_id: str, param: str = "id") -> Result:
    message = f"No such verificationsession: '{session_id}'"
    return _fail(404, message, code="resource_missing", param=param, store=True)


def _check_extras(params: dict[str, Any]) -> None:
    """Stripe's rules beyond types: metadata sizes and email length."""
    metadata = params.get("metadata")
    if isinstance(metadata, dict):
        for key, value in metadata.items():
            if len(key) > MAX_METADATA_KEY:
                raise ParamError(
                    f"Invalid key: {key} must be a string under {MAX_METADATA_KEY} characters",
                    code="parameter_invalid_string",
                    param="metadata",
                )
            if len(value) > MAX_METADATA_VALUE:
                raise ParamError(
                    f"Metadata values can have up to {MAX_METADATA_VALUE} characters, but you "
                    f"passed in a value that is {len(value)} characters. Invalid value: "
                    f"{value[:40]}...",
                    code="parameter_invalid_string",
                    param=f"metadata[{key}]",
                )
    email = (params.get("provided_details") or {}).get("email")
    if email is not None and len(email) > MAX_EMAIL:
        raise ParamError(
            f"Invalid provided_details[email]: must be at most {MAX_EMAIL} characters",
            code="parameter_invalid_string",
            param="provided_details[email]",
        )


def _merge_metadata(current: dict[str, str], update: dict[str, str] | str) -> dict[str, str]:
    if update == "":
        return {}
    assert isinstance(update, dict)
    merged = dict(current)
    for key, value in update.items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    if len(merged) > MAX_METADATA_KEYS:
        raise ParamError(
            f"Metadata can have up to {MAX_METADATA_KEYS} keys, but you've set {len(merged)}. "
            "Remove some keys before adding new ones.",
            code="parameter_invalid_string",
            param="metadata",
        )
    return merged


def _apply(obj: dict[str, Any], params: dict[str, Any]) -> None:
    """Write validated update (or create) parameters into a session object."""
    if "metadata" in params:
        obj["metadata"] = _merge_metadata(obj["metadata"], params["metadata"])
    document = params.get("options", {}).get("document")
    if document == "":
        obj["options"] = {k: v for k, v in obj["options"].items() if k != "document"}
    elif document is not None:
        obj["options"] = {
            **obj["options"],
            "document": {**obj["options"].get("document", {}), **document},
        }
    if "provided_details" in params:  # validation refuses "" here: details cannot be unset
        obj["provided_details"] = {**(obj["provided_details"] or {}), **params["provided_details"]}
    if "type" in params:
        obj["type"] = params["type"]


async def _locked(world: World, session: Session) -> bool:
    """Take the session's write lock, waiting up to ``lock_wait_ms``; False on timeout."""
    lock = session.lock
    if lock.locked():
        wait = world.config.lock_wait_ms / 1000.0
        if wait <= 0:
            return False
        try:
            await asyncio.wait_for(lock.acquire(), wait)
        except TimeoutError:
            return False
        return True
    await lock.acquire()
    return True


def _lock_timeout() -> Result:
    return _fail(429, MESSAGES["lock_timeout"], code="lock_timeout", headers=dict(_RETRY))


async def execute(
    world: World,
    account: str,
    op: str,
    session_id: str | None,
    pairs: list[tuple[str, str]],
    fault: Fault,
    request_id: str,
) -> Result:
    """Validate and run one operation against the world; never raises for a client's mistake."""
    _request_id.set(request_id)
    try:
        params = validate(_TABLES[op], parse_pairs(pairs))
        _check_extras(params)
        expand = expansions(op, params.get("expand", ()))
        if op == "list":
            return _list(world, account, params, expand)
        if op == "create":
            return _create(world, account, params, expand)
        assert session_id is not None
        session = world.sessions.get(account, session_id)
        if session is None:
            return _missing(session_id)
        if op == "retrieve":
            if fault.latency:
                await asyncio.sleep(fault.latency)
            return Result(200, to_json(show(session, expand)))
        if not await _locked(world, session):
            return _lock_timeout()
        try:
            if fault.latency:
                await asyncio.sleep(fault.latency)
            return _write(world, session, op, params, expand)
        finally:
            session.lock.release()
    except ParamError as exc:
        return _fail(400, exc.message, code=exc.code, param=exc.param)


def _invalid_status(session: Session, action: str) -> Result:
    status = session.obj["status"]
    if session.obj["redaction"] is not None:
        message = f"You cannot {action} a redacted VerificationSession."
    else:
        message = (
            f"You can only {action} a VerificationSession with status requires_input; "
            f"this one is {status}."
        )
    return _fail(400, message, code="session_invalid_status", param="status", store=True)


def _write(
    world: World, session: Session, op: str, params: dict[str, Any], expand: frozenset[str]
) -> Result:
    obj = session.obj
    config = world.config
    if op == "update":
        redacted = obj["redaction"] is not None
        metadata_only = set(params) <= {"metadata", "expand"}
        allowed = obj["status"] == "requires_input" or config.allow_update_any_status
        allowed = allowed or (config.allow_metadata_update_any_status and metadata_only)
        if redacted or not allowed:
            return _invalid_status(session, "update")
        _apply(obj, params)
        world.stats.applied[session.id] += 1
        return Result(200, to_json(show(session, expand)), applied=True)
    if op == "cancel":
        if obj["status"] != "requires_input" or obj["redaction"] is not None:
            return _invalid_status(session, "cancel")
        cancel(session)
        return Result(200, to_json(show(session, expand)))
    if obj["redaction"] is None:
        if obj["status"] not in ("requires_input", "verified"):
            return _fail(
                400,
                "You can only redact a VerificationSession with status requires_input or "
                f"verified; this one is {obj['status']}.",
                code="session_invalid_status",
                param="status",
                store=True,
            )
        world.sessions.redact(session, config.redaction_seconds)
    return Result(200, to_json(show(session, expand)))


def _create(world: World, account: str, params: dict[str, Any], expand: frozenset[str]) -> Result:
    if "type" not in params and "verification_flow" not in params:
        raise ParamError("Missing required param: type.", code="parameter_missing", param="type")
    extra: dict[str, Any] = {
        name: params[name]
        for name in ("client_reference_id", "related_customer", "related_customer_account")
        if name in params
    }
    if "verification_flow" in params:
        extra["verification_flow"] = params["verification_flow"]
    probe: dict[str, Any] = {"metadata": {}, "options": {}, "provided_details": None}
    _apply(probe, {k: v for k, v in params.items() if k != "type"})
    session = world.sessions.create(
        account,
        type=params.get("type", "verification_flow"),
        metadata=probe["metadata"],
        options=probe["options"],
        provided_details=probe["provided_details"],
        extra=extra,
    )
    return Result(200, to_json(show(session, expand)))


def _list(world: World, account: str, params: dict[str, Any], expand: frozenset[str]) -> Result:
    limit = params.get("limit", 10)
    if not 1 <= limit <= 100:
        bound = "greater than or equal to 1" if limit < 1 else "less than or equal to 100"
        raise ParamError(
            f"This value must be {bound}.", code="parameter_invalid_integer", param="limit"
        )
    if "starting_after" in params and "ending_before" in params:
        raise ParamError(
            "You may only specify one of these parameters: ending_before, starting_after.",
            code="parameters_exclusive",
            param="ending_before",
        )
    equal = {
        name: params[name]
        for name in (
            "status",
            "client_reference_id",
            "related_customer",
            "related_customer_account",
        )
        if name in params
    }
    created = params.get("created")
    bounds: dict[str, int] = {"gte": created, "lte": created} if isinstance(created, int) else {}
    if isinstance(created, dict):
        bounds = created

    def match(obj: dict[str, Any]) -> bool:
        for name, value in equal.items():
            if obj.get(name) != value:
                return False
        stamp = obj["created"]
        return not (
            ("gt" in bounds and stamp <= bounds["gt"])
            or ("gte" in bounds and stamp < bounds["gte"])
            or ("lt" in bounds and stamp >= bounds["lt"])
            or ("lte" in bounds and stamp > bounds["lte"])
        )

    try:
        found, has_more = world.sessions.page(
            account,
            limit=limit,
            starting_after=params.get("starting_after"),
            ending_before=params.get("ending_before"),
            match=match if equal or bounds else None,
        )
    except LookupError as exc:
        param = "starting_after" if "starting_after" in params else "ending_before"
        return _missing(str(exc.args[0]), param)
    data = ",".join(json.dumps(show(s, expand), separators=(",", ":")) for s in found)
    body = (
        f'{{"object":"list","data":[{data}],"has_more":{"true" if has_more else "false"},'
        f'"url":"/v1/identity/verification_sessions"}}'
    )
    return Result(200, body.encode())
