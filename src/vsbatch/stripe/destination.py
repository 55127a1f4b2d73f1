"""Where a Stripe API key may be sent: the one rule every process applies before using it.

- A **live** key (``sk_live_``/``rk_live_``) goes only to ``https://api.stripe.com``, or to an
  https base the operator lists in ``VSBATCH_STRIPE_API_BASE_ALLOW`` (read from the process
  environment, never from a ``.env`` file: a file in the working directory is not the
  operator's word).
- A **test** key may go to any https base, and over plain http only to a loopback or private
  address (the emulator on this machine or inside a compose network).

A base that breaks the rule is refused with a :class:`~vsbatch.errors.ConfigError` before a
single byte is sent. Host names are resolved to check that they are private; the resolver is
injectable so that the rule is tested without DNS.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from vsbatch.errors import ConfigError

__all__ = ["STRIPE_API_BASE", "check_destination", "is_private_host"]

STRIPE_API_BASE = "https://api.stripe.com"

Resolver = Callable[[str], list[str]]


def _resolve(host: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return [str(info[4][0]) for info in infos]


def _private_ip(text: str) -> bool:
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_link_local


def is_private_host(host: str, resolve: Resolver = _resolve) -> bool:
    """True when ``host`` is a loopback/private address, or a name resolving only to such."""
    if _private_ip(host):
        return True
    addresses = resolve(host)
    return bool(addresses) and all(_private_ip(a) for a in addresses)


def _normal(base: str) -> str:
    return base.strip().rstrip("/").lower()


def check_destination(
    base: str,
    *,
    live: bool,
    allowed: Iterable[str] = (),
    resolve: Resolver = _resolve,
) -> None:
    """Refuse a base URL that the key must not be sent to.

    Args:
        base: ``VSBATCH_STRIPE_API_BASE``.
        live: the key is a live-mode key.
        allowed: extra https bases the operator trusts with a live key.
        resolve: host name -> addresses (tests inject one).

    Raises:
        ConfigError: one line naming the base and why it is refused.
    """
    parts = urlsplit(base)
    shown = f"{parts.scheme}://{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(f"VSBATCH_STRIPE_API_BASE must not hold credentials ({shown})")
    if live:
        trusted = {STRIPE_API_BASE} | {_normal(a) for a in allowed if a.strip()}
        if parts.scheme == "https" and _normal(base) in trusted:
            return
        raise ConfigError(
            f"a live-mode key is sent only to {STRIPE_API_BASE}, not {shown}: list an https"
            " base in VSBATCH_STRIPE_API_BASE_ALLOW (environment, not .env) to trust it"
        )
    if parts.scheme == "https":
        return
    host = parts.hostname or ""
    if parts.scheme == "http" and host and is_private_host(host, resolve):
        return
    unknown = parts.scheme == "http" and host and not _private_ip(host) and not resolve(host)
    raise ConfigError(
        f"the Stripe API key is sent over plain http only to a loopback or private address"
        f" (the emulator), not {shown}" + (f": cannot resolve {host}" if unknown else ": use https")
    )
