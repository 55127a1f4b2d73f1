"""Serving the emulator with uvicorn: in a background thread (tests, benches) or in the foreground.

:class:`EmulatorServer` binds its socket itself, so ``port=0`` gives a free port known before
uvicorn starts. Its in-process methods (``reset``, ``seed``, ``configure``, ``stats``) run on the
server's event loop, so they never interleave with a request half-way through.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import uvicorn

from vsbatch.emulator.app import create_app
from vsbatch.emulator.config import EmulatorConfig
from vsbatch.emulator.state import Emulator

__all__ = ["EmulatorConfig", "EmulatorServer", "serve"]

T = TypeVar("T")
_INCOMPLETE = "ASGI callable returned without completing response."


class _DropNoise(logging.Filter):
    """Hide uvicorn's complaints about the responses the emulator drops on purpose, and the
    tracebacks of hung requests cut at shutdown (Ctrl-C during a ``hang`` fault)."""

    def filter(self, record: logging.LogRecord) -> bool:
        cut = record.exc_info is not None and isinstance(record.exc_info[1], asyncio.CancelledError)
        return record.msg != _INCOMPLETE and not cut


def _quiet_drops() -> None:
    uvicorn_error = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _DropNoise) for f in uvicorn_error.filters):
        uvicorn_error.addFilter(_DropNoise())


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


class EmulatorServer:
    """The emulator served by uvicorn in a daemon thread.

    Args:
        config: Start-up config (defaults: 25 requests/s, no faults, seed 0).
        host: Interface to listen on (loopback by default).
        port: TCP port; 0 picks a free one.
        sessions: ``requires_input`` sessions created at start-up and after every reset.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        sessions: int = 0,
    ) -> None:
        self.emulator = Emulator(config, sessions=sessions)
        self.app = create_app(self.emulator)
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:12345``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 10.0) -> EmulatorServer:
        """Serve in a background thread; return once the socket accepts connections.

        Raises:
            RuntimeError: The server did not start within ``timeout`` seconds.
        """
        _quiet_drops()
        sock = _bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        self._server = server

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            await server.serve(sockets=[sock])

        def run() -> None:
            with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
                runner.run(main())
            sock.close()

        self._thread = threading.Thread(target=run, name="vsbatch-emulator", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the emulator did not start on {self.url}")
            time.sleep(0.005)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Ask uvicorn to exit and wait for the thread (hung requests are cut after 1 s)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self._server = self._thread = self._loop = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _on_loop(self, action: Callable[[], T]) -> T:
        """Run ``action`` on the server's loop (directly when the server is not running)."""
        loop = self._loop
        if loop is None or not loop.is_running():
            return action()

        async def call() -> T:
            return action()

        return asyncio.run_coroutine_threadsafe(call(), loop).result(timeout=30)

    def reset(self, config: EmulatorConfig | None = None) -> None:
        """Throw away sessions, keys and stats; use ``config`` or the start-up config."""
        self._on_loop(lambda: self.emulator.reset(config))

    def configure(self, **fields: Any) -> EmulatorConfig:
        """Change config fields at run time (see :class:`EmulatorConfig`); return the new config."""
        return self._on_loop(lambda: self.emulator.configure(**fields))

    def seed(self, **fields: Any) -> list[str]:
        """Create sessions directly, like ``POST /_emulator/sessions``; return their ids.

        Args:
            **fields: ``count``, ``status``, ``metadata``, ``type``, ``account``, ``ids``,
                ``options``, ``provided_details``, ``redacted``, ``created``.
        """
        return self._on_loop(lambda: self.emulator.seed(**fields))

    def stats(self) -> dict[str, Any]:
        """The ``GET /_emulator/stats`` document."""
        return self._on_loop(self.emulator.stats)

    @property
    def config(self) -> EmulatorConfig:
        """The config in force."""
        return self.emulator.config


def serve(
    config: EmulatorConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 12111,
    sessions: int = 0,
    access_log: bool = False,
    emulator: Emulator | None = None,
    ready: Callable[[str], None] | None = None,
) -> None:
    """Run the emulator in the foreground until interrupted (Ctrl-C).

    The socket is bound and listening before ``ready`` is called, so whatever ``ready`` prints
    (the URL, the seeded ids) is only seen once connections are accepted.

    Args:
        config: Start-up config (ignored when ``emulator`` is given).
        host: Interface (loopback by default; the emulator has no real authentication).
        port: TCP port; 0 picks a free one (``ready`` receives the URL with the real port).
        sessions: ``requires_input`` sessions to create at start-up (ignored with ``emulator``).
        access_log: Log every request (off by default: it costs throughput).
        emulator: An emulator built (and seeded) by the caller.
        ready: Called with the base URL once the socket listens.

    Raises:
        OSError: The address cannot be bound (in use, not local, not permitted).
    """
    _quiet_drops()
    emulator = emulator or Emulator(config, sessions=sessions)
    sock = _bind(host, port)
    sock.listen(2048)
    shown = f"[{host}]" if ":" in host else host
    uv_config = uvicorn.Config(
        create_app(emulator),
        log_level="info",
        access_log=access_log,
        lifespan="off",
        ws="none",
        timeout_graceful_shutdown=1,
    )
    try:
        if ready is not None:
            ready(f"http://{shown}:{sock.getsockname()[1]}")
        uvicorn.Server(uv_config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
