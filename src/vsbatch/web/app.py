"""The dashboard's routes (Starlette): pages, the live stream, the failures CSV, the actions.

Pages are read-only GETs. The two actions (retry, cancel) are POSTs checked by
:mod:`vsbatch.web.auth` in this order: same origin, CSRF cookie, access token; any failure is
a 403 page that says which, and nothing is done. Every response carries a strict
Content-Security-Policy (own origin only, no inline script, no framing) and ``no-store``.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from vsbatch.errors import NotFoundError, VsbatchError
from vsbatch.model.row import Outcome
from vsbatch.web import pages
from vsbatch.web.auth import Guard, HostCheck, same_origin
from vsbatch.web.data import Actions, Reads, RowFilter

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["create_app"]

ROWS_SHOWN = 500  # rows on a batch page: the CSV and ``vsbatch report`` have them all
HISTORY_SHOWN = 200
FORM_BYTES = 16 << 10  # an action's form is two short fields
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self';"
        b" connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),  # no-referrer would make Origin "null"
    (b"cache-control", b"no-store"),
]


class SecurityHeaders:
    """ASGI middleware adding :data:`SECURITY_HEADERS` to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, sending)


def _html(body: str, status: int = 200) -> Response:
    from starlette.responses import HTMLResponse

    return HTMLResponse(body, status_code=status)


def _refused(line: str, status: int = 403) -> Response:
    return _html(pages.message_page("Refused", line), status)


def _filter(query: Any) -> RowFilter:
    raw = query.get("outcome", "")
    outcome = Outcome(raw) if raw in {o.value for o in Outcome} else None
    return RowFilter(outcome, query.get("reason", "")[:200], query.get("session", "")[:200])


async def _form(request: Request) -> dict[str, str] | None:
    """The urlencoded form of an action (None when it is not one, or too big)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_BYTES:
            return None
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


class Routes:
    """The endpoints, bound to the reads, the actions and the guard they use."""

    def __init__(
        self,
        reads: Reads,
        actions: Actions,
        guard: Guard,
        *,
        interval: float,
        stopping: Callable[[], bool],
    ) -> None:
        self.reads = reads
        self.actions = actions
        self.guard = guard
        self.interval = interval
        self.stopping = stopping

    def index(self, request: Request) -> Response:
        live = self.reads.feed()()
        return _html(pages.index_page(self.reads.batches(), live, self.reads.archived_batches()))

    def batch(self, request: Request, notice: str = "", status: int = 200) -> Response:
        batch_id = request.path_params["batch_id"]
        wanted = _filter(request.query_params)
        batch = self.reads.batch(batch_id)
        rows = self.reads.rows(batch_id, wanted, ROWS_SHOWN)
        csrf = self.guard.csrf_value(request)
        page = pages.batch_page(
            batch, rows, wanted=wanted, limit=ROWS_SHOWN, csrf=csrf, notice=notice
        )
        response = _html(page, status)
        self.guard.set_csrf(response, csrf)
        return response

    def session(self, request: Request) -> Response:
        session_id = request.path_params["session_id"]
        rows = self.reads.session_history(session_id, HISTORY_SHOWN)
        return _html(pages.session_page(session_id, rows, self.reads.history_source))

    def failures(self, request: Request) -> Response:
        from starlette.responses import Response

        from vsbatch.intake.csv_writers import write_failures

        batch_id = request.path_params["batch_id"]
        out = io.StringIO(newline="")
        write_failures(self.reads.failures(batch_id), out)
        name = re.sub(r"[^A-Za-z0-9_-]", "_", batch_id)
        disposition = f'attachment; filename="{name}-failures.csv"'
        headers = {"content-disposition": disposition}
        return Response(out.getvalue(), media_type="text/csv", headers=headers)

    async def events(self, request: Request) -> Response:
        from starlette.responses import StreamingResponse

        from vsbatch.web.events import counters_stream

        async def gone() -> bool:
            return self.stopping() or await request.is_disconnected()

        stream = counters_stream(self.reads.feed(), self.interval, gone)
        return StreamingResponse(stream, media_type="text/event-stream")

    async def retry(self, request: Request) -> Response:
        return await self._act(request, self._retry)

    async def cancel(self, request: Request) -> Response:
        return await self._act(request, self._cancel)

    def _retry(self, request: Request) -> Response:
        from starlette.responses import RedirectResponse

        started = self.actions.retry(request.path_params["batch_id"])
        if started.child_id is None:
            return self.batch(request, notice=started.message)
        return RedirectResponse(f"/batches/{started.child_id}", status_code=303)

    def _cancel(self, request: Request) -> Response:
        line = self.actions.cancel(request.path_params["batch_id"])
        return self.batch(request, notice=line)

    async def _act(self, request: Request, action: Callable[[Request], Response]) -> Response:
        """Check origin, CSRF and token, then run ``action`` in a thread (it blocks on Redis)."""
        import anyio

        if not same_origin(request):
            return _refused("refused: a request from another site or origin")
        form = await _form(request)
        if form is None:
            return _refused("refused: not a form of this dashboard", 400)
        if not self.guard.csrf_ok(request, form.get("csrf")):
            return _refused("refused: the form is stale or came from elsewhere; reload the page")
        if not self.guard.token_ok(form.get("token")):
            return _refused("refused: wrong access token (use the one 'vsbatch web' printed)")
        return await anyio.to_thread.run_sync(action, request)


def _not_found(request: Request, exc: Exception) -> Response:
    return _html(pages.message_page("Not found", str(exc)), 404)


def _failed(request: Request, exc: Exception) -> Response:
    """A vsbatch error (its one line), or Redis out of reach (its type: its text may name
    the server), as a 503 page instead of a traceback."""
    if isinstance(exc, VsbatchError):
        return _html(pages.message_page("Unavailable", str(exc)), 503)
    line = f"the ledger could not be read ({type(exc).__name__}): is Redis up?"
    return _html(pages.message_page("Unavailable", line), 503)


def create_app(
    reads: Reads,
    actions: Actions,
    guard: Guard,
    hosts: frozenset[str],
    port: int,
    *,
    interval: float = 1.0,
    stopping: Callable[[], bool] = lambda: False,
) -> Starlette:
    """The dashboard application.

    Args:
        reads: Where pages read batches, rows and live counters.
        actions: What the buttons do.
        guard: The access token (and CSRF checks) actions need.
        hosts: The names the Host header may carry (:func:`vsbatch.web.auth.allowed_hosts`).
        port: The port served, the only one the Host header may name.
        interval: Seconds between two messages of the live stream.
        stopping: Whether the server is shutting down (live streams then end).
    """
    import redis
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    routes = Routes(reads, actions, guard, interval=interval, stopping=stopping)
    return Starlette(
        routes=[
            Route("/", routes.index),
            Route("/events", routes.events),
            Route("/batches/{batch_id}", routes.batch),
            Route("/batches/{batch_id}/failures.csv", routes.failures),
            Route("/batches/{batch_id}/retry", routes.retry, methods=["POST"]),
            Route("/batches/{batch_id}/cancel", routes.cancel, methods=["POST"]),
            Route("/sessions/{session_id:path}", routes.session),
            Mount("/static", StaticFiles(packages=[("vsbatch.web", "static")]), name="static"),
        ],
        middleware=[Middleware(HostCheck, hosts=hosts, port=port), Middleware(SecurityHeaders)],
        exception_handlers={
            NotFoundError: _not_found,
            VsbatchError: _failed,
            redis.RedisError: _failed,
        },
    )
