"""One embedded Redis per data directory, shared by every vsbatch process that uses it.

``vsbatch run``, ``worker``, ``beat``, ``status``... started without ``VSBATCH_REDIS_URL``
all use the server under ``<data_dir>/redis``. Two file locks (``flock``, released by the
kernel when a process dies, even by SIGKILL) keep it to one server:

- ``users.lock``: every process using the server holds it shared for its lifetime;
- ``owner.lock``: one process at a time holds it exclusively. Only that process (the owner)
  starts the server, restarts it when it dies (same port, same append-only file, same
  password) and stops it.

Lifetime: the server outlives the process that started it while others use it. A process
that leaves tries to become the owner (if it is not already); an owner that leaves stops the
server only when it can take ``users.lock`` exclusively, that is when nobody else uses it;
otherwise it leaves the server running and releases ``owner.lock``, and the watchdog of a
remaining process takes it over within a second. The server runs in its own session, so it
survives an owner killed by SIGKILL; the next process adopts it.

``server.json`` (``0600``) records the port and the pid; the password is in ``password``
(``0600``), both in the ``0700`` directory.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import json
import os
import threading
import time
from pathlib import Path
from typing import IO

from vsbatch.config import Settings
from vsbatch.errors import ConfigError
from vsbatch.store.embedded_redis import EmbeddedRedis, private_dir

STATE_FILE = "server.json"
WATCH_INTERVAL = 0.5
# How long a leaving owner waits for other users to go too (two processes ending together).
LEAVE_GRACE = 1.0


class LocalRedis:
    """This process's share of the embedded server of one data directory.

    Args:
        data_dir: The embedded server's directory (``<settings.data_dir>/redis``).
        attach_timeout: How long to wait for the owner's server to answer.
    """

    def __init__(self, data_dir: Path, *, attach_timeout: float = 30.0) -> None:
        self.data_dir = private_dir(Path(data_dir).resolve())
        self.attach_timeout = attach_timeout
        self.server: EmbeddedRedis | None = None
        self._users: IO[bytes] | None = None
        self._owner: IO[bytes] | None = None
        self._lock = threading.Lock()  # the watchdog and close() both act as owner
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The server's URL, password included (for clients only)."""
        if self.server is None:
            raise ConfigError("the embedded Redis is not open")
        return self.server.url

    @property
    def owner(self) -> bool:
        """True while this process owns the server (starts, restarts and stops it)."""
        return self._owner is not None

    def open(self) -> LocalRedis:
        """Use the directory's server: start it if nobody runs it, attach otherwise."""
        try:
            self._users = _lock_file(self.data_dir / "users.lock")
        except OSError as exc:
            raise data_dir_error(self.data_dir, exc) from None
        fcntl.flock(self._users, fcntl.LOCK_SH)  # waits while a leaving owner stops it
        try:
            with self._lock:
                if not self._try_own():
                    self.server = self._attach()
        except OSError as exc:
            self.close()
            raise data_dir_error(self.data_dir, exc) from None
        except BaseException:
            self.close()
            raise
        self._watchdog = threading.Thread(
            target=self._watch, name="vsbatch-embedded-redis", daemon=True
        )
        self._watchdog.start()
        _open.add(self)
        return self

    def close(self) -> None:
        """Leave: stop the server if nobody else uses it, else leave it to them."""
        self._stop.set()
        _open.discard(self)
        if self._watchdog is not None and self._watchdog is not threading.current_thread():
            self._watchdog.join(timeout=5)
        with self._lock:
            if self._users is None:
                return
            if not self.owner:
                # Gone as a user first, so that an owner leaving at this moment sees it.
                fcntl.flock(self._users, fcntl.LOCK_UN)
                self._try_own(start=False)
            if self.owner:
                self._leave_as_owner()
            _release(self._users)
            self._users = None

    def abandon(self) -> None:
        """A hard exit is coming (a second Ctrl-C): stop the server if we alone use it.

        Never blocks (it may run in a signal handler, while ``close`` holds its lock): the
        server gets SIGTERM, writes its append-only file and exits on its own.
        """
        users, server = self._users, self.server
        if not self.owner or users is None or server is None:
            return
        with contextlib.suppress(OSError):
            fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
            server.terminate()

    def _try_own(self, *, start: bool = True) -> bool:
        """Become the owner if nobody is; adopt or (``start``) start the server."""
        handle = _lock_file(self.data_dir / "owner.lock")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._owner = handle
        port, pid = self._read_state()
        server = EmbeddedRedis(self.data_dir, port=port)
        if pid is not None and server.adopt(pid).alive() and _serves(server):
            # Alive is enough: a server busy loading its append-only file answers late.
            self.server = server
        elif start:
            self.server = self._start(server)
        return True

    def _start(self, server: EmbeddedRedis) -> EmbeddedRedis:
        if server.pid is not None:
            server.kill()  # a server that no longer answers must not write the AOF too
        server.start()
        state = json.dumps({"port": server.port, "pid": server.pid})
        temp = self.data_dir / f".{STATE_FILE}.{os.getpid()}"
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(state)
            temp.replace(self.data_dir / STATE_FILE)
        except OSError as exc:
            # A server nobody can find (no state file) must not run: the next process would
            # start a second one on the same append-only file.
            server.kill()
            temp.unlink(missing_ok=True)
            raise data_dir_error(self.data_dir, exc) from None
        return server

    def _attach(self) -> EmbeddedRedis:
        """The owner's server, once it answers (the owner may still be starting it)."""
        deadline = time.monotonic() + self.attach_timeout
        while True:
            port, pid = self._read_state()
            if port is not None and pid is not None:
                server = EmbeddedRedis(self.data_dir, port=port).adopt(pid)
                if server.answers():
                    return server
            if time.monotonic() > deadline:
                raise ConfigError(
                    f"another vsbatch process holds {self.data_dir / 'owner.lock'} but its"
                    f" embedded Redis does not answer: stop that process, or set"
                    " VSBATCH_REDIS_URL"
                )
            time.sleep(0.1)

    def _read_state(self) -> tuple[int | None, int | None]:
        try:
            state = json.loads((self.data_dir / STATE_FILE).read_text(encoding="utf-8"))
            return int(state["port"]), int(state["pid"])
        except FileNotFoundError:
            return None, None
        except (OSError, ValueError, KeyError, TypeError):
            return None, None

    def _watch(self) -> None:
        """Take over a departed owner's server; restart it if it dies (as owner)."""
        while not self._stop.wait(WATCH_INTERVAL):
            with self._lock:
                if self._stop.is_set():
                    return
                with contextlib.suppress(ConfigError, OSError):
                    if self.owner or self._try_own():
                        self._keep_alive()

    def _keep_alive(self) -> None:
        server = self.server
        # Restart on death only: a busy server that answers a PING late is still the one.
        if server is None or not server.alive():
            # Same port and password: clients reconnect to it without noticing.
            port = server.port if server is not None else self._read_state()[0]
            self.server = self._start(
                server if server is not None else EmbeddedRedis(self.data_dir, port=port)
            )

    def _leave_as_owner(self) -> None:
        users = self._users
        assert users is not None and self._owner is not None
        if _lock_within(users, LEAVE_GRACE):
            if self.server is not None:
                self.server.stop()
            (self.data_dir / STATE_FILE).unlink(missing_ok=True)
        # Otherwise someone still uses the server: it stays, and their watchdog takes it over.
        _release(self._owner)
        self._owner = None

    def __enter__(self) -> LocalRedis:
        return self.open()

    def __exit__(self, *_: object) -> None:
        self.close()


_open: set[LocalRedis] = set()


def abandon_all() -> None:
    """:meth:`LocalRedis.abandon` every share this process has open (before ``os._exit``)."""
    for local in list(_open):
        local.abandon()


def for_process(settings: Settings) -> Settings:
    """``settings`` with a Redis URL: the configured one, or the data directory's embedded
    server, used until this process exits (the application API and plain ``celery`` workers).
    """
    if settings.redis_url:
        return settings
    local = share_for(settings).open()
    atexit.register(local.close)
    return settings.model_copy(update={"redis_url": local.url})


def share_for(settings: Settings) -> LocalRedis:
    """The (unopened) share of the embedded server of ``settings.data_dir``.

    Raises:
        ConfigError: the data directory cannot be made or used (a file, not writable, a full
            disk): one line naming ``VSBATCH_DATA_DIR``.
    """
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return LocalRedis(settings.data_dir / "redis")
    except OSError as exc:
        raise data_dir_error(settings.data_dir, exc) from None


def data_dir_error(path: Path, exc: OSError) -> ConfigError:
    """One line for a data directory vsbatch cannot use, naming the setting and the fix."""
    if exc.errno == errno.ENOSPC:
        why = "its disk is full: free space there"
    elif exc.errno in (errno.EEXIST, errno.ENOTDIR):
        why = "a file is in the way: move it"
    else:
        why = f"{exc.strerror or exc}: make it a writable directory"
    return ConfigError(
        f"cannot use the data directory {path} ({why}), or set VSBATCH_DATA_DIR to another"
        " one (or VSBATCH_REDIS_URL to a Redis server)"
    )


def _lock_file(path: Path) -> IO[bytes]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    return os.fdopen(fd, "r+b")


def _serves(server: EmbeddedRedis) -> bool:
    """False when the recorded pid is certainly not our server (a reused pid): on Linux its
    working directory must be the data directory; elsewhere it must answer our password."""
    try:
        return Path(os.readlink(f"/proc/{server.pid}/cwd")) == server.data_dir
    except OSError:
        return server.answers()


def _lock_within(handle: IO[bytes], seconds: float) -> bool:
    """Take ``handle``'s lock exclusively, trying for up to ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)


def _release(handle: IO[bytes]) -> None:
    with contextlib.suppress(OSError):
        fcntl.flock(handle, fcntl.LOCK_UN)
    handle.close()
