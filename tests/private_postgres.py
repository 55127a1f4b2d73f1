"""A PostgreSQL server of the test session's own: ``initdb`` and ``pg_ctl`` in a temporary
directory, on a free loopback port, stopped at the end of the session.

Used when no server is given (``VSBATCH_TEST_POSTGRES_URL``) or reachable on 5432, or when
``VSBATCH_TEST_POSTGRES_START=1`` asks for it. ``initdb`` refuses to run as root; then, as
without the binaries, :meth:`PrivatePostgres.start` raises :class:`Unavailable` with the reason.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

__all__ = ["PrivatePostgres", "Unavailable"]


class Unavailable(Exception):
    """No private server can be started here (the message says why)."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivatePostgres:
    """A throwaway cluster under ``root`` (trust authentication, fsync off: tests only)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "pgdata"
        self._pg_ctl: str | None = None

    def start(self) -> str:
        """Create and start the cluster; its URL (database ``postgres``, user ``postgres``).

        Raises:
            Unavailable: No ``initdb``/``pg_ctl`` on PATH, running as root, or they failed.
        """
        initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
        if not (initdb and pg_ctl):
            raise Unavailable("no initdb and pg_ctl on PATH to start a private server")
        if os.geteuid() == 0:
            raise Unavailable("initdb refuses to run as root, so no private server either")
        port = _free_port()
        options = f"-p {port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run([initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync"])
        log = self.root / "postgres.log"
        self._run(
            [pg_ctl, "-D", str(self.data), "-l", str(log), "-w", "-t", "60", "-o", options, "start"]
        )
        self._pg_ctl = pg_ctl
        return f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def stop(self) -> None:
        """Stop the server at once (its data is thrown away)."""
        if self._pg_ctl is not None:
            subprocess.run(
                [self._pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                capture_output=True,
                timeout=60,
                check=False,
            )
            self._pg_ctl = None

    @staticmethod
    def _run(args: list[str]) -> None:
        done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["?"]
            raise Unavailable(f"{Path(args[0]).name} failed: {last[0]}")
