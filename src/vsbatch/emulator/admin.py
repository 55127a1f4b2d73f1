"""The ``/_emulator`` admin routes (not Stripe's): stats, sessions, seeding, config and reset.

JSON in and out, no key, no rate limit, no faults; a bad body is a 400 with
``{"error": {"type": "invalid_request_error", "message": ...}}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from vsbatch.emulator.state import Emulator, SeedRequest, World

__all__ = ["Admin", "session_listing"]


class Admin:
    """The ``/_emulator`` routes (not Stripe's): stats, sessions, seeding, config and reset."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    async def stats(self, request: Request) -> Response:
        """``GET /_emulator/stats``."""
        return JSONResponse(self.emulator.stats())

    async def sessions(self, request: Request) -> Response:
        """``GET`` lists every session; ``POST`` a :class:`SeedRequest` -> ``{"ids": [...]}``."""
        if request.method == "GET":
            return JSONResponse(session_listing(self.emulator.world))
        return await _admin_call(
            request,
            lambda body: {"ids": self.emulator.world.seed(SeedRequest.model_validate(body))},
        )

    async def config(self, request: Request) -> Response:
        """``GET`` the config in force, or ``POST`` some fields to change it."""
        if request.method == "GET":
            return JSONResponse(self.emulator.config.model_dump())
        return await _admin_call(request, lambda body: self.emulator.configure(**body).model_dump())

    async def reset(self, request: Request) -> Response:
        """``POST /_emulator/reset``: start-up state and config."""
        self.emulator.reset()
        return JSONResponse({"reset": True, "config": self.emulator.config.model_dump()})


def session_listing(world: World) -> dict[str, Any]:
    """``GET /_emulator/sessions``: every session of every account, oldest first.

    Each entry has ``id``, ``account`` (null for the platform), ``status``, ``type``,
    ``metadata`` and ``redacted``; ``total`` counts them.
    """
    sessions = [
        {
            "id": session.id,
            "account": session.account or None,
            "status": session.obj["status"],
            "type": session.obj["type"],
            "metadata": session.obj["metadata"],
            "redacted": session.obj["redaction"] is not None,
        }
        for session in world.sessions
    ]
    return {"total": len(sessions), "sessions": sessions}


async def _admin_call(request: Request, action: Callable[[dict[str, Any]], object]) -> Response:
    try:
        body = json.loads(await request.body() or b"{}")
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object")
        return JSONResponse(action(body))
    except ValidationError as exc:
        message = str(exc.errors(include_url=False, include_context=False))
    except (ValueError, TypeError) as exc:
        message = str(exc)
    return JSONResponse({"error": {"type": "invalid_request_error", "message": message}}, 400)
