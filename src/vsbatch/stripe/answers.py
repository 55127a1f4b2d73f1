"""Stripe's answers mapped to vsbatch's error tree: a non-2xx response (:func:`error_from_response`,
like stripe-python's ``specific_v1_api_error``), a transport failure (:func:`connection_error`)
and a server that echoes the key (:func:`scrubbed`). No httpx exception leaves the client.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from vsbatch.errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    CardError,
    IdempotencyError,
    InvalidRequestError,
    PermissionDeniedError,
    RateLimitError,
    StripeError,
)
from vsbatch.stripe.keyscrub import scrub_text, scrub_value

# Failures that happen before a single byte of the request left this process.
NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.LocalProtocolError,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
    httpx.InvalidURL,
)
HTTPX_ERRORS = (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, httpx.CookieConflict)


def _should_retry_header(headers: httpx.Headers) -> bool | None:
    value = headers.get("Stripe-Should-Retry", "").strip().lower()
    return {"true": True, "false": False}.get(value)


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def error_from_response(response: httpx.Response) -> StripeError:
    """Map one non-2xx answer to the error class its status and body call for.

    Like stripe-python's ``specific_v1_api_error``: 429 (or 400 ``rate_limit``) is a
    RateLimitError; 400/404 an InvalidRequestError, or an IdempotencyError for
    ``idempotency_error``; 409 ``idempotency_key_in_use`` an IdempotencyError; 401
    AuthenticationError; 402 CardError; 403 PermissionDeniedError; anything else, and any
    body that is not a JSON ``{"error": {...}}``, an APIError.
    """
    status = response.status_code
    wire: dict[str, Any] = {
        "http_status": status,
        "request_id": response.headers.get("Request-Id"),
        "should_retry": _should_retry_header(response.headers),
        "idempotent_replayed": response.headers.get("Idempotent-Replayed", "").lower() == "true",
        "retry_after": _retry_after(response.headers),
    }
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return APIError(
            f"Unexpected answer from Stripe (HTTP {status}, no error object in the body)",
            json_body=body if isinstance(body, dict) else None,
            **wire,
        )
    error: dict[str, Any] = body["error"]
    code = error.get("code") if isinstance(error.get("code"), str) else None
    kind = error.get("type")
    message = error.get("message") if isinstance(error.get("message"), str) else None
    fields: dict[str, Any] = {
        "code": code,
        "param": error.get("param") if isinstance(error.get("param"), str) else None,
        "json_body": body,
        **wire,
    }
    text = message or f"Stripe answered HTTP {status}" + (f" ({code})" if code else "")
    cls: type[StripeError]
    if status == 429 or (status == 400 and code == "rate_limit"):
        cls = RateLimitError
    elif status in (400, 404):
        cls = IdempotencyError if kind == "idempotency_error" else InvalidRequestError
    elif status == 409 and (code == "idempotency_key_in_use" or kind == "idempotency_error"):
        cls = IdempotencyError
    elif status == 401:
        cls = AuthenticationError
    elif status == 402:
        cls = CardError
    elif status == 403:
        cls = PermissionDeniedError
    else:
        cls = APIError
    return cls(text, **fields)


def connection_error(
    exc: Exception, method: str, timeouts: httpx.Timeout, *, deadline: float | None = None
) -> APIConnectionError:
    """A plain-words APIConnectionError for one httpx failure (never quoting headers).

    ``deadline`` is given when the request's total deadline had passed when it failed.
    """
    may_have_applied = method != "GET" and not isinstance(exc, NOT_SENT)
    if deadline is not None and isinstance(exc, httpx.TimeoutException):
        text = f"No complete answer from Stripe within the request deadline ({deadline:g}s)"
    elif isinstance(exc, httpx.ConnectTimeout):
        text = f"Timed out connecting to Stripe (connect timeout after {timeouts.connect}s)"
    elif isinstance(exc, httpx.PoolTimeout):
        text = f"Timed out waiting for a free connection (pool timeout after {timeouts.pool}s)"
    elif isinstance(exc, httpx.ReadTimeout):
        text = f"Timed out waiting for Stripe (read timeout after {timeouts.read}s)"
    elif isinstance(exc, httpx.WriteTimeout):
        text = f"Timed out sending to Stripe (write timeout after {timeouts.write}s)"
    elif isinstance(exc, httpx.ConnectError):
        text = "Could not connect to Stripe"
    elif isinstance(exc, httpx.RemoteProtocolError):
        text = "Stripe closed the connection without a complete answer"
    elif isinstance(exc, httpx.ReadError | httpx.WriteError):
        text = "The connection to Stripe failed mid-request"
    else:
        text = f"Network error talking to Stripe ({type(exc).__name__})"
    if may_have_applied:
        text += "; the request may have been applied"
    return APIConnectionError(text, may_have_applied=may_have_applied)


def scrubbed(error: StripeError, secret: str) -> StripeError:
    """Remove the key from an error built from a server's answer, should a server echo it."""
    error.user_message = scrub_text(error.user_message, secret)
    error.args = (error.user_message,)
    error.json_body = scrub_value(error.json_body, secret)
    return error
