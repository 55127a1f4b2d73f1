"""Every answer the emulator gives stripe-python fits Stripe's OpenAPI subset (API 2026-07-29).

A sweep of what a rehearsal meets: retrieve, list (paged and expanded), update, cancel, redact,
and the errors (401, 403, 400s, 404, 409-free idempotency errors, 429). Each answer is validated
against the schema its operation gives that status, closed to invented fields
(``tests/stripe_contract.py``).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
import stripe
from jsonschema import ValidationError

from tests.conftest import TEST_API_KEY
from tests.stripe_contract import (
    Answer,
    RecordingClient,
    check_answer,
    check_answers,
    fixture,
    official_client,
)

BASE = "/v1/identity/verification_sessions"


def _quietly(call: Any, *args: Any) -> None:
    """Make a call whose failure is the point: the answer is what gets checked."""
    try:
        call(*args)
    except stripe.StripeError:
        pass


def _successes(library: stripe.StripeClient, emulator: Any) -> None:
    sessions = library.v1.identity.verification_sessions
    emulator.configure(redaction_seconds=0)
    [open_, other] = emulator.seed(
        count=2, provided_details={"email": "a@b.co"}, metadata={"k": "v"}
    )
    [verified] = emulator.seed(status="verified")
    [redacted] = emulator.seed(status="verified", redacted=True)
    sessions.retrieve(open_)
    sessions.retrieve(open_, {"expand": ["provided_details", "last_verification_report"]})
    sessions.retrieve(verified, {"expand": ["last_verification_report"]})
    sessions.retrieve(redacted, {"expand": ["provided_details", "last_verification_report"]})
    list(sessions.list({"limit": 1, "expand": ["data.provided_details"]}).auto_paging_iter())
    sessions.list({"status": "verified", "created": {"gte": 0}})
    sessions.update(
        open_,
        {
            "metadata": {"k": "", "n": "1"},
            "options": {"document": {"allowed_types": ["passport"], "require_id_number": True}},
            "provided_details": {"phone": "+15555550100"},
            "type": "id_number",
            "expand": ["provided_details"],
        },
        {"idempotency_key": "sweep-1"},
    )
    sessions.update(open_, {"metadata": {"n": "1"}}, {"idempotency_key": "sweep-2"})
    sessions.update(open_, {"metadata": {"n": "1"}}, {"idempotency_key": "sweep-2"})
    sessions.cancel(open_)
    sessions.redact(other)
    sessions.retrieve(other, {"expand": ["provided_details"]})
    sessions.redact(verified)
    sessions.retrieve(verified, {"expand": ["last_verification_report"]})
    sessions.create({"type": "document", "provided_details": {"email": "c@d.co"}})


def _errors(library: stripe.StripeClient, emulator: Any, recorder: RecordingClient) -> None:
    sessions = library.v1.identity.verification_sessions
    [sid] = emulator.seed()
    [done] = emulator.seed(status="verified")
    _quietly(sessions.retrieve, "vs_1NoSuchSession0000000000")
    _quietly(sessions.update, sid, {"return_url": "x"})
    _quietly(sessions.update, sid, {"provided_details": {"email": ""}})
    _quietly(sessions.update, done, {"metadata": {"a": "1"}})
    _quietly(sessions.cancel, done)
    _quietly(sessions.retrieve, sid, {"expand": ["url"]})
    _quietly(sessions.list, {"limit": 0})
    _quietly(sessions.retrieve, sid, {}, {"stripe_account": "acct_1Nobody"})
    sessions.update(sid, {"metadata": {"a": "1"}}, {"idempotency_key": "sweep-e"})
    _quietly(sessions.update, sid, {"metadata": {"a": "2"}}, {"idempotency_key": "sweep-e"})
    for key, version in (("sk_nope", None), (TEST_API_KEY, "1999-01-01")):
        client = official_client(emulator.url, recorder, key=key, version=version)
        _quietly(client.v1.identity.verification_sessions.retrieve, sid)
    emulator.configure(rate_limit=1)
    _quietly(sessions.retrieve, sid)
    _quietly(sessions.retrieve, sid)


class TestContract:
    """The emulator's answers against the spec's schemas."""

    def test_successful_answers_fit_the_spec(
        self, emulator: Any, library: stripe.StripeClient, recorder: RecordingClient
    ) -> None:
        """Retrieve, list, update, replay, cancel, redact and create answer spec-shaped 200s."""
        _successes(library, emulator)

        checked = check_answers(recorder.answers)

        statuses = Counter(answer.status for answer in recorder.answers)
        assert (len(recorder.answers), {200: checked}) == (checked, dict(statuses))

    def test_error_answers_fit_the_spec(
        self, emulator: Any, library: stripe.StripeClient, recorder: RecordingClient
    ) -> None:
        """401, 403, 400s, 404 and 429 answers are Stripe's error object."""
        _errors(library, emulator, recorder)

        check_answers(recorder.answers)

        statuses = {answer.status for answer in recorder.answers}
        assert {200, 400, 401, 403, 404, 429} == statuses


class TestOracle:
    """The oracle itself refuses what Stripe would never send."""

    @pytest.mark.parametrize(
        "change",
        [{"related_person": None}, {"invented": 1}, {"status": "redacted"}],
    )
    def test_a_wrong_session_fails(self, change: dict[str, Any]) -> None:
        """A null where Stripe omits, an invented field or a foreign status fails validation."""
        body = {**fixture("identity.verification_session"), **change}
        answer = Answer("GET", f"{BASE}/vs_1", 200, {}, json.dumps(body).encode())

        with pytest.raises(ValidationError, match=r"(not nullable|unexpected|is not one of)"):
            check_answer(answer)

    def test_stripe_fixtures_pass(self) -> None:
        """Stripe's own session fixture, with its report expanded, passes."""
        body = {
            **fixture("identity.verification_session"),
            "last_verification_report": fixture("identity.verification_report"),
        }
        answer = Answer("GET", f"{BASE}/vs_1", 200, {}, json.dumps(body).encode())

        check_answer(answer)
