"""Removing one known secret (the Stripe API key) from whatever a server sends back.

The key leaves the process only in the ``Authorization`` header. A server that echoes it
(in ``error.message``, ``error.code``, a ``Request-Id`` header, a session's metadata) would
otherwise hand it to the ledger, the reports, the logs and Redis's append-only file. So the
Stripe client passes every answer through :func:`scrub_response` before reading anything
from it: nothing downstream ever holds the key. The key is found raw, as a substring, URL-
encoded (``quote``, ``quote_plus``, every byte percent-encoded, either hex case) and in the
Basic-auth form (``base64(key + ":")``).
"""

from __future__ import annotations

import base64
import functools
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus

if TYPE_CHECKING:  # logging scrubs text too: a command that sends nothing needs no httpx
    import httpx

__all__ = ["MARK", "scrub_response", "scrub_text", "scrub_value", "secret_forms"]

MARK = "[redacted-key]"


@functools.lru_cache(maxsize=8)
def secret_forms(secret: str) -> tuple[str, ...]:
    """Every spelling of ``secret`` that vsbatch looks for, longest first."""
    if not secret:
        return ()
    raw = secret.encode()
    forms = {
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        "".join(f"%{b:02X}" for b in raw),
        "".join(f"%{b:02x}" for b in raw),
        base64.b64encode(raw + b":").decode(),
        base64.b64encode(raw).decode().rstrip("="),
    }
    return tuple(sorted(forms, key=len, reverse=True))


def scrub_text(text: str, secret: str) -> str:
    """``text`` with every form of ``secret`` replaced by :data:`MARK`."""
    for form in secret_forms(secret):
        if form in text:
            text = text.replace(form, MARK)
    return text


def scrub_value(value: Any, secret: str) -> Any:
    """A copy of a JSON-like value (dict keys included) with ``secret`` removed from strings."""
    if isinstance(value, str):
        return scrub_text(value, secret)
    if isinstance(value, dict):
        return {scrub_value(k, secret): scrub_value(v, secret) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_value(v, secret) for v in value]
    return value


def _holds(data: str, secret: str) -> bool:
    return any(form in data for form in secret_forms(secret))


def scrub_response(response: httpx.Response, secret: str) -> httpx.Response:
    """The response itself when it holds no form of ``secret``, else a scrubbed copy.

    Headers are scrubbed as text. A JSON body is decoded first (so that a key written with
    ``\\u`` escapes is found too) and re-encoded; any other body is scrubbed as text.
    """
    import httpx

    if not secret:
        return response
    content = response.content
    text = content.decode("utf-8", errors="replace")
    headers = list(response.headers.multi_items())
    escaped = "\\u" in text  # a JSON string may spell the key with escapes
    if not (escaped or _holds(text, secret) or any(_holds(v, secret) for _, v in headers)):
        return response
    try:
        parsed = json.loads(text)
    except ValueError:
        body = scrub_text(text, secret).encode()
    else:
        scrubbed = scrub_value(parsed, secret)
        body = content if scrubbed == parsed else json.dumps(scrubbed).encode()
    if body == content and not any(_holds(v, secret) for _, v in headers):
        return response
    clean = [
        (k, scrub_text(v, secret))
        for k, v in headers
        if k.lower() not in ("content-length", "content-encoding", "transfer-encoding")
    ]
    return httpx.Response(
        response.status_code, headers=clean, content=body, request=response.request
    )
