"""URLs as vsbatch prints them: without credentials.

Every URL vsbatch shows or logs (a Redis URL with its password, the embedded server's, an API
base someone wrote with userinfo) goes through :func:`safe_url`: the userinfo of every URL
(``redis://:pw@host`` becomes ``redis://***@host``) and query parameters such as
``password=`` (and any name holding it: ``sslpassword=``), ``token=``, ``secret=`` are
replaced.
"""

from __future__ import annotations

import re

__all__ = ["safe_url"]

# scheme://user:password@host -> scheme://***@host (greedy: a password may hold an "@").
_USERINFO_RE = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)[^\s/?#]*@")
_SECRET_PARAM_RE = re.compile(
    # Any name holding "password" or "passwd" (``sslpassword=``, ``db_password=``) too.
    r"([?&;](?:[\w.-]*pass(?:wor|w)d[\w.-]*|pwd|pass|secret|token|access_token|api_key|apikey"
    r"|key|auth)=)"
    r"[^&#\s'\"]*",
    re.IGNORECASE,
)


def safe_url(url: str) -> str:
    """``url`` (or any text holding URLs) without userinfo or password-like query values."""
    return _SECRET_PARAM_RE.sub(r"\1***", _USERINFO_RE.sub(r"\1***@", url))
