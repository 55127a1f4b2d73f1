"""A total deadline per HTTP request: connect, write and read together, however slow the peer.

httpx bounds each socket operation (the connect, each write, each read) but not a request as a
whole, so a server that trickles one byte just inside the read timeout keeps a request alive
for as long as it likes (40 s with a 5 s timeout, or hours). :class:`DeadlineTransport` is
httpx's default transport whose connections use :class:`DeadlineBackend`: every socket
operation gets ``min(its own timeout, time left)`` and fails with the matching httpcore timeout
once the time is up, so httpx raises ``ConnectTimeout``, ``WriteTimeout`` or ``ReadTimeout``
as usual. The deadline is set per request with :func:`deadline` and kept in a context
variable, so one transport (and its pool) serves many threads, each with its own deadline.

An explicit transport turns off httpx's own reading of ``HTTP(S)_PROXY``, so
:func:`environment_proxy` finds the proxy (if any) for a URL, and the transport sends through
it, under the same deadline. Not covered: waiting for a free pooled connection (httpx's
``pool`` timeout bounds it).
"""

from __future__ import annotations

import functools
import ssl
import threading
import time
import typing
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from urllib.parse import urlsplit

import httpcore
import httpx

from vsbatch.errors import ConfigError

__all__ = [
    "DeadlineBackend",
    "DeadlineTransport",
    "deadline",
    "environment_proxy",
    "shared_ssl_context",
    "time_left",
    "transport_for",
]

# The monotonic time by which the current request must be over (None: no deadline).
_DEADLINE: ContextVar[float | None] = ContextVar("vsbatch_http_deadline", default=None)

SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)


@contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Run the requests made inside the block under one total deadline of ``seconds``.

    Only transports built on :class:`DeadlineBackend` honour it. Nested blocks replace the
    outer deadline for their duration; None means no deadline.
    """
    token = _DEADLINE.set(None if seconds is None else time.monotonic() + seconds)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def time_left() -> float | None:
    """Seconds left before the current deadline (may be negative), or None without one."""
    end = _DEADLINE.get()
    return None if end is None else end - time.monotonic()


def _bounded(timeout: float | None, expired: type[Exception]) -> float | None:
    """``timeout`` cut down to the time left; raises ``expired`` when none is left."""
    left = time_left()
    if left is None:
        return timeout
    if left <= 0:
        raise expired("the request's total deadline has passed")
    return left if timeout is None else min(timeout, left)


class DeadlineStream(httpcore.NetworkStream):
    """A network stream whose reads and writes end by the current request's deadline."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Read at most ``max_bytes``, waiting no longer than the deadline allows."""
        return self._stream.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Write ``buffer``, each send waiting no longer than the deadline allows."""
        self._stream.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        """Close the underlying stream."""
        self._stream.close()

    def start_tls(
        self,
        ssl_context: typing.Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        """The TLS handshake counts as connecting."""
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        return DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, bounded))

    def get_extra_info(self, info: str) -> typing.Any:
        """Socket facts (``is_readable``, ``ssl_object``...) from the underlying stream."""
        return self._stream.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's synchronous backend, with every operation bounded by the request deadline."""

    def __init__(self, backend: httpcore.NetworkBackend | None = None) -> None:
        self._backend = backend or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        """Connect within the deadline; the stream's operations stay bounded by it."""
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        stream = self._backend.connect_tcp(host, port, bounded, local_address, socket_options)
        return DeadlineStream(stream)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        """Connect to a Unix socket within the deadline."""
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        return DeadlineStream(self._backend.connect_unix_socket(path, bounded, socket_options))

    def sleep(self, seconds: float) -> None:
        """Sleep (httpcore uses it between connection retries)."""
        self._backend.sleep(seconds)


def environment_proxy(url: str) -> str | None:
    """The HTTP(S) proxy the environment (``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``...)
    names for ``url``, or None."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


_SSL_LOCK = threading.Lock()


@functools.cache
def _ssl_context(verify: bool) -> ssl.SSLContext:
    return httpx.create_ssl_context(verify=verify)


def shared_ssl_context(verify: bool = True) -> ssl.SSLContext:
    """One TLS context per process and ``verify``: loading the CA bundle costs tens of
    milliseconds, and a worker builds one Stripe client per thread. A context may serve many
    connections in many threads at once. Built under a lock: a worker's threads start
    together, and a bare cache let each of them load the bundle (a quarter of its CPU)."""
    with _SSL_LOCK:
        return _ssl_context(verify)


class DeadlineTransport(httpx.HTTPTransport):
    """httpx's default HTTP/1.1 transport whose connections honour :func:`deadline`.

    Args:
        limits: pool sizes and keep-alive expiry.
        verify: TLS verification, as for ``httpx.HTTPTransport``.
        proxy: an ``http://`` or ``https://`` proxy URL to send every request through.

    Raises:
        ValueError: the proxy is neither ``http://`` nor ``https://``.
    """

    def __init__(
        self, *, limits: httpx.Limits, verify: bool = True, proxy: str | None = None
    ) -> None:
        # httpx 0.28 has no public way to hand its default transport a network backend
        # (encode/httpx#3749), so this builds the pool HTTPTransport would, with ours.
        ssl_context = shared_ssl_context(verify)
        backend = DeadlineBackend()
        if proxy is None:
            self._pool = httpcore.ConnectionPool(
                ssl_context=ssl_context,
                max_connections=limits.max_connections,
                max_keepalive_connections=limits.max_keepalive_connections,
                keepalive_expiry=limits.keepalive_expiry,
                network_backend=backend,
            )
            return
        via = httpx.Proxy(url=proxy)
        if via.url.scheme not in ("http", "https"):
            raise ValueError(f"unsupported proxy scheme {via.url.scheme!r}: use http or https")
        self._pool = httpcore.HTTPProxy(
            proxy_url=httpcore.URL(
                scheme=via.url.raw_scheme,
                host=via.url.raw_host,
                port=via.url.port,
                target=via.url.raw_path,
            ),
            proxy_auth=via.raw_auth,
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )


def transport_for(url: str, limits: httpx.Limits) -> DeadlineTransport:
    """A deadline-bound transport for ``url``, through the environment's proxy if it names one.

    Raises:
        ConfigError: the environment names a proxy that is neither http:// nor https://
            (the message does not quote it: a proxy URL may hold a password).
    """
    try:
        return DeadlineTransport(limits=limits, proxy=environment_proxy(url))
    except ValueError:
        raise ConfigError(
            "the proxy set in the environment (HTTPS_PROXY/ALL_PROXY) for the Stripe API is not"
            " http:// or https://; set NO_PROXY for it or use an HTTP proxy"
        ) from None
