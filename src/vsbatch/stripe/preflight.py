"""Preflight: one cheap authenticated request before a command stages anything.

``GET /v1/identity/verification_sessions?limit=1`` proves in one round trip that the base URL
answers like Stripe, over working TLS, and that the key may read VerificationSessions. A
wrong or revoked key, an unreachable base, a TLS failure or a server that is not Stripe then
ends ``run``, ``submit``, ``plan``, ``verify``, ``retry``, ``resume`` and ``migrate plan|run``
within seconds, with one line naming the URL and the cause, before a single row is staged:
without it, every row would fail (or retry for minutes) one by one.

:func:`classify` and :func:`classify_error` are pure (an answer or a transport error in, a
:class:`Verdict` out); :func:`check` does the request, retrying only a busy or failing Stripe
(429, 5xx) a couple of times. The whole preflight, every try and wait, ends within
:data:`BUDGET` seconds: each request runs under the total deadline of
:mod:`vsbatch.stripe.http_deadline` (the Stripe client's mechanism), so a server that trickles its
answer cannot hold it, and a timeout is not tried again. :func:`probe` is the one request,
shared with ``vsbatch doctor``. Nothing here ever quotes the server's text or the key.
"""

from __future__ import annotations

import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from vsbatch.config import Settings
from vsbatch.errors import ConfigError
from vsbatch.stripe.client import SESSIONS_PATH, USER_AGENT
from vsbatch.stripe.http_deadline import deadline, transport_for
from vsbatch.stripe.keyscrub import scrub_response
from vsbatch.urls import safe_url

__all__ = ["BUDGET", "PREFLIGHT_PATH", "Verdict", "check", "classify", "classify_error", "probe"]

PREFLIGHT_PATH = f"{SESSIONS_PATH}?limit=1"
ATTEMPTS = 3
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 10.0
BUDGET = 15.0  # seconds for the whole preflight: every try, every wait
_WORD = re.compile(r"[a-z_]{1,60}")


@dataclass(frozen=True)
class Verdict:
    """What one preflight answer says: usable, or why not and whether trying again may help."""

    ok: bool
    cause: str = ""
    retry: bool = False


OK = Verdict(ok=True)


def _stripe_code(response: httpx.Response) -> str | None:
    """Stripe's ``error.code`` (or ``type``) when the body is a Stripe error, else None."""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None
    for field in ("code", "type"):
        value = error.get(field)
        if isinstance(value, str) and _WORD.fullmatch(value):
            return value
    return ""


def _is_list(response: httpx.Response) -> bool:
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(body, dict) and body.get("object") == "list" and "data" in body


def classify(response: httpx.Response) -> Verdict:
    """The verdict on one answer to :data:`PREFLIGHT_PATH` (pure)."""
    status = response.status_code
    code = _stripe_code(response)
    said = f" ({code})" if code else ""
    if status == 200 and _is_list(response):
        return OK
    if code is None:
        kind = response.headers.get("Content-Type", "no content type").split(";")[0]
        return Verdict(False, f"the answer is not Stripe's (HTTP {status}, {kind}): check the URL")
    if status == 401:
        return Verdict(False, f"the API key was refused (HTTP 401{said}): check the key")
    if status == 403:
        return Verdict(
            False,
            f"the key may not read VerificationSessions (HTTP 403{said}): a restricted key"
            " needs the Identity VerificationSessions permission",
        )
    if status == 429 or status >= 500:
        return Verdict(False, f"Stripe is busy or failing (HTTP {status}{said}): try again", True)
    return Verdict(False, f"Stripe refused the request (HTTP {status}{said})")


def _ssl_reason(exc: BaseException) -> str | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return str(getattr(seen, "reason", None) or type(seen).__name__)
        seen = seen.__cause__ or seen.__context__
    return None


def classify_error(exc: httpx.HTTPError, waited: float = READ_TIMEOUT) -> Verdict:
    """The verdict on a request that got no (complete) answer after ``waited`` seconds (pure).

    A timeout is final: a server that did not answer in time is not asked again.
    """
    reason = _ssl_reason(exc)
    if reason is not None:
        return Verdict(False, f"TLS failed ({reason})")
    if isinstance(exc, httpx.ConnectTimeout):
        return Verdict(False, f"timed out connecting (after {CONNECT_TIMEOUT:g}s)")
    if isinstance(exc, httpx.TimeoutException):
        return Verdict(False, f"no complete answer within {waited:.0f}s")
    if isinstance(exc, httpx.ConnectError):
        return Verdict(False, "cannot connect (refused, unreachable or unknown host)")
    if isinstance(exc, httpx.RemoteProtocolError):
        return Verdict(False, "the server did not answer in HTTP")
    return Verdict(False, f"network error ({type(exc).__name__})")


def probe(
    settings: Settings,
    key: str,
    *,
    seconds: float,
    transport: httpx.BaseTransport | None = None,
) -> tuple[httpx.Response | None, Verdict]:
    """One preflight request, over within ``seconds`` in total; the answer and its verdict.

    Without ``transport``, the request goes through the deadline-bound transport (and the
    environment's proxy, if any) that the Stripe client uses.

    Raises:
        ConfigError: the environment names a proxy vsbatch cannot use.
    """
    url = settings.stripe_api_base + PREFLIGHT_PATH
    headers = {
        "Authorization": f"Bearer {key}",
        "User-Agent": USER_AGENT,
        "Accept": "application/json",
        "Stripe-Version": settings.stripe_version,
    }
    timeout = httpx.Timeout(
        min(settings.http_timeout, READ_TIMEOUT, seconds),
        connect=min(settings.http_connect_timeout, CONNECT_TIMEOUT, seconds),
    )
    if transport is None:
        transport = transport_for(url, httpx.Limits(max_connections=1))
    started = time.monotonic()
    with (
        httpx.Client(transport=transport, timeout=timeout, follow_redirects=False) as client,
        deadline(seconds),
    ):
        try:
            response = scrub_response(client.get(url, headers=headers), key)
        except httpx.HTTPError as exc:
            return None, classify_error(exc, time.monotonic() - started)
    return response, classify(response)


def check(
    settings: Settings,
    *,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    budget: float = BUDGET,
) -> float:
    """Make the preflight request; return when the key and base are usable.

    Args:
        settings: the key, API base, Stripe-Version and timeouts.
        transport: an httpx transport (tests); default the deadline-bound one.
        sleep: waits between tries (tests inject it).
        clock: measures the usable answer's round trip (tests inject it).
        budget: seconds for the whole preflight, every try and wait together.

    Returns:
        The seconds the usable answer took (connection set-up included): what ``run`` sizes
        its worker threads with (``sizing.threads_for``).

    Raises:
        ConfigError: one line ``preflight GET <url> failed: <cause>; nothing was staged``.
    """
    key = settings.require_api_key()
    url = settings.stripe_api_base + PREFLIGHT_PATH
    end = time.monotonic() + budget
    verdict = OK
    elapsed = 0.0
    for attempt in range(ATTEMPTS):
        if attempt:
            pause = 0.5 * attempt
            if end - time.monotonic() <= pause + 1.0:
                break  # no time left for another useful try: report the last answer
            sleep(pause)
        left = max(end - time.monotonic(), 0.001)
        started = clock()
        _response, verdict = probe(settings, key, seconds=left, transport=transport)
        elapsed = clock() - started
        if verdict.ok or not verdict.retry:
            break
    if not verdict.ok:
        raise ConfigError(
            f"preflight GET {safe_url(url)} failed: {verdict.cause}; nothing was staged"
        )
    return elapsed
