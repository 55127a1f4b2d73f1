"""One Redis URL that both of its readers understand: redis-py (the ledger) and kombu (Celery).

redis-py accepts connection options in the query (``?password=x&db=1&socket_timeout=3``);
kombu builds its connection from the URL's parts plus every query option as a keyword, so
``?password=`` collides with the userinfo's password (``TypeError: dict() got multiple values
for keyword argument 'password'``) and any other option it does not know is an unexpected
keyword. So :func:`normalize_redis_url` moves ``password``, ``username`` and ``db`` into the
URL's userinfo and path, where both read them the same way, keeps the TLS options both read
(``ssl_*``), and refuses the rest with a message that never quotes the URL (it may hold a
password).

``sentinel://`` URLs (Redis Sentinel, ``;``-joined as kombu takes them) are checked by
:func:`parse_sentinel_url` and kept as they are; ``store.sentinel`` builds their client.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

__all__ = [
    "SentinelTarget",
    "is_sentinel_url",
    "normalize_broker_url",
    "normalize_redis_url",
    "parse_sentinel_url",
]

# Moved out of the query into the URL's parts (redis-py reads both places; kombu only parts).
_MOVED = ("username", "password", "db")


def _split_query(query: str, *, tls: bool) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """The query's options to move into the userinfo and path, and the TLS options to keep;
    ValueError naming any other option (or a TLS option without TLS)."""
    moved: dict[str, str] = {}
    kept: list[tuple[str, str]] = []
    # parse_qsl decodes like redis-py's parse_qs (%XX, and + as a space); the first value wins.
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name in _MOVED:
            moved.setdefault(name, value)
        elif name.startswith("ssl_") and not tls:
            # redis-py's plain connection takes no ssl_* argument: a TypeError in every command
            raise ValueError(f"the query option {name!r} needs a rediss:// URL (TLS): use one")
        elif name.startswith("ssl_"):
            kept.append((name, value))
        else:
            raise ValueError(
                f"the query option {name!r} is not supported (Celery's Redis transport refuses"
                " it): remove it; the URL's query may hold password, username, db and ssl_*"
            )
    return moved, kept


def normalize_redis_url(url: str) -> str:
    """``url`` with its query's credentials and database moved where kombu reads them.

    The result means the same to redis-py as ``url`` did: like redis-py, a password or user in
    the userinfo wins over one in the query, and a ``db`` in the query wins over the path.
    Values are percent-encoded in the userinfo, so any character survives both readers.

    Other schemes (``unix://``) and URLs without a query are returned as they are.

    Raises:
        ValueError: The query holds an option Celery's Redis transport cannot take, or a
            ``db`` that is not a number (the message names the option, never the URL).
    """
    if is_sentinel_url(url):
        parse_sentinel_url(url)  # raises ValueError naming what is wrong
        return url.strip()
    parts = urlsplit(url.strip())
    if parts.scheme not in ("redis", "rediss") or not parts.query:
        return url
    moved, kept = _split_query(parts.query, tls=parts.scheme == "rediss")
    if not moved:
        return url
    if not moved.get("db", "0").isdigit():
        raise ValueError("the query option 'db' must be a database number")
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    user = user or quote(moved.get("username", ""), safe="")
    if not colon or not password:
        password = quote(moved.get("password", ""), safe="")
    netloc = hostport
    if user or password:
        netloc = f"{user}:{password}@{hostport}" if password else f"{user}@{hostport}"
    path = f"/{moved['db']}" if moved.get("db") else parts.path
    return urlunsplit((parts.scheme, netloc, path, urlencode(kept), parts.fragment))


# Celery's brokers vsbatch runs on: Redis (plain, TLS, Sentinel) and RabbitMQ (AMQP 0-9-1).
_AMQP = ("amqp", "amqps", "pyamqp")


def normalize_broker_url(url: str) -> str:
    """A broker URL (``VSBATCH_BROKER_URL``): a Redis URL as :func:`normalize_redis_url`
    makes it, or a RabbitMQ ``amqp://``/``amqps://`` URL as it is.

    Raises:
        ValueError: Another scheme, or a Redis URL :func:`normalize_redis_url` refuses.
    """
    scheme = url.strip().partition("://")[0].lower()
    if scheme in _AMQP:
        return url.strip()
    if scheme in ("redis", "rediss", "sentinel"):
        return normalize_redis_url(url)
    raise ValueError(
        "must start with amqp:// or amqps:// (RabbitMQ), or redis://, rediss:// or sentinel://"
    )


DEFAULT_SENTINEL_PORT = 26379


@dataclass(frozen=True)
class SentinelTarget:
    """What a ``sentinel://`` URL says: the sentinels, and how to talk to the master."""

    sentinels: tuple[tuple[str, int], ...]
    username: str | None
    password: str | None
    db: int


def is_sentinel_url(url: str | None) -> bool:
    """True for a ``sentinel://`` URL (or a ``;``-joined list of them)."""
    return bool(url) and str(url).strip().lower().startswith("sentinel://")


def parse_sentinel_url(url: str) -> SentinelTarget:
    """The sentinels and master credentials of a ``sentinel://`` URL list.

    Raises:
        ValueError: A part is not ``sentinel://[user:password@]host[:port][/db]`` (the
            message names the part by its position, never quoting it: it may hold a password).
    """
    parts = [p.strip() for p in url.strip().split(";") if p.strip()]
    if not parts:
        raise ValueError("names no sentinel; e.g. sentinel://host:26379;sentinel://host2:26379")
    sentinels: list[tuple[str, int]] = []
    first: SentinelTarget | None = None
    for n, part in enumerate(parts, start=1):
        target = _one(part, n)
        sentinels.extend(target.sentinels)
        first = first or target
    assert first is not None
    return SentinelTarget(tuple(sentinels), first.username, first.password, first.db)


def _one(part: str, n: int) -> SentinelTarget:
    where = f"sentinel URL {n}"
    try:
        split = urlsplit(part)
        port = split.port or DEFAULT_SENTINEL_PORT
    except ValueError:
        raise ValueError(f"{where} is not a valid URL (a bad port?)") from None
    if split.scheme.lower() != "sentinel":
        raise ValueError(f"{where} must start with sentinel:// (every part of a ';' list)")
    if not split.hostname:
        raise ValueError(f"{where} names no host")
    if split.query:
        raise ValueError(f"{where} has a query: options are settings (VSBATCH_REDIS_SENTINEL_*)")
    db = split.path.strip("/") or "0"
    if not db.isdigit():
        raise ValueError(f"{where}: the path must be a database number")
    return SentinelTarget(
        ((split.hostname, port),),
        unquote(split.username) if split.username else None,
        unquote(split.password) if split.password else None,
        int(db),
    )
