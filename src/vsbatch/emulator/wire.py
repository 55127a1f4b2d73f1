"""Stripe's wire conventions: API keys, request ids, JSON and error bodies, a dropped response,
and the HTML page a gateway in front of Stripe answers with.

Messages follow the texts seen from the real API where FACTS.md gives them; the rest are the
emulator's own wording, shaped like Stripe's.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import string
import time
from typing import Any, Final

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

__all__ = [
    "MESSAGES",
    "DroppedResponse",
    "api_key",
    "api_key_error",
    "error_body",
    "gateway_page",
    "new_request_id",
    "redact_key",
    "to_json",
]

_BASE62 = string.digits + string.ascii_letters
_ids = random.Random()

MESSAGES: Final[dict[str, str]] = {
    "no_key": (
        "You did not provide an API key. You need to provide your API key in the Authorization "
        "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
        "https://stripe.com/docs/api#authentication for details, or we can help at "
        "https://support.stripe.com/."
    ),
    "rate_limit": (
        "Request rate limit exceeded. You can learn more about rate limits here "
        "https://stripe.com/docs/rate-limits."
    ),
    "lock_timeout": (
        "This object cannot be accessed right now because another API request or Stripe process "
        "is currently accessing it. If you see this error intermittently, retry the request. If "
        "you see this error frequently and are making multiple concurrent requests to a single "
        "object, make your requests serially or at a lower rate. See "
        "https://stripe.com/docs/rate-limits for more information."
    ),
    "idempotency_mismatch": (
        "Keys for idempotent requests can only be used with the same parameters they were first "
        "used with. Try using a key other than '{key}' if you meant to execute a different "
        "request."
    ),
    "idempotency_in_use": (
        "There is currently another in-progress request using this Idempotent Key (that probably "
        "means you submitted twice, and the other request is still going through): {key}. "
        "Please try again later."
    ),
    "api_error": (
        "Sorry, something went wrong. We've already been notified of the problem, but if you "
        "need any help, you can reach out to support at https://support.stripe.com/."
    ),
    "unavailable": (
        "Stripe is temporarily unable to process this request. Please retry with the same "
        "idempotency key; nothing was executed."
    ),
    "account_invalid": (
        "The provided key '{key}' does not have access to account '{account}' (or that account "
        "does not exist). Application access may have been revoked."
    ),
}


def new_request_id() -> str:
    """A ``req_`` id with 14 base62 characters (not seeded: ids need not repeat across runs)."""
    return "req_" + "".join(_ids.choices(_BASE62, k=14))


def to_json(obj: Any) -> bytes:
    """Compact JSON bytes."""
    return json.dumps(obj, separators=(",", ":")).encode()


def error_body(
    request_id: str,
    type: str,
    message: str,
    *,
    code: str | None = None,
    param: str | None = None,
) -> bytes:
    """Stripe's ``{"error": {...}}`` body; ``code`` and ``param`` are left out when None."""
    error: dict[str, Any] = {"type": type, "message": message}
    if code is not None:
        error["code"] = code
        error["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
    if param is not None:
        error["param"] = param
    error["request_log_url"] = (
        f"https://dashboard.stripe.com/test/logs/{request_id}?t={int(time.time())}"
    )
    return to_json({"error": error})


_GATEWAY_TITLES: Final[dict[int, str]] = {
    200: "Request blocked",
    502: "502 Bad Gateway",
    504: "504 Gateway Time-out",
}


def gateway_page(status: int) -> bytes:
    """The HTML page a proxy or load balancer answers with (nothing Stripe would send)."""
    title = _GATEWAY_TITLES.get(status, f"{status} Error")
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()


def redact_key(key: str) -> str:
    """A key as Stripe quotes it in errors: its first 8 and last 4 characters, stars between."""
    prefix = key[:8]
    return prefix + "*" * max(len(key) - 12, 0) + key[-4:] if len(key) > 12 else prefix + "****"


def api_key(authorization: str | None) -> str:
    """The key of an ``Authorization`` header (``Bearer <key>`` or ``Basic base64(<key>:)``);
    ``""`` when there is none."""
    scheme, _, credentials = (authorization or "").partition(" ")
    scheme = scheme.lower()
    credentials = credentials.strip()
    if scheme == "bearer":
        return credentials
    if scheme == "basic":
        try:
            return base64.b64decode(credentials, validate=True).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            return ""
    return ""


def api_key_error(authorization: str | None) -> str | None:
    """Why a request's credentials are refused (a 401 message), or None when they are fine.

    Accepts ``Bearer <key>`` and ``Basic base64(<key>:)`` with a test-mode secret or restricted
    key; live keys are refused because the emulator is test mode only.
    """
    key = api_key(authorization)
    if not key:
        return MESSAGES["no_key"]
    if key.startswith(("sk_test_", "rk_test_")) and len(key) > 8:
        return None
    if key.startswith(("sk_live_", "rk_live_")):
        return (
            f"Invalid API Key provided: {redact_key(key)} "
            "(the emulator runs in test mode only: use a sk_test_ or rk_test_ key)"
        )
    return f"Invalid API Key provided: {redact_key(key)}"


class DroppedResponse(Response):
    """Headers promising a body, a few bytes of it, then the connection closes (uvicorn closes it).

    A client sees a protocol error (httpx: ``RemoteProtocolError``), like a connection reset
    between Stripe's edge and the client.
    """

    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__(b"", 200, headers, "application/json")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the start and a partial body, then return without finishing the response."""
        raw = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        raw.append((b"content-length", b"4096"))
        await send({"type": "http.response.start", "status": 200, "headers": raw})
        await send({"type": "http.response.body", "body": b'{"id":', "more_body": True})
