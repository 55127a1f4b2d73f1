"""The Starlette app: Stripe's VerificationSession routes and the ``/_emulator`` admin routes.

Every ``/v1`` request goes through one pipeline: request id, API key (401), ``Stripe-Version``
(400 for a version Stripe never released; echoed), ``Stripe-Account`` (403 ``account_invalid``
for an account the emulator was not given), rate limit (429 ``rate_limit``, nothing stored),
fault draw (updates, and reads when ``faults_on_reads``), idempotency (replay, 400
``idempotency_error``, 409 ``idempotency_key_in_use``), validation (400, nothing stored), then
execution under the session's lock (429 ``lock_timeout`` if busy, nothing stored). Results of
executed writes (200, 404, status 400s and injected 500s) are stored under their idempotency key.

A ``gateway`` fault puts a proxy in front of that pipeline: the client gets the gateway's answer
(HTML 502/504, an HTML 200, or another session's JSON), while the request may still run through
Stripe's pipeline behind it, at once or ``gateway_delay_seconds`` later, with its answer stored
under the idempotency key as usual and never shown to the client.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from vsbatch.emulator import operations
from vsbatch.emulator.admin import Admin
from vsbatch.emulator.faults import NO_FAULT, Fault, FaultKind
from vsbatch.emulator.operations import Result
from vsbatch.emulator.state import PLATFORM, Emulator, IdempotencyEntry, World
from vsbatch.emulator.versions import API_VERSION, accepted_version
from vsbatch.emulator.views import show
from vsbatch.emulator.wire import (
    MESSAGES,
    DroppedResponse,
    api_key,
    api_key_error,
    error_body,
    gateway_page,
    new_request_id,
    redact_key,
    to_json,
)

__all__ = ["API_VERSION", "create_app"]

_PREFIX = "/v1/identity/verification_sessions"
_READS = frozenset({"list", "retrieve"})
# The id a misrouted answer (gateway_answer "200_other_session") carries instead of the caller's.
OTHER_SESSION_ID = "vs_1MisroutedAnswer0000000"
logger = logging.getLogger("vsbatch.emulator")


@dataclass(slots=True)
class _Call:
    """One API request as the pipeline sees it."""

    world: World
    request_id: str
    account: str
    path: str
    idempotency_key: str | None
    headers: dict[str, str] = field(default_factory=dict)
    hidden: bool = False  # run behind a gateway: its answer never reaches the client

    def respond(self, status: int, body: bytes, extra: dict[str, str] | None = None) -> Response:
        if not self.hidden:
            self.world.stats.requests[str(status)] += 1
        headers = self.headers if extra is None else {**self.headers, **extra}
        return Response(body, status, headers, "application/json")

    def error(
        self,
        status: int,
        type: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> Response:
        body = error_body(self.request_id, type, message, code=code, param=param)
        return self.respond(status, body, extra)


class _Api:
    """Handlers bound to one :class:`Emulator` (whose world a reset may swap at any time)."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        # Requests Stripe executes after a gateway answered; referenced so they are not lost.
        self._behind: set[asyncio.Task[None]] = set()

    def _begin(self, request: Request) -> tuple[_Call, Response | None]:
        world = self.emulator.world
        request_id = new_request_id()
        headers = {"Request-Id": request_id, "Stripe-Version": API_VERSION}
        key = request.headers.get("idempotency-key")
        if key is not None:
            headers["Idempotency-Key"] = key
        account = request.headers.get("stripe-account") or PLATFORM
        call = _Call(world, request_id, account, request.url.path, key, headers)
        authorization = request.headers.get("authorization")
        refusal = api_key_error(authorization)
        if refusal is not None:
            return call, call.error(401, "invalid_request_error", refusal)
        asked = request.headers.get("stripe-version")
        version = accepted_version(asked, world.config.api_versions)
        if version is None:
            message = f"Invalid Stripe API version: {asked}"
            return call, call.error(400, "invalid_request_error", message)
        headers["Stripe-Version"] = version
        if account not in world.accounts:
            key = redact_key(api_key(authorization))
            message = MESSAGES["account_invalid"].format(key=key, account=account)
            return call, call.error(403, "invalid_request_error", message, code="account_invalid")
        if not world.limiter.allow(account):
            world.stats.rate_limited += 1
            message = MESSAGES["rate_limit"]
            return call, call.error(429, "invalid_request_error", message, code="rate_limit")
        return call, None

    async def collection(self, request: Request) -> Response:
        """``GET`` lists, ``POST`` creates."""
        op = "list" if request.method == "GET" else "create"
        return await self._serve(request, op, None)

    async def one(self, request: Request) -> Response:
        """``GET`` retrieves, ``POST`` updates."""
        op = "retrieve" if request.method == "GET" else "update"
        return await self._serve(request, op, request.path_params["session_id"])

    async def cancel(self, request: Request) -> Response:
        """``POST .../{id}/cancel``."""
        return await self._serve(request, "cancel", request.path_params["session_id"])

    async def redact(self, request: Request) -> Response:
        """``POST .../{id}/redact``."""
        return await self._serve(request, "redact", request.path_params["session_id"])

    async def _serve(self, request: Request, op: str, session_id: str | None) -> Response:
        call, early = self._begin(request)
        if early is not None:
            return early
        try:
            return await self._pipeline(call, request, op, session_id)
        except ClientDisconnect:
            # The client hung up before its body arrived (a killed worker): nothing ran, and
            # nobody is left to answer.
            logger.info("client left before its request body: %s %s", request.method, call.path)
            return Response(status_code=499)
        except Exception:
            logger.exception("emulator failure in %s %s", request.method, call.path)
            message = MESSAGES["api_error"]
            return call.error(500, "api_error", message, extra={"Stripe-Should-Retry": "true"})

    async def _pipeline(
        self, call: _Call, request: Request, op: str, session_id: str | None
    ) -> Response:
        world = call.world
        config = world.config
        if op in _READS:
            raw = request.scope["query_string"].decode("latin-1")
        else:
            raw = (await request.body()).decode("utf-8", "replace")
        pairs = parse_qsl(raw, keep_blank_values=True)
        fault = NO_FAULT
        if op == "update" or (op in _READS and config.faults_on_reads):
            if op == "update":
                world.stats.updates += 1
            fault = world.faults.draw(call.account, request.method, call.path)
            if fault.kind is not FaultKind.NONE:
                world.stats.faults[fault.kind.value] += 1
            refused = await self._refuse(call, fault)
            if refused is not None:
                return refused
            if fault.kind is FaultKind.GATEWAY:
                return await self._gateway(call, op, session_id, pairs, fault)
        return await self._stripe(call, op, session_id, pairs, fault)

    async def _stripe(
        self,
        call: _Call,
        op: str,
        session_id: str | None,
        pairs: list[tuple[str, str]],
        fault: Fault,
    ) -> Response:
        """Idempotency, execution and the faults that strike after it: what Stripe itself does."""
        hang = call.world.config.hang_seconds  # the config in force before execution
        key = call.idempotency_key if op not in _READS else None
        entry = None if key is None else _claim_key(call, key, pairs)
        if isinstance(entry, Response):
            return entry  # the key's stored answer replayed, or the key refused
        try:
            result = await operations.execute(
                call.world, call.account, op, session_id, pairs, fault, call.request_id
            )
        except BaseException:
            if entry is not None and key is not None:
                call.world.idempotency.release(call.account, key, entry)
            raise
        if fault.kind is FaultKind.FAIL_500_AFTER and (result.applied or op in _READS):
            body = error_body(call.request_id, "api_error", MESSAGES["api_error"])
            result = Result(500, body, {"Stripe-Should-Retry": "false"}, store=True)
        if entry is not None and key is not None:
            _settle_key(call, key, entry, result)
        return await _answer(call, result, fault, hang)

    async def _gateway(
        self,
        call: _Call,
        op: str,
        session_id: str | None,
        pairs: list[tuple[str, str]],
        fault: Fault,
    ) -> Response:
        """A gateway answers in Stripe's place; Stripe may still execute the request behind it."""
        world = call.world
        config = world.config
        if fault.applies:
            behind = self._stripe(replace(call, hidden=True), op, session_id, pairs, fault)
            if config.gateway_delay_seconds > 0:
                world.stats.gateway_pending += 1
                task = asyncio.create_task(self._later(world, config.gateway_delay_seconds, behind))
                self._behind.add(task)
                task.add_done_callback(self._behind.discard)
            else:
                await behind
        answer = config.gateway_answer
        status = int(answer) if answer.isdigit() else 200
        world.stats.requests[str(status)] += 1
        if answer == "200_other_session":
            session = world.sessions.get(call.account, session_id or "")
            obj = show(session) if session is not None else {"status": "requires_input"}
            obj.update(id=OTHER_SESSION_ID, object="identity.verification_session")
            return Response(to_json(obj), status, media_type="application/json")
        return Response(gateway_page(status), status, media_type="text/html")

    @staticmethod
    async def _later(world: World, delay: float, behind: Coroutine[Any, Any, Response]) -> None:
        """Run a gatewayed request at Stripe ``delay`` seconds after the gateway answered."""
        try:
            await asyncio.sleep(delay)
            await behind
        except Exception:
            logger.exception("emulator failure behind a gateway")
        finally:
            world.stats.gateway_pending -= 1

    async def _refuse(self, call: _Call, fault: Fault) -> Response | None:
        """Faults that strike before execution (nothing applied, nothing stored)."""
        config = call.world.config
        retry = {"Stripe-Should-Retry": "true"}
        if fault.kind is FaultKind.FAIL_503:
            return call.error(503, "api_error", MESSAGES["unavailable"], extra=retry)
        if fault.kind is FaultKind.LOCK_TIMEOUT:
            call.world.stats.lock_timeouts += 1
            message = MESSAGES["lock_timeout"]
            return call.error(
                429, "invalid_request_error", message, code="lock_timeout", extra=retry
            )
        if fault.kind is FaultKind.DROP and not fault.applies:
            call.world.stats.dropped += 1
            return DroppedResponse(call.headers)
        if fault.kind is FaultKind.HANG and not fault.applies:
            await asyncio.sleep(config.hang_seconds)
            return call.error(503, "api_error", MESSAGES["unavailable"], extra=retry)
        return None

    async def unknown(self, request: Request) -> Response:
        """Stripe's 404 for a URL or method it does not route."""
        call = _Call(self.emulator.world, new_request_id(), PLATFORM, request.url.path, None)
        call.headers["Request-Id"] = call.request_id
        message = (
            f"Unrecognized request URL ({request.method}: {request.url.path}). Please see "
            "https://stripe.com/docs or we can help at https://support.stripe.com/."
        )
        return call.error(404, "invalid_request_error", message)


def _claim_key(call: _Call, key: str, pairs: list[tuple[str, str]]) -> Response | IdempotencyEntry:
    """Claim an idempotency key, or the answer instead: a replay or an idempotency error."""
    if len(key) > 255:
        message = "Idempotency keys can be at most 255 characters long."
        return call.error(400, "invalid_request_error", message, param="Idempotency-Key")
    fingerprint = (call.path, tuple(sorted(pairs)))
    stored = call.world.idempotency.get(call.account, key)
    if stored is None:
        return call.world.idempotency.claim(call.account, key, fingerprint, call.request_id)
    if stored.fingerprint != fingerprint:
        call.world.stats.idempotency_mismatches += 1
        message = MESSAGES["idempotency_mismatch"].format(key=key)
        return call.error(400, "idempotency_error", message)
    if not stored.done:
        call.world.stats.idempotency_conflicts += 1
        message = MESSAGES["idempotency_in_use"].format(key=key)
        return call.error(409, "idempotency_error", message, code="idempotency_key_in_use")
    call.world.stats.replayed += 1
    # Stripe names the request whose answer it replays.
    extra = {**stored.headers, "Idempotent-Replayed": "true", "Original-Request": stored.request_id}
    return call.respond(stored.status, stored.body, extra)


def _settle_key(call: _Call, key: str, entry: IdempotencyEntry, result: Result) -> None:
    """Store a result a retry must replay; forget the claim of one it must run again."""
    if result.store:
        entry.done = True
        entry.status, entry.body, entry.headers = result.status, result.body, result.headers
    else:
        call.world.idempotency.release(call.account, key, entry)


async def _answer(call: _Call, result: Result, fault: Fault, hang_seconds: float) -> Response:
    """The executed request's answer, unless a hang delays it or a drop loses it."""
    if fault.kind is FaultKind.HANG:
        await asyncio.sleep(hang_seconds)
    if fault.kind is FaultKind.DROP:
        call.world.stats.dropped += 1
        return DroppedResponse(call.headers)
    if result.status == 429:
        call.world.stats.lock_timeouts += 1
    return call.respond(result.status, result.body, result.headers or None)


def create_app(emulator: Emulator | None = None) -> Starlette:
    """Build the ASGI app around an emulator (a fresh default one when None)."""
    emulator = emulator or Emulator()
    api = _Api(emulator)
    admin = Admin(emulator)
    everything = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    routes = [
        Route(_PREFIX, api.collection, methods=["GET", "POST"]),
        Route(_PREFIX + "/{session_id}", api.one, methods=["GET", "POST"]),
        Route(_PREFIX + "/{session_id}/cancel", api.cancel, methods=["POST"]),
        Route(_PREFIX + "/{session_id}/redact", api.redact, methods=["POST"]),
        Route("/_emulator/stats", admin.stats, methods=["GET"]),
        Route("/_emulator/sessions", admin.sessions, methods=["GET", "POST"]),
        Route("/_emulator/config", admin.config, methods=["GET", "POST"]),
        Route("/_emulator/reset", admin.reset, methods=["POST"]),
    ]
    routes.append(Route("/{path:path}", api.unknown, methods=everything))
    app = Starlette(routes=routes)
    app.state.emulator = emulator
    return app
