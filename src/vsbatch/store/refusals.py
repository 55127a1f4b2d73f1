"""Redis error replies that retrying cannot fix, as one line each for the user.

Kept apart from :mod:`vsbatch.bootstrap` (which re-exports them) so that a command reading
through :mod:`vsbatch.store.resp` names a refusal without importing redis-py.
"""

from __future__ import annotations

import re

from vsbatch.errors import ConfigError

__all__ = ["is_refusal", "redis_refusal", "tls_hint"]

# Error replies a retry cannot fix, by their code, and what they mean for the user.
_REFUSALS = {
    "MISCONF": "Redis refuses writes: it cannot save to its disk (full, or not writable)",
    "OOM": "Redis refuses writes: it is out of memory (its maxmemory is reached)",
    "READONLY": "Redis refuses writes: VSBATCH_REDIS_URL names a read-only replica",
    "NOPERM": "Redis refuses a command: the user in VSBATCH_REDIS_URL lacks a permission",
}
_CODE = re.compile(r"\b(" + "|".join(_REFUSALS) + r")\b")


def redis_refusal(exc: Exception, *, then: str = "run the command again") -> ConfigError:
    """One line for a Redis error that retrying cannot fix (the CLI prints it, exit 2).

    ``exc`` is a redis-py or :mod:`~vsbatch.store.resp` error, or kombu's
    ``OperationalError`` wrapping one. Known refusals (``MISCONF`` when Redis cannot
    persist, as on a full disk; ``OOM``; ``READONLY``; ``NOPERM``) are named with the fix;
    anything else gives its type and the first line of its message. ``then`` says what to do
    once it is fixed.
    """
    text = str(exc).partition("\n")[0]
    code = _CODE.search(text)
    if code is not None:
        what = f"{_REFUSALS[code.group(1)]}; fix it (see the Redis log), then {then}"
    else:
        what = f"Redis failed ({type(exc).__name__}: {text[:200]}); check Redis, then {then}"
    return ConfigError(what)


def is_refusal(exc: Exception) -> bool:
    """True for a Redis error reply that retrying cannot fix (``MISCONF``, ``OOM``...)."""
    return _CODE.search(str(exc).partition("\n")[0]) is not None


_TLS_REFUSAL = re.compile(r"\[SSL: [A-Z_]+\] ([^(]+?)\s*(?:\(_ssl|$)")


def tls_hint(text: str) -> str | None:
    """For a connection error's message that is a TLS refusal: its reason and the fix; else
    None (both Redis clients name it the same way)."""
    tls = _TLS_REFUSAL.search(text)
    if tls is None:
        return None
    return f"TLS: {tls.group(1)}; a private CA goes in the URL as ?ssl_ca_certs=/path/ca.pem"
