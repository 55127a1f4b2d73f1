"""Where a rehearsal would notice: the emulator answers stripe-python as Stripe does.

Each test drives the official library against the emulator over a socket; the ``library``
fixture then checks every answer it got against Stripe's OpenAPI subset. The sources of each
expected answer are named in ``docs/emulator.md`` ("Where the emulator differs from Stripe").
"""

from __future__ import annotations

from typing import Any

import pytest
import stripe

SPEC_VERSION = "2026-07-29.dahlia"


def _sessions(library: stripe.StripeClient) -> Any:
    return library.v1.identity.verification_sessions


class TestRequestChecks:
    """Empty details are refused; replays say which request they replay."""

    @pytest.mark.parametrize("field", ["email", "phone"])
    def test_empty_provided_detail_is_refused(
        self, emulator: Any, library: stripe.StripeClient, field: str
    ) -> None:
        """``provided_details[email]=`` cannot unset the email: 400 parameter_invalid_empty."""
        [sid] = emulator.seed(provided_details={field: "x"})

        with pytest.raises(stripe.InvalidRequestError) as caught:
            _sessions(library).update(sid, {"provided_details": {field: ""}})

        actual = (caught.value.http_status, caught.value.code, caught.value.param)
        assert (400, "parameter_invalid_empty", f"provided_details[{field}]") == actual

    def test_replay_names_the_original_request(
        self, emulator: Any, library: stripe.StripeClient
    ) -> None:
        """A replayed answer carries ``Original-Request``: the first request's id."""
        [sid] = emulator.seed()
        sessions = _sessions(library)
        first = sessions.update(sid, {"metadata": {"a": "1"}}, {"idempotency_key": "fid-1"})

        again = sessions.update(sid, {"metadata": {"a": "1"}}, {"idempotency_key": "fid-1"})

        headers = again.last_response.headers
        actual = (headers["Idempotent-Replayed"], headers["Original-Request"])
        assert ("true", first.last_response.request_id) == actual
