"""A server that echoes the API key cannot hand it to anything downstream of the client."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from vsbatch.errors import InvalidRequestError
from vsbatch.stripe.client import StripeClient
from vsbatch.stripe.keyscrub import MARK, scrub_text

KEY = "sk_test_abc0123456789SECRET"
# Every spelling a careless or hostile server might use.
FORMS = {
    "raw": KEY,
    "substring": f"xx{KEY}yy",
    "quoted": quote(KEY, safe=""),
    "percent-upper": "".join(f"%{b:02X}" for b in KEY.encode()),
    "percent-lower": "".join(f"%{b:02x}" for b in KEY.encode()),
}


def _leaks(text: str) -> list[str]:
    return [name for name, form in FORMS.items() if form in text and name != "substring"] + (
        ["SECRET"] if "SECRET" in text else []
    )


def _client(status: int, body: bytes, **headers: str) -> StripeClient:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers=headers)

    return StripeClient(KEY, transport=httpx.MockTransport(handler))


def _session(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "vs_123",
        "object": "identity.verification_session",
        "created": 1,
        "livemode": False,
        "status": "requires_input",
        "type": "document",
        "metadata": {},
    }
    body.update(overrides)
    return body


class TestScrubText:
    @pytest.mark.parametrize("form", list(FORMS), ids=list(FORMS))
    def test_every_form_is_replaced(self, form: str) -> None:
        """The key raw, inside a word, URL-encoded or fully percent-encoded is removed."""
        text = f"before {FORMS[form]} after"

        scrubbed = scrub_text(text, KEY)

        assert [] == _leaks(scrubbed)
        assert MARK in scrubbed


class TestEchoingServer:
    @pytest.mark.parametrize("form", list(FORMS), ids=list(FORMS))
    def test_error_fields_and_request_id_never_hold_the_key(self, form: str) -> None:
        """A 400 quoting the key in code, param, message and Request-Id yields a clean error."""
        echo = FORMS[form]
        body = {
            "error": {
                "type": "invalid_request_error",
                "code": echo,
                "param": echo,
                "message": f"bad key {echo}",
                echo: echo,
            }
        }
        client = _client(400, json.dumps(body).encode(), **{"Request-Id": f"req_{echo}"})

        with pytest.raises(InvalidRequestError) as caught:
            client.retrieve("vs_123")

        error = caught.value
        fields = [error.code, error.param, error.request_id, error.user_message, str(error)]
        assert [] == _leaks(repr(fields) + repr(error) + json.dumps(error.json_body))

    def test_key_spelled_with_json_escapes_is_found(self) -> None:
        """``\\u0073k_test_...`` in a JSON body is the key too, and is removed."""
        escaped = "".join(f"\\u{ord(c):04x}" for c in KEY)
        raw = (
            '{"error": {"type": "invalid_request_error", "message": "' + escaped + '"}}'
        ).encode()
        client = _client(400, raw)

        with pytest.raises(InvalidRequestError) as caught:
            client.retrieve("vs_123")

        assert [] == _leaks(str(caught.value) + json.dumps(caught.value.json_body))

    def test_successful_answer_is_scrubbed_too(self) -> None:
        """A 200 echoing the key in its headers and metadata yields a clean session."""
        body = json.dumps(_session(metadata={"k": KEY, KEY: "v"})).encode()
        client = _client(200, body, **{"Request-Id": f"req_{KEY}", "Idempotency-Key": KEY})

        session = client.update("vs_123", [("metadata[a]", "b")], idempotency_key="idem_1")

        meta = session.last_response
        assert meta is not None
        assert [] == _leaks(repr(meta) + session.model_dump_json())
        assert MARK == session.metadata["k"]

    def test_clean_answer_is_left_as_it_came(self) -> None:
        """An answer without the key is parsed as sent (metadata and request id intact)."""
        body = json.dumps(_session(metadata={"note": "caf\u00e9"})).encode()
        client = _client(200, body, **{"Request-Id": "req_abc"})

        session = client.retrieve("vs_123")

        assert session.last_response is not None
        assert ("req_abc", {"note": "caf\u00e9"}) == (
            session.last_response.request_id,
            session.metadata,
        )


class TestUntouched:
    def test_escaped_json_without_the_key_is_the_same_response(self) -> None:
        """A body with ``\\u`` escapes but no key comes back as the very same response."""
        from vsbatch.stripe.keyscrub import scrub_response

        response = httpx.Response(200, content=b'{"note":"caf\\u00e9"}')

        assert response is scrub_response(response, KEY)
