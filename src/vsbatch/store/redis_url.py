"""One Redis URL that both of its readers understand: redis-py (the ledger) and kombu (Celery).

redis-py accepts connection options in the query (``?password=x&db=1&socket_timeout=3``);
kombu builds its connection from the URL's parts plus every query option as a keyword, so
``?password=`` collides with the userinfo's password (``TypeError: dict() got multiple values
for keyword argument 'password'``) and any other option it does not know is an unexpected
keyword. So :func:`normalize_redis_url` moves ``password``, ``username`` and ``db`` into the
URL's userinfo and path, where both read them the same way, keeps the TLS options both read
(``ssl_*``), and refuses the rest with a message that never quotes the URL (it may hold a
password).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

__all__ = ["normalize_redis_url"]

# Moved out of the query into the URL's parts (redis-py reads both places; kombu only parts).
_MOVED = ("username", "password", "db")


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
    parts = urlsplit(url.strip())
    if parts.scheme not in ("redis", "rediss") or not parts.query:
        return url
    moved: dict[str, str] = {}
    kept: list[tuple[str, str]] = []
    # parse_qsl decodes like redis-py's parse_qs (%XX, and + as a space); the first value wins.
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in _MOVED:
            moved.setdefault(name, value)
        elif name.startswith("ssl_"):
            kept.append((name, value))
        else:
            raise ValueError(
                f"the query option {name!r} is not supported (Celery's Redis transport refuses"
                " it): remove it; the URL's query may hold password, username, db and ssl_*"
            )
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
