"""The emulator's Stripe routes over a real socket: updates, idempotency and the admin routes."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from tests.integration.conftest import BASE


def _update(api: httpx.Client, sid: str, data: dict[str, str], **headers: str) -> httpx.Response:
    return api.post(f"{BASE}/{sid}", data=data, headers=headers)


class TestUpdate:
    """Update applies Stripe's semantics and refuses what Stripe refuses."""

    def test_update_merges_metadata_and_document_options(
        self, emulator: Any, api: httpx.Client
    ) -> None:
        """Metadata keys merge, empty values unset, document options merge into existing ones."""
        [sid] = emulator.seed(
            metadata={"keep": "1", "drop": "2"},
            options={"document": {"require_matching_selfie": True}},
        )

        body = _update(
            api,
            sid,
            {
                "metadata[new]": "3",
                "metadata[drop]": "",
                "options[document][allowed_types][0]": "passport",
                "options[document][require_id_number]": "true",
            },
        ).json()

        expected = (
            {"keep": "1", "new": "3"},
            {
                "document": {
                    "require_matching_selfie": True,
                    "allowed_types": ["passport"],
                    "require_id_number": True,
                }
            },
        )
        assert expected == (body["metadata"], body["options"])

    def test_update_returns_the_whole_session_object(
        self, emulator: Any, api: httpx.Client
    ) -> None:
        """The answer is an identity.verification_session with Stripe's fields."""
        [sid] = emulator.seed()

        body = _update(api, sid, {"type": "id_number"}).json()

        expected = {
            "id": sid,
            "object": "identity.verification_session",
            "livemode": False,
            "status": "requires_input",
            "type": "id_number",
            "redaction": None,
            "last_error": None,
        }
        assert expected == {key: body[key] for key in expected}

    def test_empty_document_options_unset_them(self, emulator: Any, api: httpx.Client) -> None:
        """``options[document]=`` leaves ``options`` empty."""
        [sid] = emulator.seed(options={"document": {"require_id_number": True}})

        body = _update(api, sid, {"options[document]": ""}).json()

        assert {} == body["options"]

    def test_provided_details_are_set(self, emulator: Any, api: httpx.Client) -> None:
        """Email and phone land in ``provided_details`` (shown when expanded)."""
        [sid] = emulator.seed()

        body = _update(
            api,
            sid,
            {
                "provided_details[email]": "a@b.co",
                "provided_details[phone]": "+15555550100",
                "expand[]": "provided_details",
            },
        ).json()

        assert {"email": "a@b.co", "phone": "+15555550100"} == body["provided_details"]

    @pytest.mark.parametrize(
        ("data", "code", "param"),
        [
            ({"foo": "1"}, "parameter_unknown", "foo"),
            ({"client_reference_id": "x"}, "parameter_unknown", "client_reference_id"),
            ({"type": "selfie"}, "parameter_invalid_string", "type"),
            (
                {"options[document][require_live_capture]": "maybe"},
                "parameter_invalid_boolean",
                "options[document][require_live_capture]",
            ),
            ({"metadata[" + "k" * 41 + "]": "v"}, "parameter_invalid_string", "metadata"),
            ({"metadata[k]": "v" * 501}, "parameter_invalid_string", "metadata[k]"),
            (
                {"provided_details[email]": "e" * 801},
                "parameter_invalid_string",
                "provided_details[email]",
            ),
        ],
    )
    def test_invalid_parameters_are_400_with_param(
        self, emulator: Any, api: httpx.Client, data: dict[str, str], code: str, param: str
    ) -> None:
        """A refused parameter answers 400 invalid_request_error naming code and param."""
        [sid] = emulator.seed()

        response = _update(api, sid, data)

        error = response.json()["error"]
        assert (400, "invalid_request_error", code, param) == (
            response.status_code,
            error["type"],
            error.get("code"),
            error.get("param"),
        )

    def test_more_than_50_metadata_keys_is_refused(self, emulator: Any, api: httpx.Client) -> None:
        """The 51st key is refused with Stripe's message."""
        [sid] = emulator.seed(metadata={f"k{i}": "v" for i in range(50)})

        error = _update(api, sid, {"metadata[one_more]": "v"}).json()["error"]

        assert error["message"].startswith("Metadata can have up to 50 keys, but you've set 51.")

    def test_unknown_session_is_404_resource_missing(self, api: httpx.Client) -> None:
        """An unknown id answers Stripe's 404 with param id."""
        response = _update(api, "vs_missing", {"metadata[a]": "1"})

        error = response.json()["error"]
        expected = (404, "resource_missing", "id", "No such verificationsession: 'vs_missing'")
        assert expected == (response.status_code, error["code"], error["param"], error["message"])

    @pytest.mark.parametrize("status", ["processing", "verified", "canceled"])
    def test_update_outside_requires_input_is_refused(
        self, emulator: Any, api: httpx.Client, status: str
    ) -> None:
        """Sessions past requires_input answer 400 session_invalid_status."""
        [sid] = emulator.seed(status=status)

        response = _update(api, sid, {"metadata[a]": "1"})

        assert (400, "session_invalid_status") == (
            response.status_code,
            response.json()["error"]["code"],
        )

    def test_allow_update_any_status_accepts_a_verified_session(
        self, emulator: Any, api: httpx.Client
    ) -> None:
        """With the switch on, a verified session takes the update."""
        [sid] = emulator.seed(status="verified")
        emulator.configure(allow_update_any_status=True)

        response = _update(api, sid, {"metadata[a]": "1"})

        assert 200 == response.status_code

    def test_a_redacted_session_is_never_updated(self, emulator: Any, api: httpx.Client) -> None:
        """Even with allow_update_any_status, a redacted session refuses updates."""
        [sid] = emulator.seed(status="verified", redacted=True)
        emulator.configure(allow_update_any_status=True)

        response = _update(api, sid, {"metadata[a]": "1"})

        assert 400 == response.status_code


class TestIdempotency:
    """Keys replay, refuse other parameters and refuse overlap, as FACTS.md says."""

    def test_same_key_same_params_replays(self, emulator: Any, api: httpx.Client) -> None:
        """The second request gets the stored body with Idempotent-Replayed and is not applied."""
        [sid] = emulator.seed()
        first = _update(api, sid, {"metadata[a]": "1"}, **{"Idempotency-Key": "key-1"})

        second = _update(api, sid, {"metadata[a]": "1"}, **{"Idempotency-Key": "key-1"})

        actual = (
            second.status_code,
            second.headers["Idempotent-Replayed"],
            second.headers["Idempotency-Key"],
            second.content == first.content,
            emulator.stats()["applied"],
        )
        assert (200, "true", "key-1", True, {sid: 1}) == actual

    def test_same_key_other_params_is_idempotency_error(
        self, emulator: Any, api: httpx.Client
    ) -> None:
        """Reusing a key with other parameters is 400 idempotency_error."""
        [sid] = emulator.seed()
        _update(api, sid, {"metadata[a]": "1"}, **{"Idempotency-Key": "key-2"})

        response = _update(api, sid, {"metadata[a]": "2"}, **{"Idempotency-Key": "key-2"})

        assert (400, "idempotency_error") == (
            response.status_code,
            response.json()["error"]["type"],
        )

    def test_same_key_while_executing_is_409(self, emulator: Any, api: httpx.Client) -> None:
        """A key reused while its first request still runs is 409 idempotency_key_in_use."""
        [sid] = emulator.seed()
        emulator.configure(latency_ms=400)
        first: list[httpx.Response] = []
        thread = threading.Thread(
            target=lambda: first.append(
                _update(api, sid, {"metadata[a]": "1"}, **{"Idempotency-Key": "k3"})
            )
        )
        thread.start()
        while emulator.stats()["updates"] < 1:
            threading.Event().wait(0.01)

        second = _update(api, sid, {"metadata[a]": "1"}, **{"Idempotency-Key": "k3"})
        thread.join()

        actual = (second.status_code, second.json()["error"]["code"], first[0].status_code)
        assert (409, "idempotency_key_in_use", 200) == actual

    def test_validation_400_is_not_stored(self, emulator: Any, api: httpx.Client) -> None:
        """After a refused parameter the same key can carry a corrected request."""
        [sid] = emulator.seed()
        _update(api, sid, {"foo": "1"}, **{"Idempotency-Key": "k4"})

        response = _update(api, sid, {"metadata[a]": "1"}, **{"Idempotency-Key": "k4"})

        assert 200 == response.status_code

    def test_keys_are_scoped_per_account(self, emulator: Any, api: httpx.Client) -> None:
        """The same key on another account is a new request."""
        [mine] = emulator.seed()
        [theirs] = emulator.seed(account="acct_other")
        _update(api, mine, {"metadata[a]": "1"}, **{"Idempotency-Key": "shared"})

        response = _update(
            api,
            theirs,
            {"metadata[a]": "1"},
            **{"Idempotency-Key": "shared", "Stripe-Account": "acct_other"},
        )

        assert (200, None) == (response.status_code, response.headers.get("Idempotent-Replayed"))


class TestAdmin:
    """The ``/_emulator`` routes."""

    def test_seed_route_returns_ids(self, emulator: Any) -> None:
        """``POST /_emulator/sessions`` creates sessions that the API then serves."""
        response = httpx.post(
            f"{emulator.url}/_emulator/sessions", json={"count": 2, "status": "verified"}
        )

        actual = len(response.json()["ids"])
        assert 2 == actual

    def test_seed_route_accepts_explicit_ids(self, emulator: Any, api: httpx.Client) -> None:
        """Explicit ids are used as given."""
        httpx.post(
            f"{emulator.url}/_emulator/sessions", json={"ids": ["vs_fixed0000000000000000001"]}
        )

        assert 200 == api.get(f"{BASE}/vs_fixed0000000000000000001").status_code

    def test_config_route_changes_the_config(self, emulator: Any) -> None:
        """``POST /_emulator/config`` merges fields; ``GET`` shows them."""
        httpx.post(f"{emulator.url}/_emulator/config", json={"rate_limit": 7, "latency_ms": 1})

        body = httpx.get(f"{emulator.url}/_emulator/config").json()

        assert (7, 1.0) == (body["rate_limit"], body["latency_ms"])

    def test_config_route_refuses_unknown_fields(self, emulator: Any) -> None:
        """An unknown field is 400 and changes nothing."""
        response = httpx.post(f"{emulator.url}/_emulator/config", json={"rate_limt": 7})

        assert (400, 25) == (response.status_code, emulator.config.rate_limit)

    def test_reset_route_restores_startup_state(self, emulator: Any) -> None:
        """``POST /_emulator/reset`` empties sessions and stats and restores the config."""
        emulator.seed(count=3)
        emulator.configure(rate_limit=1)

        httpx.post(f"{emulator.url}/_emulator/reset")

        actual = (
            emulator.config.rate_limit,
            emulator.stats()["requests"],
            len(emulator.emulator.world.sessions),
        )
        assert (25, {}, 0) == actual

    def test_stats_count_requests_by_status(self, emulator: Any, api: httpx.Client) -> None:
        """Stats count answers per status code and applied updates per session."""
        [sid] = emulator.seed()
        _update(api, sid, {"metadata[a]": "1"})
        _update(api, sid, {"foo": "1"})
        api.get(f"{BASE}/vs_none")

        body = httpx.get(f"{emulator.url}/_emulator/stats").json()

        assert ({"200": 1, "400": 1, "404": 1}, {sid: 1}) == (body["requests"], body["applied"])
