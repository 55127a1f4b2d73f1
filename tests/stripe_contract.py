"""Stripe's OpenAPI subset as the test oracle, and the official library wired to record answers.

``tests/data/stripe_api/`` is an unchanged copy of ``shared/stripe-api/`` (Stripe's OpenAPI spec
for the VerificationSession routes at API version 2026-07-29.dahlia, and its fixtures; MIT,
Stripe, Inc.; provenance in its README). :func:`check_answer` validates one response body
against the schema its operation declares for that status (the ``200`` object, or ``default``:
Stripe's ``{"error": {...}}``), with the OpenAPI 3.0 validator of ``openapi-schema-validator``.

The check is stricter than the spec on one point: an object schema that lists ``properties``
and says nothing of ``additionalProperties`` accepts no other key, so a field the emulator
invents (or a ``null`` where Stripe leaves the field out) fails. And it reads two OpenAPI 3.0
ambiguities as Stripe means them: a ``nullable`` enum, and a ``nullable`` ``anyOf`` without a
``type``, accept ``null`` (Stripe's own fixture has ``"last_error": {"code": null, ...}``).
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import stripe
from openapi_schema_validator import OAS30Validator

from tests.conftest import TEST_API_KEY

DATA = Path(__file__).parent / "data" / "stripe_api"
SPEC_FILE = DATA / "verification_sessions.openapi.json"
FIXTURES_FILE = DATA / "verification_sessions.fixtures.json"


@dataclass(frozen=True)
class Answer:
    """One HTTP exchange as the library saw it (header names in lower case)."""

    method: str
    path: str
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


class RecordingClient(stripe.RequestsClient):
    """stripe-python's default HTTP client, keeping every answer it receives."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: list[Answer] = []

    def request(  # type: ignore[override]
        self, method: str, url: str, headers: Any, post_data: Any = None
    ) -> tuple[bytes, int, Any]:
        """Send like RequestsClient, then record the answer."""
        content, status, reply_headers = super().request(method, url, headers, post_data)
        headers = {name.lower(): value for name, value in reply_headers.items()}
        answer = Answer(method.upper(), urlsplit(url).path, status, headers, content)
        self.answers.append(answer)
        return content, status, reply_headers


def official_client(
    url: str,
    recorder: RecordingClient | None = None,
    *,
    key: str = TEST_API_KEY,
    version: str | None = None,
    retries: int = 0,
) -> stripe.StripeClient:
    """The official library pointed at ``url`` (the emulator), recording its answers in
    ``recorder`` when given; ``version`` None is the library's own Stripe-Version."""
    return stripe.StripeClient(
        key,
        base_addresses={"api": url},
        stripe_version=version,
        max_network_retries=retries,
        http_client=recorder,
    )


def _strict(node: Any) -> Any:
    """Close open object schemas that list properties; let nullable enums take null."""
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _strict(value) for key, value in node.items()}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    if out.get("nullable") is True and "enum" in out and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]
    if out.get("nullable") is True and "anyOf" in out and "type" not in out:
        out["anyOf"] = [*out["anyOf"], {"enum": [None]}]
    return out


@cache
def spec() -> dict[str, Any]:
    """The OpenAPI subset, loaded once."""
    loaded: dict[str, Any] = json.loads(SPEC_FILE.read_text())
    return loaded


@cache
def _components() -> dict[str, Any]:
    return {"schemas": _strict(copy.deepcopy(spec()["components"]["schemas"]))}


def _operation(method: str, path: str) -> dict[str, Any]:
    for template, item in spec()["paths"].items():
        pattern = "^" + re.sub(r"\{[^/]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path) and method.lower() in item:
            operation: dict[str, Any] = item[method.lower()]
            return operation
    raise AssertionError(f"the spec has no operation {method} {path}")


def response_schema(method: str, path: str, status: int) -> dict[str, Any]:
    """The schema the spec gives the body of ``status`` for this request."""
    responses = _operation(method, path)["responses"]
    chosen = responses.get(str(status), responses["default"])
    schema: dict[str, Any] = chosen["content"]["application/json"]["schema"]
    return schema


def check_answer(answer: Answer) -> None:
    """Raise jsonschema's ValidationError unless the body fits its operation's schema."""
    schema = {**_strict(response_schema(answer.method, answer.path, answer.status))}
    schema["components"] = _components()
    OAS30Validator(schema).validate(answer.json())


def check_answers(answers: list[Answer]) -> int:
    """Check every answer to a Stripe route; return how many were checked."""
    checked = 0
    for answer in answers:
        if answer.path.startswith("/v1/"):
            check_answer(answer)
            checked += 1
    return checked


def fixture(name: str) -> dict[str, Any]:
    """One of Stripe's fixtures (``identity.verification_session``, ...)."""
    resources: dict[str, Any] = json.loads(FIXTURES_FILE.read_text())["resources"]
    return dict(resources[name])
