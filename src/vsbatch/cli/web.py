"""The ``web`` command: the live dashboard in a browser (``vsbatch.web``).

Starlette and uvicorn are imported when the command runs, never by ``vsbatch --help``.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer

from vsbatch.cli.app import cli_settings, command
from vsbatch.errors import InputError, VsbatchError

if TYPE_CHECKING:
    from vsbatch.config import Settings
    from vsbatch.results.store import ResultsStore


@contextlib.contextmanager
def _results_store(settings: Settings) -> Iterator[ResultsStore | None]:
    """The results store for session history, or None (and a warning) when it cannot open."""
    from vsbatch.cli.app import err
    from vsbatch.ops.terminal_text import safe
    from vsbatch.results.store import ResultsStore

    try:
        store = ResultsStore.open(settings.results_database_url)
    except VsbatchError as exc:
        err().print(f"warning: session history from Redis only: {safe(str(exc))}", highlight=False)
        yield None
        return
    with store:
        yield store


PORTS = (0, 65535)  # 0: the system picks a free port (tests, a second dashboard)
REFRESH_SECONDS = (0.1, 60.0)  # below: a busy loop on Redis; above: not live any more


def _check_options(port: int, refresh: float) -> None:
    """One line (exit 2) for a port or refresh out of range, before anything is opened.

    Checked here rather than with typer's ``min``/``max``: those print a three-line usage
    block, and let ``nan`` through (no comparison with it is true).
    """
    if not PORTS[0] <= port <= PORTS[1]:
        raise InputError(f"--port {port}: out of range; use {PORTS[0]}..{PORTS[1]} (0: a free one)")
    if not (math.isfinite(refresh) and REFRESH_SECONDS[0] <= refresh <= REFRESH_SECONDS[1]):
        low, high = REFRESH_SECONDS
        raise InputError(f"--refresh {refresh}: out of range; use {low:g} to {high:g} seconds")


@command
def web(
    host: Annotated[
        str, typer.Option(help="Address to bind (loopback by default: whoever reaches it reads).")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="Port to listen on, 0..65535; 0 picks a free one.")
    ] = 12180,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(metavar="NAME", help="Another name the browser may use (repeatable)."),
    ] = None,
    refresh: Annotated[
        float, typer.Option(help="Seconds between two updates of the live counters (0.1 to 60).")
    ] = 1.0,
) -> None:
    """Serve the live dashboard: batches, rows, sessions; retry and cancel behind a token.

    Prints the URL and the access token (new at every start) on stdout; Ctrl-C stops it.
    """
    from vsbatch.web.app import create_app
    from vsbatch.web.auth import Guard, allowed_hosts, new_token
    from vsbatch.web.data import LedgerActions, LedgerReads
    from vsbatch.web.server import bind, serve, url_of
    from vsbatch.worker.runtime import deps_for

    _check_options(port, refresh)
    settings = cli_settings(need_key=False)
    try:  # first: a busy port is said before Redis or the results store are opened
        sock = bind(host, port)
    except OSError as exc:
        raise InputError(
            f"--host/--port: cannot listen on {host}:{port} ({exc.strerror or exc});"
            " pick another port (0 picks a free one)"
        ) from None
    with (
        contextlib.closing(sock),
        deps_for(settings, patient=False) as deps,
        _results_store(settings) as store,
    ):
        guard = Guard(new_token())
        hosts = allowed_hosts(host, allow_host or ())

        def ready() -> None:
            print(f"vsbatch web: {url_of(host, sock)}", flush=True)
            print(f"access token (retry and cancel ask for it): {guard.token}", flush=True)
            print("Ctrl-C stops it", file=sys.stderr, flush=True)

        serve(
            lambda stopping: create_app(
                LedgerReads(deps, store),
                LedgerActions(deps),
                guard,
                hosts,
                sock.getsockname()[1],
                interval=refresh,
                stopping=stopping,
            ),
            sock,
            ready,
        )
