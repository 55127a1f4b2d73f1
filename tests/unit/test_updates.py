"""The update model: Stripe's rules, the canonical forms and the idempotency key."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.update_examples import WIRE_EXAMPLES
from vsbatch.errors import InvalidUpdate
from vsbatch.model.update import (
    MAX_IDEMPOTENCY_KEY_LENGTH,
    SessionUpdate,
    idempotency_key,
    parse_update,
)
from vsbatch.model.update_options import DocumentOptions, UpdateOptions

ACCEPTED: list[dict[str, Any]] = [
    {"metadata": {"k" * 40: "v"}},
    {"metadata": {"k": "v" * 500}},
    {"metadata": {f"k{i}": "v" for i in range(50)}},
    {"metadata": {**{f"k{i}": "v" for i in range(50)}, "gone": ""}},
    {"metadata": {"k": "v", "ignored": None}},
    {"options": {"document": {"require_id_number": False}}},
    {"options": {"document": {"require_live_capture": True}}},
    {"options": {"document": {"allowed_types": ["driving_license", "id_card", "passport"]}}},
    {"provided_details": {"email": "e" * 800}},
    {"type": "document", "metadata": None},
]


# (update, field, reason) for every rule; reason is the exact sentence the user sees.
REFUSED: list[tuple[Any, str | None, str]] = [
    (
        {},
        None,
        "The update changes nothing: set at least one of metadata, options, provided_details"
        " or type.",
    ),
    (
        {"type": None},
        None,
        "The update changes nothing: set at least one of metadata, options, provided_details"
        " or type.",
    ),
    (
        {"expand": ["x"]},
        "expand",
        "Unknown field expand: an update may only set metadata, options, provided_details or type.",
    ),
    (
        {"options": {"email": {}}},
        "options.email",
        "Unknown field options.email: an update may only set options.document.",
    ),
    (
        {"options": {"document": {"require_selfie": True}}},
        "options.document.require_selfie",
        "Unknown field options.document.require_selfie: an update may only set"
        " options.document.allowed_types, options.document.require_id_number,"
        " options.document.require_live_capture or options.document.require_matching_selfie.",
    ),
    (
        {"provided_details": {"name": "x"}},
        "provided_details.name",
        "Unknown field provided_details.name: an update may only set provided_details.email or"
        " provided_details.phone.",
    ),
    (
        {"metadata": {f"k{i}": "v" for i in range(51)}},
        "metadata",
        "Metadata can have up to 50 keys, but you've set 51.",
    ),
    (
        {"metadata": {"k" * 41: "v"}},
        "metadata",
        f"Invalid key: {'k' * 41} must be a string of at most 40 characters.",
    ),
    ({"metadata": {"": "v"}}, "metadata", "Invalid key: metadata keys must not be empty."),
    ({"metadata": {"a[b]": "v"}}, "metadata", "Invalid key: a[b] must not contain '[' or ']'."),
    ({"metadata": {"a]": "v"}}, "metadata", "Invalid key: a] must not contain '[' or ']'."),
    (
        {"metadata": {"k": "v" * 501}},
        "metadata.k",
        "Metadata values can be up to 500 characters, but this one has 501.",
    ),
    (
        {"metadata": {"k": 5}},
        "metadata.k",
        'A metadata value ("" unsets the key) must be a string, not int.',
    ),
    (
        {"metadata": {"k": True}},
        "metadata.k",
        'A metadata value ("" unsets the key) must be a string, not bool.',
    ),
    (
        {"metadata": {"k": "\ud800"}},
        "metadata.k",
        'A metadata value ("" unsets the key) is not valid Unicode text.',
    ),
    ({"metadata": {}}, "metadata", 'metadata sets no keys; use "" to unset all keys.'),
    (
        {"metadata": "all"},
        "metadata",
        'metadata must be an object of strings, or "" to unset all keys.',
    ),
    ({"options": "x"}, "options", "options must be an object."),
    ({"options": {}}, "options", "options sets nothing; give options.document."),
    (
        {"options": {"document": "x"}},
        "options.document",
        'options.document must be an object, or "" to unset document options.',
    ),
    (
        {"options": {"document": {}}},
        "options.document",
        'options.document sets nothing; use "" to unset document options.',
    ),
    (
        {"options": {"document": {"allowed_types": "passport"}}},
        "options.document.allowed_types",
        "allowed_types must be a list of document types.",
    ),
    (
        {"options": {"document": {"allowed_types": []}}},
        "options.document.allowed_types",
        "allowed_types must list at least one document type.",
    ),
    (
        {"options": {"document": {"allowed_types": ["visa"]}}},
        "options.document.allowed_types",
        "'visa' is not a document type; use driving_license, id_card or passport.",
    ),
    (
        {"options": {"document": {"allowed_types": ["passport", "passport"]}}},
        "options.document.allowed_types",
        "allowed_types lists 'passport' twice.",
    ),
    (
        {"options": {"document": {"require_id_number": "true"}}},
        "options.document.require_id_number",
        "require_id_number must be true or false.",
    ),
    (
        {"options": {"document": {"require_matching_selfie": 1}}},
        "options.document.require_matching_selfie",
        "require_matching_selfie must be true or false.",
    ),
    ({"provided_details": ""}, "provided_details", "provided_details must be an object."),
    (
        {"provided_details": {}},
        "provided_details",
        "provided_details sets nothing; give email or phone.",
    ),
    (
        {"provided_details": {"email": "e" * 801}},
        "provided_details.email",
        "email can be up to 800 characters, but this one has 801.",
    ),
    ({"provided_details": {"email": ""}}, "provided_details.email", "email must not be empty."),
    (
        {"provided_details": {"phone": 15555550100}},
        "provided_details.phone",
        "phone must be a string, not int.",
    ),
    (
        {"type": "verification_flow"},
        "type",
        "'verification_flow' is not a verification type; use document or id_number.",
    ),
    (["type", "document"], None, "An update must be an object, not list."),
]


class TestParseUpdate:
    @pytest.mark.parametrize("data", WIRE_EXAMPLES)
    def test_wire_form_round_trips(self, data: dict[str, Any]) -> None:
        """Every Stripe-shaped example comes back unchanged from to_params."""
        assert data == parse_update(data).to_params()

    @pytest.mark.parametrize("data", ACCEPTED)
    def test_accepted_at_the_limits(self, data: dict[str, Any]) -> None:
        """Updates at Stripe's limits are accepted, Nones dropped."""
        expected = {k: v for k, v in data.items() if v is not None}
        if isinstance(expected.get("metadata"), dict):
            expected["metadata"] = {k: v for k, v in data["metadata"].items() if v is not None}

        assert expected == parse_update(data).to_params()

    @pytest.mark.parametrize(("data", "field", "reason"), REFUSED)
    def test_refused_with_field_and_reason(self, data: Any, field: str | None, reason: str) -> None:
        """Each broken rule is one InvalidUpdate naming the field in one sentence."""
        with pytest.raises(InvalidUpdate) as caught:
            parse_update(data)

        assert (field, reason) == (caught.value.field, caught.value.reason)

    def test_constructor_applies_the_same_rules(self) -> None:
        """Building a SessionUpdate directly raises the same InvalidUpdate."""
        with pytest.raises(InvalidUpdate) as caught:
            SessionUpdate(metadata={"k": "v" * 501})

        assert "metadata.k" == caught.value.field

    def test_constructor_accepts_nested_models(self) -> None:
        """Nested option models can be passed as instances."""
        document = DocumentOptions(allowed_types=("passport",))

        update = SessionUpdate(options=UpdateOptions(document=document))

        assert {"options": {"document": {"allowed_types": ["passport"]}}} == update.to_params()

    def test_update_is_frozen(self) -> None:
        """Fields cannot be reassigned after validation."""
        update = parse_update({"type": "document"})

        with pytest.raises(ValueError, match="frozen"):
            update.type = "id_number"  # type: ignore[misc]


class TestCanonicalForm:
    def test_params_sorted_at_every_level(self) -> None:
        """to_params sorts keys everywhere but keeps list order."""
        data = {
            "type": "document",
            "metadata": {"b": "2", "a": "1"},
            "options": {
                "document": {"require_id_number": True, "allowed_types": ["passport", "id_card"]}
            },
        }

        params = parse_update(data).to_params()

        assert ["metadata", "options", "type"] == list(params)
        assert ["a", "b"] == list(params["metadata"])
        assert ["allowed_types", "require_id_number"] == list(params["options"]["document"])
        assert ["passport", "id_card"] == params["options"]["document"]["allowed_types"]

    def test_canonical_json_ignores_input_order(self) -> None:
        """The same update written in another key order has the same canonical JSON."""
        first = parse_update({"metadata": {"a": "1", "b": ""}, "type": "document"})
        second = parse_update({"type": "document", "metadata": {"b": "", "a": "1"}})

        assert first.canonical_json() == second.canonical_json()
        assert '{"metadata":{"a":"1","b":""},"type":"document"}' == first.canonical_json()

    def test_equal_updates_hash_alike(self) -> None:
        """Equal updates are equal and share a hash, so they dedupe in a set."""
        first = parse_update({"metadata": {"a": "1", "b": "2"}})
        second = parse_update({"metadata": {"b": "2", "a": "1"}})

        assert 1 == len({first, second})

    def test_to_form_encodes_like_stripe(self) -> None:
        """to_form uses literal brackets, indexed arrays and lowercase booleans."""
        update = parse_update(WIRE_EXAMPLES[6] | {"options": WIRE_EXAMPLES[3]["options"]})

        assert [
            ("metadata[a]", "1"),
            ("options[document][allowed_types][0]", "passport"),
            ("options[document][require_matching_selfie]", "true"),
            ("provided_details[email]", "a@b.c"),
            ("type", "document"),
        ] == update.to_form()


class TestIdempotencyKey:
    def test_same_input_same_key(self) -> None:
        """The same namespace and update always give the same key."""
        update = parse_update({"metadata": {"a": "1"}})

        assert idempotency_key("b1:vs_1", update) == idempotency_key("b1:vs_1", update)

    def test_key_has_readable_prefix(self) -> None:
        """The key starts with vsbatch- and the namespace, then a sha256 hex digest."""
        key = idempotency_key("b1:vs_1", parse_update({"type": "document"}))

        prefix, digest = key.rsplit("-", 1)
        assert ("vsbatch-b1:vs_1", 64) == (prefix, len(digest))

    def test_other_update_other_key(self) -> None:
        """Different updates under one namespace get different keys."""
        first = idempotency_key("ns", parse_update({"metadata": {"a": "1"}}))
        second = idempotency_key("ns", parse_update({"metadata": {"a": "2"}}))

        assert first != second

    def test_other_namespace_other_key(self) -> None:
        """One update under different namespaces gets different keys."""
        update = parse_update({"type": "document"})

        assert idempotency_key("b1:vs_1", update) != idempotency_key("b1:vs_2", update)

    def test_namespaces_differing_only_in_unreadable_characters(self) -> None:
        """Namespaces whose readable parts coincide still get different keys."""
        update = parse_update({"type": "document"})

        assert idempotency_key("a b", update) != idempotency_key("a/b", update)

    @pytest.mark.parametrize("namespace", ["", "x", "é" * 300, "n" * 10_000])
    def test_key_never_longer_than_stripe_allows(self, namespace: str) -> None:
        """Keys stay within 255 ASCII characters for any namespace length."""
        update = parse_update({"metadata": {f"k{i}": "v" * 500 for i in range(50)}})

        key = idempotency_key(namespace, update)

        assert len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH
        assert key.isascii()

    def test_long_namespaces_sharing_a_prefix_differ(self) -> None:
        """Namespaces that differ after the readable cut still get different keys."""
        update = parse_update({"type": "document"})

        assert idempotency_key("n" * 200 + "1", update) != idempotency_key("n" * 200 + "2", update)
