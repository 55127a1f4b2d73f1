"""Who may act on the dashboard: the access token, the CSRF cookie and the origin checks.

Reading pages needs no token (the server binds loopback by default); every action (a POST)
needs all of:

- the request's ``Host`` naming the address served (:class:`HostCheck`, against DNS
  rebinding: a hostile page whose name resolves to 127.0.0.1 sends its own name as Host);
- no cross-origin marks: an ``Origin`` other than the page's own, or a ``Sec-Fetch-Site``
  other than ``same-origin``/``none``, is refused (:func:`same_origin`);
- the CSRF field of the form equal to the ``vsbatch_csrf`` cookie (``SameSite=Strict``,
  ``HttpOnly``): another site can neither read the cookie nor make the browser send it;
- the access token printed at start, typed into the form, compared in constant time.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = [
    "CSRF_COOKIE",
    "Guard",
    "HostCheck",
    "allowed_hosts",
    "host_name",
    "new_token",
    "same_origin",
]

CSRF_COOKIE = "vsbatch_csrf"
TOKEN_BYTES = 32  # 256 bits: guessing is out of reach, so wrong tries need no rate limit
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


def new_token() -> str:
    """A fresh random token (URL-safe text)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def _equal(given: str | None, expected: str) -> bool:
    """Constant-time equality of two strings (False for a missing value)."""
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


@dataclass(frozen=True)
class Guard:
    """The access token of this server, and the checks of an action's form.

    Args:
        token: The access token printed at start.
    """

    token: str

    def token_ok(self, given: str | None) -> bool:
        """Whether ``given`` is the access token (constant time)."""
        return _equal(given, self.token)

    @staticmethod
    def csrf_ok(request: Request, field: str | None) -> bool:
        """Whether the form's CSRF ``field`` equals the request's CSRF cookie."""
        cookie = request.cookies.get(CSRF_COOKIE)
        return cookie is not None and _equal(field, cookie)

    @staticmethod
    def csrf_value(request: Request) -> str:
        """The request's CSRF cookie, or a new value (set it with :meth:`set_csrf`)."""
        return request.cookies.get(CSRF_COOKIE) or new_token()

    @staticmethod
    def set_csrf(response: Response, value: str) -> None:
        """Set the CSRF cookie: sent back only by same-site requests, unreadable by scripts."""
        response.set_cookie(
            CSRF_COOKIE, value, httponly=True, samesite="strict", path="/", secure=False
        )


def same_origin(request: Request) -> bool:
    """False when the browser marks the request as coming from another site or origin.

    A request with neither ``Origin`` nor ``Sec-Fetch-Site`` (curl, a script) is not a
    browser's cross-site request: it carries no cookie it was not given, and still needs the
    token and the CSRF cookie.
    """
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return origin == f"{request.url.scheme}://{host}"


def allowed_hosts(host: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """The names a request's Host may carry for a server bound to ``host``.

    Loopback binds answer to every loopback name; a wildcard bind (``0.0.0.0``, ``::``)
    answers only to the names given in ``extra`` (and loopback names).
    """
    names = {host.strip("[]").lower(), *(name.lower() for name in extra)}
    if host in ("0.0.0.0", "::") or names & set(LOOPBACK_NAMES):
        names.update(LOOPBACK_NAMES)
    names.discard("0.0.0.0")
    names.discard("::")
    return frozenset(names)


# host[:port]: a DNS name or IPv4 address, or an IPv6 address in brackets; the port digits.
_HOST = re.compile(
    r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9.-]+))(?::(?P<port>[0-9]{1,5}))?"
)


def host_name(raw: str, port: int) -> str | None:
    """The name in a Host header (``[::1]:80`` -> ``::1``), lower-cased; None when the header
    is not exactly ``host[:port]`` or names another port than ``port`` (the one served)."""
    found = _HOST.fullmatch(raw)
    if found is None or (found["port"] is not None and int(found["port"]) != port):
        return None
    return (found["v6"] or found["name"]).lower()


class HostCheck:
    """ASGI middleware: a request whose Host is not a name of this server gets a 400.

    Args:
        app: The application behind it.
        hosts: The allowed names (:func:`allowed_hosts`).
        port: The port served: a Host naming another one is refused too.
    """

    def __init__(self, app: ASGIApp, hosts: frozenset[str], port: int) -> None:
        self.app = app
        self.hosts = hosts
        self.port = port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            name = host_name(headers.get(b"host", b"").decode("latin-1"), self.port)
            if name is None or name not in self.hosts:
                from starlette.responses import PlainTextResponse

                refused = PlainTextResponse(
                    "unknown Host: this server answers to its own address", 400
                )
                await refused(scope, receive, send)
                return
        await self.app(scope, receive, send)
