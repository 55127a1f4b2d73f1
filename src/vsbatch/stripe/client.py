"""A small synchronous client for Stripe Identity VerificationSessions (retrieve, update, list).

Each method makes exactly one HTTP attempt; retrying is the caller's job, through
:mod:`vsbatch.stripe.retry`. Every failure leaves as a :class:`vsbatch.errors.StripeError`:
answers are mapped by :func:`error_from_response`, and transport failures become
:class:`~vsbatch.errors.APIConnectionError` raised ``from`` the httpx exception, so no
``httpx`` exception ever escapes. The API key is only ever written into the
``Authorization`` header of outgoing requests: never into a message, a log line or a repr.
"""

from __future__ import annotations

import builtins
import json
import logging
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlencode

import httpx
from pydantic import ValidationError

from vsbatch import config
from vsbatch.errors import (
    APIError,
    ConfigError,
    InvalidRequestError,
)
from vsbatch.stripe.answers import HTTPX_ERRORS, connection_error, error_from_response, scrubbed
from vsbatch.stripe.http_deadline import deadline, transport_for
from vsbatch.stripe.keyscrub import scrub_response
from vsbatch.stripe.session import ResponseMeta, VerificationSession, validate_session_id

if TYPE_CHECKING:
    from vsbatch.config import Settings

__all__ = ["StripeClient"]

logger = logging.getLogger(__name__)

SESSIONS_PATH = "/v1/identity/verification_sessions"
SESSION_OBJECT = "identity.verification_session"

try:
    _VERSION = _dist_version("vsbatch")
except PackageNotFoundError:  # pragma: no cover - only when run from a bare checkout
    _VERSION = "0"
USER_AGENT = f"vsbatch/{_VERSION}"

_HEADER_SAFE_RE = re.compile(r"[\x21-\x7e]+")


def _check_header_value(value: str, *, param: str, max_length: int = 255) -> str:
    if not _HEADER_SAFE_RE.fullmatch(value) or len(value) > max_length:
        raise InvalidRequestError(
            f"Invalid {param}: must be 1 to {max_length} printable ASCII characters",
            param=param,
        )
    return value


class StripeClient:
    """One pooled httpx client for the VerificationSession endpoints; one attempt per call.

    Args:
        api_key: the secret or restricted key (``sk_``/``rk_``); kept out of every message.
        base_url: the API root; the emulator's URL in tests and demos.
        stripe_version: the ``Stripe-Version`` header.
        connect_timeout: seconds to open a connection.
        timeout: seconds for reading, writing and waiting for a pooled connection.
        deadline: seconds for a whole request, connect + write + read, however slowly the
            server trickles its answer (default ``connect_timeout + timeout``). Enforced by the
            transport built here (:class:`~vsbatch.stripe.http_deadline.DeadlineTransport`).
        http_client: an httpx client to use as is (not closed by :meth:`close`).
        transport: a transport for the client built here (``httpx.MockTransport`` in tests).
        max_connections: pool size of the client built here.

    Raises:
        ConfigError: the key is empty or not printable ASCII, the base URL is not http(s),
            or both ``http_client`` and ``transport`` were given.
    """

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = config.STRIPE_API_BASE,
        stripe_version: str = config.STRIPE_VERSION,
        connect_timeout: float = 5.0,
        timeout: float = 20.0,
        deadline: float | None = None,
        http_client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        max_connections: int = 64,
    ) -> None:
        if not isinstance(api_key, str) or not _HEADER_SAFE_RE.fullmatch(api_key):
            raise ConfigError("the Stripe API key is empty or holds non-printable characters")
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError("the Stripe API base URL must start with http:// or https://")
        if http_client is not None and transport is not None:
            raise ConfigError("give StripeClient either http_client or transport, not both")
        self._api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.stripe_version = stripe_version
        self.timeouts = httpx.Timeout(timeout, connect=connect_timeout)
        self.deadline = deadline if deadline is not None else connect_timeout + timeout
        self._owns_client = http_client is None
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        # Requests go straight to the transport when this client owns it: httpx.Client's
        # layers (URL merging, auth and redirect loops, a cookie jar read on every answer)
        # were a sixth of a worker's CPU per row, and an API client wants none of them (a
        # cookie a server sets is never sent back). A caller's own client is used as given.
        self._transport = None if http_client is not None else transport
        if self._transport is None and http_client is None:
            self._transport = transport_for(self.base_url, limits)
        self._timeout = {"timeout": self.timeouts.as_dict()}
        self._http = http_client or httpx.Client(
            transport=self._transport,
            timeout=self.timeouts,
            limits=limits,
            follow_redirects=False,
        )

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> StripeClient:
        """The one way vsbatch builds its client: key, base, version and both timeouts from
        ``settings`` (``options``: the other keyword arguments, e.g. ``max_connections``).

        Raises:
            ConfigError: No usable API key is configured.
        """
        return cls(
            settings.require_api_key(),
            base_url=settings.stripe_api_base,
            stripe_version=settings.stripe_version,
            connect_timeout=settings.http_connect_timeout,
            timeout=settings.http_timeout,
            **options,
        )

    def __repr__(self) -> str:
        mode = "live" if "_live_" in self._api_key[:8] else "test"
        return f"StripeClient(base_url={self.base_url!r}, mode={mode!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool (unless the httpx client was given by the caller)."""
        if self._owns_client:
            self._http.close()

    def retrieve(
        self,
        session_id: str,
        *,
        stripe_account: str | None = None,
        expand: Sequence[str] = ("provided_details",),
    ) -> VerificationSession:
        """Fetch one VerificationSession.

        ``provided_details`` is expandable: Stripe returns it only when asked, and vsbatch
        compares it with updates, so it is expanded by default.

        Raises:
            StripeError: a subclass for every failure, APIConnectionError for transport ones.
        """
        path = f"{SESSIONS_PATH}/{validate_session_id(session_id)}"
        if expand:
            path += "?" + urlencode([("expand[]", field) for field in expand])
        response = self._send("GET", path, stripe_account=stripe_account)
        return self._parse_session(response, session_id, idempotency_key=None)

    def update(
        self,
        session_id: str,
        params: Sequence[tuple[str, str]],
        *,
        idempotency_key: str,
        stripe_account: str | None = None,
    ) -> VerificationSession:
        """POST form-encoded ``params`` to one session under the caller's idempotency key.

        Args:
            session_id: the ``vs_...`` id.
            params: form pairs with bracketed keys (``metadata[k]``), as ``SessionUpdate``
                encodes them.
            idempotency_key: the same key on every attempt of one logical update.
            stripe_account: a connected account (``Stripe-Account`` header).

        Returns:
            The updated session; ``last_response`` tells whether Stripe replayed it.

        Raises:
            StripeError: a subclass for every failure; an APIConnectionError says through
                ``may_have_applied`` whether the update may have reached Stripe. A 2xx that is
                not this session (another object or id, or no JSON) is an APIError with
                ``http_status`` 2xx: ambiguous, to be resolved by a read-back.
        """
        path = f"{SESSIONS_PATH}/{validate_session_id(session_id)}"
        key = _check_header_value(idempotency_key, param="idempotency_key")
        # Literal brackets, as stripe-python sends them: easier to read, fine for the server.
        body = urlencode(builtins.list(params), safe="[]")
        response = self._send(
            "POST", path, stripe_account=stripe_account, idempotency_key=key, body=body
        )
        return self._parse_session(response, session_id, idempotency_key=key)

    def list(
        self,
        *,
        status: str | None = None,
        created: int | Mapping[str, int] | None = None,
        limit: int = 100,
        stripe_account: str | None = None,
    ) -> Iterator[VerificationSession]:
        """Yield every matching session, following ``starting_after`` until ``has_more`` is false.

        Args:
            status: only sessions in this status.
            created: a timestamp, or bounds such as ``{"gte": t0, "lt": t1}``.
            limit: page size, 1 to 100.
            stripe_account: a connected account.

        Raises:
            StripeError: on any failing page (the sessions already yielded stay yielded).
        """
        if not 1 <= limit <= 100:
            raise InvalidRequestError("limit must be between 1 and 100", param="limit")
        query: builtins.list[tuple[str, str]] = [("limit", str(limit))]
        if status is not None:
            query.append(("status", status))
        if isinstance(created, Mapping):
            query.extend((f"created[{op}]", str(int(value))) for op, value in created.items())
        elif created is not None:
            query.append(("created", str(int(created))))
        starting_after: str | None = None
        while True:
            page = query + ([("starting_after", starting_after)] if starting_after else [])
            path = f"{SESSIONS_PATH}?{urlencode(page, safe='[]')}"
            response = self._send("GET", path, stripe_account=stripe_account)
            body = self._json_object(response)
            data = body.get("data")
            if not isinstance(data, builtins.list):
                raise self._unexpected(response, "a list without data")
            for item in data:
                yield self._model(item, response, idempotency_key=None)
            if not body.get("has_more") or not data:
                return
            starting_after = str(data[-1].get("id")) if isinstance(data[-1], dict) else None
            if not starting_after:
                raise self._unexpected(response, "a list item without an id")

    def _send(
        self,
        method: str,
        path: str,
        *,
        stripe_account: str | None,
        idempotency_key: str | None = None,
        body: str | None = None,
    ) -> httpx.Response:
        headers = {
            "Authorization": f"Bearer {self._api_key}",
            "Stripe-Version": self.stripe_version,
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
        }
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        if stripe_account is not None:
            headers["Stripe-Account"] = _check_header_value(stripe_account, param="stripe_account")
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        started = time.monotonic()
        try:
            with deadline(self.deadline):
                response = self._exchange(method, self.base_url + path, headers, body)
        except HTTPX_ERRORS as exc:
            logger.debug(
                "%s %s failed: %s after %.1f ms",
                method,
                path,
                type(exc).__name__,
                (time.monotonic() - started) * 1000,
            )
            overdue = time.monotonic() - started >= self.deadline
            raise connection_error(
                exc, method, self.timeouts, deadline=self.deadline if overdue else None
            ) from exc
        # Before anything reads the answer: a server that echoes the key must not spread it.
        response = scrub_response(response, self._api_key)
        logger.debug(
            "%s %s -> %s request_id=%s in %.1f ms",
            method,
            path,
            response.status_code,
            response.headers.get("Request-Id"),
            (time.monotonic() - started) * 1000,
        )
        if not response.is_success:
            raise scrubbed(error_from_response(response), self._api_key)
        return response

    def _exchange(
        self, method: str, url: str, headers: dict[str, str], body: str | None
    ) -> httpx.Response:
        """One request and its whole answer, read and the connection given back."""
        if self._transport is None:
            return self._http.request(method, url, headers=headers, content=body)
        request = httpx.Request(
            method, url, headers=headers, content=body, extensions=self._timeout
        )
        response = self._transport.handle_request(request)
        response.request = request
        try:
            response.read()
        finally:
            response.close()
        return response

    def _unexpected(self, response: httpx.Response, what: str) -> APIError:
        return APIError(
            f"Unexpected answer from Stripe (HTTP {response.status_code}, {what})",
            http_status=response.status_code,
            request_id=response.headers.get("Request-Id"),
            idempotent_replayed=response.headers.get("Idempotent-Replayed", "").lower() == "true",
        )

    def _json_object(self, response: httpx.Response) -> dict[str, Any]:
        try:
            body = json.loads(response.content)
        except (ValueError, UnicodeDecodeError):
            raise self._unexpected(response, "not JSON") from None
        if not isinstance(body, dict):
            raise self._unexpected(response, "not a JSON object")
        return body

    def _model(
        self,
        data: object,
        response: httpx.Response,
        *,
        idempotency_key: str | None,
        session_id: str | None = None,
    ) -> VerificationSession:
        # A 2xx counts only if it is the very session asked for: a proxy or cache may answer
        # 200 with something else, and taking that as "applied" would be a guess.
        fields = data if isinstance(data, dict) else {}
        kind, found = (str(fields.get(name))[:80] for name in ("object", "id"))
        if fields.get("object") != SESSION_OBJECT:
            what = f"object {kind!r}, not {SESSION_OBJECT!r}"
            raise scrubbed(self._unexpected(response, what), self._api_key)
        if session_id is not None and fields.get("id") != session_id:
            what = f"session {found!r}, not {session_id!r}"
            raise scrubbed(self._unexpected(response, what), self._api_key)
        try:
            session = VerificationSession.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            raise self._unexpected(
                response, f"not a VerificationSession: {where}: {first['msg']}"
            ) from None
        session._last_response = ResponseMeta(
            http_status=response.status_code,
            request_id=response.headers.get("Request-Id"),
            idempotency_key=response.headers.get("Idempotency-Key", idempotency_key),
            idempotent_replayed=response.headers.get("Idempotent-Replayed", "").lower() == "true",
        )
        return session

    def _parse_session(
        self, response: httpx.Response, session_id: str, *, idempotency_key: str | None
    ) -> VerificationSession:
        data = self._json_object(response)
        return self._model(data, response, idempotency_key=idempotency_key, session_id=session_id)
