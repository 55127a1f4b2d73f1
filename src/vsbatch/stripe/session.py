"""The ``identity.verification_session`` object as the client returns it, with the wire facts
of the answer it was parsed from, and the rule a session id must follow before it is sent."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, PrivateAttr

from vsbatch.errors import InvalidRequestError

# An allowlist is stricter than refusing "/", "?", "#" and whitespace: Stripe ids are
# "<prefix>_<alphanumerics>", and anything else in a URL path could reach another endpoint.
_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,255}")


def validate_session_id(session_id: str) -> str:
    """Refuse a session id that could change the request path, before anything is sent.

    Raises:
        InvalidRequestError: the id is empty or holds ``/``, ``?``, ``#``, whitespace, etc.
    """
    if not isinstance(session_id, str) or not _ID_RE.fullmatch(session_id):
        raise InvalidRequestError(
            f"Invalid VerificationSession id {session_id!r}: expected letters, digits and '_'",
            param="id",
        )
    return session_id


@dataclass(frozen=True)
class ResponseMeta:
    """Wire facts of the answer a model was parsed from."""

    http_status: int
    request_id: str | None
    idempotency_key: str | None
    idempotent_replayed: bool


class VerificationSession(BaseModel):
    """An ``identity.verification_session`` object; fields vsbatch does not know are kept."""

    model_config = ConfigDict(extra="allow")

    id: str
    object: str = "identity.verification_session"
    status: str
    type: str
    created: int
    livemode: bool
    metadata: dict[str, str] = {}
    options: dict[str, Any] | None = None
    provided_details: dict[str, Any] | None = None
    last_error: dict[str, Any] | None = None
    redaction: dict[str, Any] | None = None
    client_secret: str | None = None
    client_reference_id: str | None = None
    url: str | None = None
    last_verification_report: str | dict[str, Any] | None = None
    related_customer: str | None = None
    related_customer_account: str | None = None
    verification_flow: str | None = None
    verified_outputs: dict[str, Any] | None = None

    _last_response: ResponseMeta | None = PrivateAttr(default=None)

    @property
    def last_response(self) -> ResponseMeta | None:
        """The status, request id and idempotency facts of the answer, when fetched."""
        return self._last_response
