"""A small Redis client for the reads ``vsbatch status`` makes, and the embedded server's PING.

Why: importing redis-py costs about 0.16 s of CPU even from bytecode, over a third of what a
plain ``vsbatch status`` took: its package imports the asyncio client, cluster support and a mixin
per command family. ``status`` sends a handful of reads (``HGETALL``, ``ZREVRANGE``,
``SMEMBERS``, ``EXISTS``...). :class:`RespClient` speaks RESP2 for exactly those and answers
as a redis-py client without ``decode_responses`` does (bytes; ``HGETALL`` a dict, ``SMEMBERS``
a set), so :class:`~vsbatch.store.ledger_reader.LedgerReader` reads through either client: one
reading code path (:class:`~vsbatch.store.ledger_reader.ReadClient`). The smaller change,
importing only part of redis-py, is not possible: ``import redis.client`` runs the package's
``__init__``, which imports it all.

It takes the URLs redis-py takes for a plain server: ``redis://`` and ``rediss://`` (TLS;
``ssl_cert_reqs``, ``ssl_ca_certs`` and ``ssl_check_hostname`` as redis-py reads them),
``unix://``, a user and password in the userinfo, a database in the path. For any other URL
(another scheme, any other query option) :meth:`RespClient.from_url` returns None and the
caller uses redis-py, which stays the client of every command that writes or runs for long.
One connection, no pool, no reconnection: a command that reads and exits needs neither.
"""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import parse_qsl, unquote, urlsplit

from vsbatch.store.resp_wire import (
    AuthenticationError,
    RespConnectionError,
    RespError,
    ResponseError,
    RespTimeoutError,
    connection_error,
    encode,
    pairs,
    raised,
    read_reply,
    tls_context,
)

if TYPE_CHECKING:
    import ssl

__all__ = ["AuthenticationError", "RespClient", "RespError", "ResponseError", "connect"]

DEFAULT_PORT = 6379
# The query options this client understands (on rediss:// only): redis-py's TLS options.
_TLS_OPTIONS = frozenset({"ssl_cert_reqs", "ssl_ca_certs", "ssl_check_hostname"})


class _Address:
    """Where and how to connect: a TCP host and port (maybe TLS) or a unix socket path."""

    def __init__(self, host: str = "", port: int = DEFAULT_PORT, path: str = "") -> None:
        self.host, self.port, self.path = host, port, path
        self.tls: ssl.SSLContext | None = None


class RespClient:
    """One connection to a Redis server, for reads (see the module docstring).

    Args:
        address: Where the server is (from :meth:`from_url`).
        username: The ACL user, or None.
        password: The password, or None.
        db: The database to select.
        connect_timeout: Seconds to wait for the connection.
        timeout: Seconds to wait for each reply.
    """

    def __init__(
        self,
        address: _Address,
        *,
        username: str | None = None,
        password: str | None = None,
        db: int = 0,
        connect_timeout: float = 5.0,
        timeout: float = 30.0,
    ) -> None:
        self._address = address
        self._auth = [username, password] if username else [password] if password else []
        self._db = db
        self._connect_timeout, self._timeout = connect_timeout, timeout
        self._sock: socket.socket | None = None
        self._reader: BinaryIO | None = None

    @classmethod
    def from_url(
        cls, url: str, *, connect_timeout: float = 5.0, timeout: float = 30.0
    ) -> RespClient | None:
        """A client for ``url``, or None when only redis-py can connect as it says.

        Raises:
            ValueError: a ``ssl_cert_reqs`` redis-py would refuse too.
        """
        parts = urlsplit(url)
        options = dict(parse_qsl(parts.query, keep_blank_values=True))
        tls = parts.scheme == "rediss"
        if parts.scheme not in ("redis", "rediss", "unix") or not set(options) <= (
            _TLS_OPTIONS if tls else set()
        ):
            return None
        if parts.scheme == "unix":
            address = _Address(path=unquote(parts.path))
        else:
            address = _Address(unquote(parts.hostname or "localhost"), parts.port or DEFAULT_PORT)
        if tls:
            address.tls = tls_context(options)
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        if username and password is None:
            return None  # redis-py would send AUTH user None: its error, not ours to guess
        db = parts.path.replace("/", "") if parts.scheme != "unix" else "0"
        return cls(
            address,
            username=username,
            password=password,
            db=int(db) if db.isdigit() else 0,
            connect_timeout=connect_timeout,
            timeout=timeout,
        )

    def execute(self, *args: str | bytes | int | float) -> Any:
        """Send one command and return its reply (an error reply raises ResponseError)."""
        return raised(self._exchange([args])[0])

    def ping(self) -> bool:
        """True when the server answers PING."""
        return bool(self.execute("PING") == b"PONG")

    def get(self, name: str, /) -> bytes | None:
        """The string at ``name``."""
        return self.execute("GET", name)  # type: ignore[no-any-return]

    def hget(self, name: str, key: str, /) -> bytes | None:
        """One field of the hash at ``name``."""
        return self.execute("HGET", name, key)  # type: ignore[no-any-return]

    def hmget(self, name: str, keys: list[str], /) -> list[bytes | None]:
        """Fields of the hash at ``name``, None for each one missing."""
        return self.execute("HMGET", name, *keys)  # type: ignore[no-any-return]

    def hgetall(self, name: str, /) -> dict[bytes, bytes]:
        """The hash at ``name`` (empty when there is none)."""
        return pairs(self.execute("HGETALL", name))

    def zrevrange(self, name: str, start: int, end: int, /) -> list[bytes]:
        """Members of the sorted set at ``name``, highest score first."""
        return self.execute("ZREVRANGE", name, start, end)  # type: ignore[no-any-return]

    def smembers(self, name: str, /) -> set[bytes]:
        """Members of the set at ``name``."""
        return set(self.execute("SMEMBERS", name))

    def exists(self, *names: str) -> int:
        """How many of ``names`` exist."""
        return self.execute("EXISTS", *names)  # type: ignore[no-any-return]

    def pipeline(self, transaction: bool = True) -> RespPipeline:
        """Commands sent together (in MULTI/EXEC when ``transaction``), replies by ``execute``."""
        return RespPipeline(self, transaction=transaction)

    def register_script(self, script: str, /) -> RespScript:
        """A Lua script, run by its SHA1 (loaded on the first NOSCRIPT, as redis-py does)."""
        return RespScript(self, script)

    def set_timeout(self, seconds: float) -> None:
        """Wait up to ``seconds`` for each reply from now on."""
        self._timeout = seconds
        if self._sock is not None:
            self._sock.settimeout(seconds)

    def close(self) -> None:
        """Close the connection (the next command opens a new one)."""
        sock, reader, self._sock, self._reader = self._sock, self._reader, None, None
        if reader is not None:
            reader.close()  # the socket closes only once its file is closed too
        if sock is not None:
            sock.close()

    def _exchange(self, commands: Sequence[Sequence[str | bytes | int | float]]) -> list[Any]:
        """Send ``commands`` in one write and read one reply each (error replies returned)."""
        reader = self._connection()
        assert self._sock is not None
        try:
            self._sock.sendall(b"".join(encode(c) for c in commands))
            return [read_reply(reader) for _ in commands]
        except OSError as exc:
            self.close()
            raise connection_error(exc) from None
        except RespConnectionError:
            self.close()
            raise

    def _connection(self) -> BinaryIO:
        if self._reader is not None:
            return self._reader
        address = self._address
        try:
            if address.path:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self._connect_timeout)
                sock.connect(address.path)
            else:
                # An ASCII host as bytes: a str host imports the idna codec (10 ms) to resolve.
                # getaddrinfo takes bytes; typeshed's create_connection says str only.
                host = address.host.encode() if address.host.isascii() else address.host
                sock = socket.create_connection(
                    (host, address.port),  # type: ignore[arg-type]
                    self._connect_timeout,
                )
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if address.tls is not None:
                    sock = address.tls.wrap_socket(sock, server_hostname=address.host)
            sock.settimeout(self._timeout)
        except OSError as exc:
            raise connection_error(exc) from None
        self._sock, self._reader = sock, sock.makefile("rb")
        try:
            self._handshake()
        except BaseException:
            self.close()  # never a connection that skipped AUTH or SELECT
            raise
        return self._reader

    def _handshake(self) -> None:
        """AUTH and SELECT, as redis-py sends them on each new connection."""
        if self._auth:
            reply = self._exchange([["AUTH", *self._auth]])[0]
            if isinstance(reply, ResponseError):
                raise AuthenticationError(str(reply)) from None
        if self._db:
            self.execute("SELECT", self._db)


class RespPipeline:
    """Commands queued on a :class:`RespClient`, sent by :meth:`execute` in one round trip."""

    def __init__(self, client: RespClient, *, transaction: bool) -> None:
        self._client = client
        self._transaction = transaction
        self._commands: list[tuple[tuple[str | int, ...], bool]] = []

    def hgetall(self, name: str, /) -> RespPipeline:
        """Queue HGETALL (its reply becomes a dict)."""
        self._commands.append((("HGETALL", name), True))
        return self

    def exists(self, *names: str) -> RespPipeline:
        """Queue EXISTS."""
        self._commands.append((("EXISTS", *names), False))
        return self

    def execute(self) -> list[Any]:
        """Send the queued commands; their replies, in order (the first error reply raises)."""
        commands, self._commands = self._commands, []
        if not commands:
            return []
        sent = [c for c, _ in commands]
        if self._transaction:
            replies = self._client._exchange([("MULTI",), *sent, ("EXEC",)])
            for reply in replies[:-1]:
                raised(reply)  # a command refused while queuing (EXECABORT follows)
            replies = raised(replies[-1])
        else:
            replies = self._client._exchange(sent)
        for reply in replies:
            raised(reply)
        return [
            pairs(r) if as_dict else r for r, (_, as_dict) in zip(replies, commands, strict=True)
        ]


class RespScript:
    """A Lua script registered on a :class:`RespClient` (see ``register_script``)."""

    def __init__(self, client: RespClient, script: str) -> None:
        self._client = client
        self._script = script
        self.sha = hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest()

    def __call__(
        self, keys: Sequence[str] = (), args: Iterable[str | bytes | int | float] = ()
    ) -> Any:
        """Run the script on ``keys`` and ``args``; its reply."""
        call = [len(keys), *keys, *args]
        try:
            return self._client.execute("EVALSHA", self.sha, *call)
        except ResponseError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
        self._client.execute("SCRIPT", "LOAD", self._script)
        return self._client.execute("EVALSHA", self.sha, *call)


def connect(url: str) -> RespClient | None:
    """A client of ``url`` that answered PING, or None when redis-py must connect instead.

    The check is :func:`vsbatch.bootstrap.check_redis`'s, with its one-line errors: two quick
    retries of an unreachable server, then 5 s per reply; 30 s per reply afterwards.

    Raises:
        ConfigError: the URL is invalid, the server cannot be reached, refuses the
            credentials, or refuses commands (``MISCONF``: its disk is full).
    """
    from vsbatch.errors import ConfigError

    try:
        client = RespClient.from_url(url, timeout=5.0)
    except ValueError as exc:
        raise ConfigError(f"invalid VSBATCH_REDIS_URL: {exc}") from None
    if client is None:
        return None
    try:
        _answered(client, url)
    except BaseException:
        client.close()
        raise
    client.set_timeout(30.0)
    return client


def _answered(client: RespClient, url: str) -> None:
    """PING until answered: two quick retries of an unreachable server, then ConfigError."""
    from vsbatch.errors import ConfigError
    from vsbatch.store.refusals import redis_refusal, tls_hint
    from vsbatch.urls import safe_url

    for attempt in range(3):
        try:
            client.ping()
            return
        except AuthenticationError:
            raise ConfigError(
                f"Redis refused the credentials in VSBATCH_REDIS_URL ({safe_url(url)})"
            ) from None
        except ResponseError as exc:  # it answers, but refuses (MISCONF, OOM, ...)
            raise redis_refusal(exc) from None
        except RespConnectionError as exc:
            if attempt == 2:
                kind = "TimeoutError" if isinstance(exc, RespTimeoutError) else "ConnectionError"
                tls = tls_hint(str(exc))
                cause = kind if tls is None else f"{kind} ({tls})"
                raise ConfigError(f"cannot reach Redis at {safe_url(url)}: {cause}") from None
            time.sleep(0.1 * 2**attempt)
