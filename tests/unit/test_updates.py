"""The update model: Stripe's rules, the canonical forms, the key, and session comparisons."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vsbatch.errors import InvalidUpdate
from vsbatch.model.update import (
    MAX_IDEMPOTENCY_KEY_LENGTH,
    FieldChange,
    SessionUpdate,
    idempotency_key,
    parse_update,
)
from vsbatch.model.update_options import DocumentOptions, UpdateOptions

FIXTURES = Path("/work/shared/stripe-api/verification_sessions.fixtures.json")

WIRE_EXAMPLES: list[dict[str, Any]] = [
    {"metadata": {"k": "v", "old": ""}},
    {"metadata": ""},
    {"options": {"document": ""}},
    {"options": {"document": {"allowed_types": ["passport"], "require_matching_selfie": True}}},
    {"provided_details": {"email": "a@b.c", "phone": "+15555550100"}},
    {"type": "id_number"},
    {
        "metadata": {"a": "1"},
        "options": {"document": {"allowed_types": ["id_card", "passport"]}},
        "provided_details": {"email": "a@b.c"},
        "type": "document",
    },
]

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


def _session(**changes: Any) -> dict[str, Any]:
    """Stripe's fixture session (verified, document options with a selfie), with changes."""
    fixtures = json.loads(FIXTURES.read_text(encoding="utf-8"))
    session: dict[str, Any] = fixtures["resources"]["identity.verification_session"]
    session.update(changes)
    return session


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


class TestApplyTo:
    def test_metadata_set_and_unset_keys(self) -> None:
        """Given keys are set, "" keys removed, other keys kept."""
        session = _session(metadata={"keep": "1", "old": "x"})

        after = parse_update({"metadata": {"new": "2", "old": ""}}).apply_to(session)

        assert {"keep": "1", "new": "2"} == after["metadata"]

    def test_metadata_unset_all(self) -> None:
        """metadata "" leaves no keys."""
        after = parse_update({"metadata": ""}).apply_to(_session(metadata={"a": "1"}))

        assert {} == after["metadata"]

    def test_document_fields_merge(self) -> None:
        """Given document fields merge into the session's document options."""
        update = parse_update({"options": {"document": {"allowed_types": ["passport"]}}})

        after = update.apply_to(_session())

        expected = {"allowed_types": ["passport"], "require_matching_selfie": True}
        assert expected == after["options"]["document"]

    def test_document_unset_leaves_empty_object(self) -> None:
        """Unsetting document options leaves {} in the session."""
        after = parse_update({"options": {"document": ""}}).apply_to(_session())

        assert {"document": {}} == after["options"]

    @pytest.mark.parametrize("options", [None, {}, {"document": {}}])
    def test_document_options_missing_before(self, options: Any) -> None:
        """Absent, null or empty document options are filled from the update."""
        update = parse_update({"options": {"document": {"require_live_capture": True}}})

        after = update.apply_to(_session(options=options))

        assert {"document": {"require_live_capture": True}} == after["options"]

    def test_provided_details_from_none(self) -> None:
        """Details are set even when the session had none."""
        update = parse_update({"provided_details": {"phone": "+15555550100"}})

        after = update.apply_to(_session(provided_details=None))

        assert {"phone": "+15555550100"} == after["provided_details"]

    def test_input_session_not_modified(self) -> None:
        """apply_to returns a copy and leaves the session as it was."""
        session = _session()
        before = json.dumps(session, sort_keys=True)

        parse_update({"options": {"document": ""}, "metadata": {"a": "1"}}).apply_to(session)

        assert before == json.dumps(session, sort_keys=True)

    def test_other_fields_untouched(self) -> None:
        """Only the updated fields differ; status, id and the rest stay."""
        session = _session()

        after = parse_update({"type": "id_number"}).apply_to(session)

        assert {**session, "type": "id_number"} == after


class TestChanges:
    def test_lists_only_differences(self) -> None:
        """Fields that already hold the wanted value are left out of the plan."""
        update = parse_update(
            {
                "metadata": {"same": "1", "new": "2", "absent": ""},
                "options": {
                    "document": {"require_matching_selfie": True, "require_id_number": True}
                },
                "type": "document",
            }
        )

        changes = update.changes(_session(metadata={"same": "1"}))

        assert [
            FieldChange("metadata.new", None, "2"),
            FieldChange("options.document.require_id_number", None, True),
        ] == changes

    def test_unset_key_is_a_change_to_none(self) -> None:
        """Unsetting an existing key shows its old value and None."""
        changes = parse_update({"metadata": {"old": ""}}).changes(_session(metadata={"old": "x"}))

        assert [FieldChange("metadata.old", "x", None)] == changes

    def test_unset_all_metadata(self) -> None:
        """Unsetting all metadata shows the old metadata and {}."""
        changes = parse_update({"metadata": ""}).changes(_session(metadata={"a": "1"}))

        assert [FieldChange("metadata", {"a": "1"}, {})] == changes

    def test_unset_document_options(self) -> None:
        """Unsetting document options shows the old ones and {}."""
        changes = parse_update({"options": {"document": ""}}).changes(_session())

        assert [FieldChange("options.document", {"require_matching_selfie": True}, {})] == changes

    def test_type_and_details(self) -> None:
        """Type and provided details changes show before and after."""
        update = parse_update({"type": "id_number", "provided_details": {"email": "a@b.c"}})

        changes = update.changes(_session())

        assert [
            FieldChange("provided_details.email", None, "a@b.c"),
            FieldChange("type", "document", "id_number"),
        ] == changes


class TestIsSatisfiedBy:
    @pytest.mark.parametrize("data", WIRE_EXAMPLES)
    def test_satisfied_after_apply(self, data: dict[str, Any]) -> None:
        """Any update is satisfied by the session it produces."""
        update = parse_update(data)

        assert update.is_satisfied_by(update.apply_to(_session()))

    def test_not_satisfied_before(self) -> None:
        """A session missing a wanted metadata value does not satisfy the update."""
        assert not parse_update({"metadata": {"a": "1"}}).is_satisfied_by(_session())

    def test_absent_flag_counts_as_false(self) -> None:
        """A flag Stripe left out of the object satisfies a false flag."""
        update = parse_update({"options": {"document": {"require_id_number": False}}})

        assert update.is_satisfied_by(_session())

    def test_allowed_types_compare_as_sets(self) -> None:
        """allowed_types in another order satisfy the update."""
        update = parse_update({"options": {"document": {"allowed_types": ["id_card", "passport"]}}})
        session = _session(options={"document": {"allowed_types": ["passport", "id_card"]}})

        assert update.is_satisfied_by(session)

    def test_missing_allowed_types_not_satisfied(self) -> None:
        """A session without allowed_types does not satisfy an update that sets them."""
        update = parse_update({"options": {"document": {"allowed_types": ["passport"]}}})

        assert not update.is_satisfied_by(_session())

    @pytest.mark.parametrize(
        "options", [None, {}, {"document": {}}, {"document": {"allowed_types": None}}]
    )
    def test_unset_document_satisfied_by_empty(self, options: Any) -> None:
        """Absent or empty document options satisfy an unset."""
        update = parse_update({"options": {"document": ""}})

        assert update.is_satisfied_by(_session(options=options))

    def test_unset_key_satisfied_when_absent(self) -> None:
        """Unsetting a key that is not there is already done."""
        assert parse_update({"metadata": {"gone": ""}}).is_satisfied_by(_session())

    def test_unexpanded_details_not_satisfied(self) -> None:
        """Without expanded provided_details the details cannot be confirmed."""
        update = parse_update({"provided_details": {"email": "a@b.c"}})

        assert not update.is_satisfied_by(_session())
