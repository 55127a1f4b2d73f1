"""The update model against sessions: applying an update to Stripe's fixture session, the
field changes it makes, and whether a session already satisfies it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.unit.update_examples import WIRE_EXAMPLES
from vsbatch.model.update import FieldChange, parse_update

FIXTURES = Path("/work/shared/stripe-api/verification_sessions.fixtures.json")


def _session(**changes: Any) -> dict[str, Any]:
    """Stripe's fixture session (verified, document options with a selfie), with changes."""
    fixtures = json.loads(FIXTURES.read_text(encoding="utf-8"))
    session: dict[str, Any] = fixtures["resources"]["identity.verification_session"]
    session.update(changes)
    return session


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
