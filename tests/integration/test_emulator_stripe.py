"""The official stripe-python library, pointed at the emulator over a socket, works as on Stripe."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from tests.stripe_contract import official_client


def _client(emulator: Any, retries: int = 0) -> stripe.StripeClient:
    return official_client(emulator.url, retries=retries)


class TestStripeLibrary:
    """Modify, retrieve, auto-page, and the library's exception classes."""

    def test_update_through_the_library(self, emulator: Any) -> None:
        """``verification_sessions.update`` returns the updated VerificationSession."""
        [sid] = emulator.seed()
        client = _client(emulator)

        session = client.v1.identity.verification_sessions.update(
            sid,
            {
                "metadata": {"batch": "b1"},
                "options": {"document": {"allowed_types": ["passport", "id_card"]}},
            },
        )

        actual = (session.id, session.metadata.to_dict(), session.options.to_dict())
        expected = (sid, {"batch": "b1"}, {"document": {"allowed_types": ["passport", "id_card"]}})
        assert expected == actual

    def test_retrieve_through_the_library(self, emulator: Any) -> None:
        """``retrieve`` gives a VerificationSession object with Stripe's fields."""
        [sid] = emulator.seed(status="verified")

        session = _client(emulator).v1.identity.verification_sessions.retrieve(sid)

        actual = (type(session).__name__, session.status, session.livemode)
        assert ("VerificationSession", "verified", False) == actual

    def test_auto_paging_walks_every_session(self, emulator: Any) -> None:
        """``auto_paging_iter`` over pages of 10 yields all 25 sessions newest first."""
        ids = emulator.seed(count=25)
        client = _client(emulator)

        page = client.v1.identity.verification_sessions.list({"limit": 10})
        actual = [session.id for session in page.auto_paging_iter()]

        assert ids[::-1] == actual

    def test_unknown_parameter_raises_invalid_request_error_with_param(self, emulator: Any) -> None:
        """An unknown parameter raises InvalidRequestError whose param names it."""
        [sid] = emulator.seed()
        client = _client(emulator)

        with pytest.raises(stripe.InvalidRequestError) as caught:
            client.v1.identity.verification_sessions.update(sid, {"return_url": "x"})  # type: ignore[typeddict-unknown-key]

        assert ("return_url", "parameter_unknown") == (caught.value.param, caught.value.code)

    def test_reused_key_with_other_params_raises_idempotency_error(self, emulator: Any) -> None:
        """A key reused with other parameters raises IdempotencyError."""
        [sid] = emulator.seed()
        client = _client(emulator)
        sessions = client.v1.identity.verification_sessions
        sessions.update(sid, {"metadata": {"a": "1"}}, {"idempotency_key": "lib-key"})

        with pytest.raises(stripe.IdempotencyError):
            sessions.update(sid, {"metadata": {"a": "2"}}, {"idempotency_key": "lib-key"})

    def test_rate_limit_raises_rate_limit_error(self, emulator: Any) -> None:
        """Past the limit the library raises RateLimitError (no retries configured)."""
        emulator.configure(rate_limit=2)
        [sid] = emulator.seed()
        sessions = _client(emulator).v1.identity.verification_sessions
        sessions.retrieve(sid)
        sessions.retrieve(sid)

        with pytest.raises(stripe.RateLimitError) as caught:
            sessions.retrieve(sid)

        body = caught.value.json_body or {}
        assert (429, "rate_limit") == (caught.value.http_status, body["error"]["code"])

    def test_library_retry_after_500_replays_without_reapplying(self, emulator: Any) -> None:
        """The library does not retry a stored 500 (Should-Retry false); the change applied once."""
        emulator.configure(fail_500_after_rate=1.0)
        [sid] = emulator.seed()
        sessions = _client(emulator, retries=2).v1.identity.verification_sessions

        with pytest.raises(stripe.APIError):
            sessions.update(sid, {"metadata": {"a": "1"}})

        assert ({sid: 1}, {"500": 1}) == (emulator.stats()["applied"], emulator.stats()["requests"])
