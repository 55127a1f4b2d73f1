"""The Stripe errors the retry tests build: a test key, the error the client maps an answer to
(:func:`answer`) and the ``invalid_request_error`` type, shared by the retry-predicate and
the retrying tests.
"""

from __future__ import annotations

import httpx

from vsbatch.errors import StripeError
from vsbatch.stripe.answers import error_from_response

KEY = "sk_test_SECRETSECRET"


def answer(
    status: int, kind: str = "api_error", code: str | None = None, should_retry: str | None = None
) -> StripeError:
    """The error the client maps this answer to."""
    headers = {"Request-Id": "req_1"}
    if should_retry is not None:
        headers["Stripe-Should-Retry"] = should_retry
    body = {"error": {"type": kind, "code": code, "message": "m"}}
    return error_from_response(httpx.Response(status, json=body, headers=headers))


IR = "invalid_request_error"
