"""RESP2 on the wire for :mod:`vsbatch.store.resp`: commands out, replies in, and its errors.

Replies come back as redis-py's RESP2 parser gives them without ``decode_responses``: simple
and bulk strings as bytes, integers as ints, arrays as lists, nulls as None; an error reply is
returned as a :class:`ResponseError` (so that a pipeline reads every reply before raising).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    import ssl

__all__ = [
    "AuthenticationError",
    "RespConnectionError",
    "RespError",
    "RespTimeoutError",
    "ResponseError",
    "connection_error",
    "encode",
    "pairs",
    "raised",
    "read_reply",
    "tls_context",
]

# redis-py's ``ssl_cert_reqs`` words (ssl.CERT_NONE, CERT_OPTIONAL, CERT_REQUIRED).
_CERT_REQS = {"none": 0, "optional": 1, "required": 2}
_TRUE = frozenset({"1", "yes", "true", "y", "on"})  # redis-py's to_bool


class RespError(Exception):
    """A failure of this client: no connection, a broken one, or an error reply."""


class RespConnectionError(RespError):
    """The server cannot be reached, or the connection broke or timed out."""


class RespTimeoutError(RespConnectionError):
    """The server did not answer in time."""


class ResponseError(RespError):
    """The server answered with an error (``MISCONF ...``, ``NOPERM ...``)."""


class AuthenticationError(ResponseError):
    """The server refused the credentials (``WRONGPASS``, ``NOAUTH``, ``invalid password``)."""


def tls_context(options: dict[str, str]) -> ssl.SSLContext:
    """The TLS context redis-py builds for these ``ssl_*`` options."""
    import ssl

    reqs = options.get("ssl_cert_reqs", "required") or "required"
    if reqs not in _CERT_REQS:
        raise ValueError(f"Invalid SSL Certificate Requirements Flag: {reqs}")
    context = ssl.create_default_context()
    verify = ssl.VerifyMode(_CERT_REQS[reqs])
    check = options.get("ssl_check_hostname", "true").lower() in _TRUE
    context.check_hostname = check and verify != ssl.CERT_NONE
    context.verify_mode = verify
    if options.get("ssl_ca_certs"):
        context.load_verify_locations(cafile=options["ssl_ca_certs"])
    return context


def encode(command: Sequence[str | bytes | int | float]) -> bytes:
    """One command as a RESP array of bulk strings (numbers as redis-py writes them)."""
    out = [b"*%d\r\n" % len(command)]
    for arg in command:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, int) and not isinstance(arg, bool):
            data = b"%d" % arg
        elif isinstance(arg, float):
            data = repr(arg).encode()
        else:
            raise TypeError(f"cannot send a {type(arg).__name__} to Redis")
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def read_reply(reader: BinaryIO) -> Any:
    """One RESP2 reply; an error reply is returned as a ResponseError, not raised."""
    line = reader.readline()
    if not line.endswith(b"\r\n"):
        raise RespConnectionError("Connection closed by server.")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest
    if kind == b"-":
        text = rest.decode(errors="replace")
        auth = text.startswith(("WRONGPASS", "NOAUTH", "ERR invalid password"))
        return AuthenticationError(text) if auth else ResponseError(text)
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        if size < 0:
            return None
        data = reader.read(size + 2)
        if len(data) != size + 2:
            raise RespConnectionError("Connection closed by server.")
        return data[:-2]
    if kind == b"*":
        count = int(rest)
        return None if count < 0 else [read_reply(reader) for _ in range(count)]
    raise RespConnectionError(f"Protocol error, got {line[:20]!r}")


def raised(reply: Any) -> Any:
    """``reply``, or raise it when it is an error reply."""
    if isinstance(reply, ResponseError):
        raise reply
    return reply


def pairs(reply: list[bytes]) -> dict[bytes, bytes]:
    """A flat ``[field, value, ...]`` reply as a dict (as redis-py answers HGETALL)."""
    return dict(zip(reply[::2], reply[1::2], strict=True))


def connection_error(exc: OSError) -> RespConnectionError:
    """The client's error for a socket's failure (a timeout is a RespTimeoutError)."""
    if isinstance(exc, TimeoutError):
        return RespTimeoutError(f"Timeout error: {exc}")
    return RespConnectionError(f"Connection error: {exc.strerror or exc}")
