"""A Stripe behind ``httpx.MockTransport`` for the client's unit tests: a test key, Stripe's
session and error bodies, a recording handler and a client wired to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from vsbatch.stripe.client import StripeClient

KEY = "sk_test_SECRETSECRET"


Handler = Callable[[httpx.Request], httpx.Response]


def session_json(session_id: str = "vs_123", **overrides: Any) -> dict[str, Any]:
    """A VerificationSession as Stripe's fixtures show it."""
    body: dict[str, Any] = {
        "id": session_id,
        "object": "identity.verification_session",
        "client_reference_id": None,
        "client_secret": None,
        "created": 1234567890,
        "last_error": {"code": None, "reason": None},
        "last_verification_report": None,
        "livemode": False,
        "metadata": {},
        "options": {"document": {"require_matching_selfie": True}},
        "provided_details": None,
        "redaction": None,
        "status": "requires_input",
        "type": "document",
        "url": None,
        "related_customer": None,
        "related_customer_account": None,
    }
    body.update(overrides)
    return body


def error_json(kind: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    """A Stripe error body."""
    return {"error": {"type": kind, "code": code, "param": param, "message": f"{kind} happened"}}


def make_client(handler: Handler, **kwargs: Any) -> StripeClient:
    """A client whose requests go to ``handler``."""
    return StripeClient(KEY, transport=httpx.MockTransport(handler), **kwargs)


class Recorder:
    """A MockTransport handler that records requests and answers from a script."""

    def __init__(self, *responses: httpx.Response) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.responses.pop(0)


def ok(body: dict[str, Any], **headers: str) -> httpx.Response:
    """A 200 answer with a request id."""
    return httpx.Response(200, json=body, headers={"Request-Id": "req_ok", **headers})
