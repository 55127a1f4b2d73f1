"""The ``web`` command: the live dashboard in a browser (``vsbatch.web``).

Starlette and uvicorn are imported when the command runs, never by ``vsbatch --help``.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from vsbatch.cli.app import cli_settings, command
from vsbatch.errors import InputError


@command
def web(
    host: Annotated[
        str, typer.Option(help="Address to bind (loopback by default: whoever reaches it reads).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on; 0 picks a free one.")] = 12180,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(help="Another name the browser may use for this server (repeatable)."),
    ] = None,
    refresh: Annotated[
        float, typer.Option(min=0.1, help="Seconds between two updates of the live counters.")
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

    settings = cli_settings(need_key=False)
    with deps_for(settings) as deps:
        try:
            sock = bind(host, port)
        except OSError as exc:
            raise InputError(
                f"--host/--port: cannot listen on {host}:{port} ({exc.strerror or exc});"
                " pick another port (0 picks a free one)"
            ) from None
        guard = Guard(new_token())
        hosts = allowed_hosts(host, allow_host or ())

        def ready() -> None:
            print(f"vsbatch web: {url_of(host, sock)}", flush=True)
            print(f"access token (retry and cancel ask for it): {guard.token}", flush=True)
            print("Ctrl-C stops it", file=sys.stderr, flush=True)

        serve(
            lambda stopping: create_app(
                LedgerReads(deps),
                LedgerActions(deps),
                guard,
                hosts,
                interval=refresh,
                stopping=stopping,
            ),
            sock,
            ready,
        )
