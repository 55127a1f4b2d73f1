"""Serving the dashboard: uvicorn on a socket bound here (loopback unless told otherwise).

The socket is bound and listening before the URL and the token are printed, so whoever reads
them (a person, a test) can connect at once. Ctrl-C stops the server: open live streams end
at their next tick, and the command returns without a traceback.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

from vsbatch.signals import sigterm_as_interrupt

if TYPE_CHECKING:
    from starlette.types import ASGIApp

__all__ = ["bind", "serve", "url_of"]

GRACE_SECONDS = 3  # open streams end at their next tick (1 s by default)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0 picks a free one).

    Raises:
        OSError: The address cannot be bound (in use, not local, not permitted).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def url_of(host: str, sock: socket.socket) -> str:
    """The URL a browser opens for the server on ``sock`` (a wildcard bind shows loopback)."""
    shown = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(host, f"[{host}]" if ":" in host else host)
    return f"http://{shown}:{sock.getsockname()[1]}/"


def serve(
    build: Callable[[Callable[[], bool]], ASGIApp],
    sock: socket.socket,
    ready: Callable[[], None],
) -> None:
    """Serve the app on ``sock`` in the foreground until Ctrl-C or SIGTERM (then return).

    Args:
        build: Builds the app, given a function telling whether the server is stopping (live
            streams end when it is).
        sock: The listening socket (:func:`bind`); closed on return.
        ready: Called once the socket listens, before serving (prints the URL and token).
    """
    import uvicorn

    holder: list[uvicorn.Server] = []
    app = build(lambda: bool(holder) and holder[0].should_exit)
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        ws="none",
        timeout_graceful_shutdown=GRACE_SECONDS,
    )
    server = uvicorn.Server(config)
    holder.append(server)
    # uvicorn re-raises the signal that stopped it once it has shut down: SIGTERM's default
    # action would kill the process before the embedded Redis and the store are closed.
    try:
        with sigterm_as_interrupt():
            ready()
            server.run(sockets=[sock])
    except KeyboardInterrupt:  # the Ctrl-C (or SIGTERM) uvicorn handled: we are done
        pass
    finally:
        sock.close()
