"""Where a rehearsal would notice: the emulator answers stripe-python as Stripe does.

Each test drives the official library against the emulator over a socket; the ``library``
fixture then checks every answer it got against Stripe's OpenAPI subset. The sources of each
expected answer are named in ``docs/emulator.md`` ("Where the emulator differs from Stripe").
"""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from tests.conftest import TEST_API_KEY
from tests.stripe_contract import RecordingClient, official_client

SPEC_VERSION = "2026-07-29.dahlia"


def _sessions(library: stripe.StripeClient) -> Any:
    return library.v1.identity.verification_sessions


class TestConnectedAccounts:
    """An account the key cannot reach is a 403, not a missing session."""

    def test_unknown_account_is_403_account_invalid(
        self, emulator: Any, library: stripe.StripeClient
    ) -> None:
        """A ``Stripe-Account`` nobody connected raises PermissionError: 403 account_invalid."""
        [sid] = emulator.seed()

        with pytest.raises(stripe.PermissionError) as caught:
            _sessions(library).retrieve(sid, options={"stripe_account": "acct_1Unknown"})

        error = (caught.value.json_body or {})["error"]
        actual = (caught.value.http_status, error["type"], error["code"])
        assert (403, "invalid_request_error", "account_invalid") == actual

    def test_the_403_names_the_account_and_hides_the_key(
        self, emulator: Any, library: stripe.StripeClient
    ) -> None:
        """The message is Stripe's, with the key cut to its prefix and last four characters."""
        [sid] = emulator.seed()

        with pytest.raises(stripe.PermissionError) as caught:
            _sessions(library).update(
                sid, {"metadata": {"a": "1"}}, {"stripe_account": "acct_1Unknown"}
            )

        message = str(caught.value.user_message)
        expected = (
            f"The provided key 'sk_test_{'*' * (len(TEST_API_KEY) - 12)}{TEST_API_KEY[-4:]}' "
            "does not have access to account 'acct_1Unknown' (or that account does not exist). "
            "Application access may have been revoked."
        )
        assert expected == message

    def test_an_account_seeded_without_sessions_lists_empty(
        self, emulator: Any, library: stripe.StripeClient
    ) -> None:
        """Seeding ``count=0`` for an account connects it: its list is empty, not a 403."""
        emulator.seed(count=0, account="acct_1Empty")

        page = _sessions(library).list(options={"stripe_account": "acct_1Empty"})

        assert [] == page.data


@pytest.mark.usefixtures("library")  # its teardown checks what ``recorder`` got
class TestApiVersions:
    """``Stripe-Version`` is checked and echoed."""

    def test_unknown_version_is_400(self, emulator: Any, recorder: RecordingClient) -> None:
        """A version Stripe never released raises InvalidRequestError, HTTP 400."""
        [sid] = emulator.seed()
        client = official_client(emulator.url, recorder, version="2099-01-01.nonesuch")

        with pytest.raises(stripe.InvalidRequestError) as caught:
            client.v1.identity.verification_sessions.retrieve(sid)

        actual = (caught.value.http_status, caught.value.user_message)
        assert (400, "Invalid Stripe API version: 2099-01-01.nonesuch") == actual

    @pytest.mark.parametrize("version", [SPEC_VERSION, stripe.api_version])
    def test_known_versions_are_served_and_echoed(
        self, emulator: Any, recorder: RecordingClient, version: str
    ) -> None:
        """The spec's version and the library's own are accepted; the answer names it."""
        [sid] = emulator.seed()
        client = official_client(emulator.url, recorder, version=version)

        client.v1.identity.verification_sessions.retrieve(sid)

        assert version == recorder.answers[-1].headers["stripe-version"]


class TestRedaction:
    """Redaction passes through ``processing`` and leaves placeholders."""

    def test_redact_answers_processing_with_metadata_erased(
        self, emulator: Any, library: stripe.StripeClient
    ) -> None:
        """The redact answer: canceled, ``redaction.status`` processing, metadata gone."""
        [sid] = emulator.seed(metadata={"plan": "gold"})

        session = _sessions(library).redact(sid)

        actual = (session.status, session.redaction.status, session.metadata.to_dict())
        assert ("canceled", "processing", {}) == actual

    def test_redaction_stays_processing_until_it_is_due(
        self, emulator: Any, library: stripe.StripeClient
    ) -> None:
        """Before ``redaction_seconds`` have passed a read still says processing."""
        emulator.configure(redaction_seconds=3600)
        [sid] = emulator.seed(status="verified")
        _sessions(library).redact(sid)

        session = _sessions(library).retrieve(sid)

        assert ("verified", "processing") == (session.status, session.redaction.status)

    def test_redacted_details_read_as_placeholders(
        self, emulator: Any, library: stripe.StripeClient
    ) -> None:
        """Once redacted, the provided details read ``[redacted]`` and the status says so."""
        emulator.configure(redaction_seconds=0)
        [sid] = emulator.seed(provided_details={"email": "a@b.co", "phone": "+15555550100"})
        _sessions(library).redact(sid)

        session = _sessions(library).retrieve(sid, {"expand": ["provided_details"]})

        actual = (session.redaction.status, session.provided_details.to_dict())
        assert ("redacted", {"email": "[redacted]", "phone": "[redacted]"}) == actual


class TestExpand:
    """``provided_details`` only when expanded; the report object when expanded."""

    def test_provided_details_are_left_out_unless_expanded(
        self, emulator: Any, library: stripe.StripeClient
    ) -> None:
        """Retrieve without ``expand`` has no provided_details; with it, the details."""
        [sid] = emulator.seed(provided_details={"email": "a@b.co"})

        plain = _sessions(library).retrieve(sid)
        expanded = _sessions(library).retrieve(sid, {"expand": ["provided_details"]})

        actual = ("provided_details" in plain, expanded.provided_details.to_dict())
        assert (False, {"email": "a@b.co"}) == actual

    def test_update_answer_leaves_provided_details_out(
        self, emulator: Any, library: stripe.StripeClient
    ) -> None:
        """An update that sets an email answers without provided_details (not expanded)."""
        [sid] = emulator.seed()

        session = _sessions(library).update(sid, {"provided_details": {"email": "a@b.co"}})

        assert "provided_details" not in session

    def test_list_expands_provided_details_of_each_item(
        self, emulator: Any, library: stripe.StripeClient
    ) -> None:
        """``expand[]=data.provided_details`` on list gives every item its details."""
        emulator.seed(count=2, provided_details={"phone": "+15555550100"})

        page = _sessions(library).list({"expand": ["data.provided_details"]})

        actual = [item.provided_details.to_dict() for item in page.data]
        assert [{"phone": "+15555550100"}] * 2 == actual

    def test_expanded_last_verification_report_is_the_report(
        self, emulator: Any, library: stripe.StripeClient
    ) -> None:
        """``expand[]=last_verification_report`` gives the VerificationReport object."""
        [sid] = emulator.seed(status="verified")

        session = _sessions(library).retrieve(sid, {"expand": ["last_verification_report"]})

        report = session.last_verification_report
        actual = (type(report).__name__, report.object, report.verification_session)
        assert ("VerificationReport", "identity.verification_report", sid) == actual


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
