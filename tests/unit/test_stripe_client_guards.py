"""Unit tests of the Stripe client's guards and lifecycle (no sockets): ids and header values
refused before sending, who closes the httpx client, and the one factory from settings.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.unit.stripe_mock import KEY, Recorder, make_client
from vsbatch import config
from vsbatch.errors import ConfigError, InvalidRequestError
from vsbatch.stripe.client import StripeClient


class TestSessionIdValidation:
    @pytest.mark.parametrize(
        "session_id", ["", "vs_1/cancel", "vs_1?x=1", "vs_1#x", "vs 1", "vs_1\n", "..", "vs_%2F"]
    )
    def test_bad_session_id_is_refused_without_a_request(self, session_id: str) -> None:
        """An id that could change the path is an InvalidRequestError and nothing is sent."""
        recorder = Recorder()
        client = make_client(recorder)

        with pytest.raises(InvalidRequestError) as caught:
            client.update(session_id, [], idempotency_key="k1")

        assert ("id", []) == (caught.value.param, recorder.requests)

    @pytest.mark.parametrize(
        ("kwargs", "param"),
        [
            ({"idempotency_key": ""}, "idempotency_key"),
            ({"idempotency_key": "k" * 256}, "idempotency_key"),
            ({"idempotency_key": "k1", "stripe_account": "acct_1\r\nX-Evil: 1"}, "stripe_account"),
        ],
    )
    def test_bad_header_values_are_refused_without_a_request(
        self, kwargs: dict[str, Any], param: str
    ) -> None:
        """An empty, overlong or multi-line header value is refused before sending."""
        recorder = Recorder()
        client = make_client(recorder)

        with pytest.raises(InvalidRequestError) as caught:
            client.update("vs_123", [], **kwargs)

        assert (param, []) == (caught.value.param, recorder.requests)


class TestLifecycle:
    def test_context_manager_closes_the_owned_pool(self) -> None:
        """Leaving the with-block closes the client's own httpx client."""
        with make_client(Recorder()) as client:
            pass

        assert client._http.is_closed

    def test_injected_http_client_is_left_open(self) -> None:
        """A caller's httpx client is the caller's to close."""
        http = httpx.Client(transport=httpx.MockTransport(Recorder()))
        StripeClient(KEY, http_client=http).close()

        assert not http.is_closed
        http.close()

    def test_http_client_and_transport_together_are_refused(self) -> None:
        """Giving both an httpx client and a transport is a ConfigError."""
        transport = httpx.MockTransport(Recorder())

        with pytest.raises(ConfigError), httpx.Client() as http:
            StripeClient(KEY, http_client=http, transport=transport)


class TestOneFactory:
    def test_from_settings_keeps_both_timeouts_and_the_deadline(self) -> None:
        """The client built from settings has their connect and read timeouts (``plan`` once
        built its own client and dropped the connect timeout)."""
        settings = config.Settings(
            _env_file=None,  # type: ignore[call-arg]
            stripe_api_key="sk_test_" + "a" * 24,
            http_connect_timeout=1.5,
            http_timeout=7.0,
        )

        with StripeClient.from_settings(settings) as client:
            facts = (client.timeouts.connect, client.timeouts.read, client.deadline)

        assert (1.5, 7.0, 8.5) == facts

    def test_the_package_builds_its_client_only_from_settings(self) -> None:
        """No module but the client's own calls ``StripeClient(...)``: every caller goes through
        ``StripeClient.from_settings``, so no caller can drop a setting."""
        import pathlib
        import re

        import vsbatch

        root = pathlib.Path(vsbatch.__file__).parent
        callers = [
            str(path.relative_to(root))
            for path in root.rglob("*.py")
            if path.name != "client.py" and re.search(r"\bStripeClient\(", path.read_text())
        ]

        assert [] == callers
