"""Migrations' rules: schedules (and their bounds), selectors and actions."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.migration_specs import CRM, error, one, spec
from vsbatch.migrations.schedule import CRON_GRACE, parse_schedule

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def session(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "vs_123",
        "status": "requires_input",
        "type": "document",
        "created": int(NOW) - 3600,
        "metadata": {},
        "options": {"document": {}},
        "redaction": None,
    }
    return {**base, **fields}


class TestSchedule:
    def test_interval_ticks_align_to_epoch(self) -> None:
        """An interval's tick is the last multiple of the interval at or before now."""
        assert 1_799_999_100 == parse_schedule("15m").tick(NOW - 1)

    def test_cron_tick_at_exact_time(self) -> None:
        """A cron tick at exactly now counts as now's tick."""
        assert int(NOW) == parse_schedule("0 8 * * *").tick(NOW)

    def test_cron_tick_is_latest_before(self) -> None:
        """Later in the day, the tick is still this morning's."""
        assert int(NOW) == parse_schedule("0 8 * * *").tick(NOW + 3000)

    def test_cron_tick_past_grace_is_not_due(self) -> None:
        """A cron tick older than the grace is not run late."""
        schedule = parse_schedule("0 8 * * *")

        assert (int(NOW), None) == (
            schedule.due_tick(NOW + CRON_GRACE),
            schedule.due_tick(NOW + CRON_GRACE + 1),
        )

    def test_interval_check_period_is_half(self) -> None:
        """Beat checks an interval twice per period (at most every 30 s)."""
        assert (1.0, 30.0) == (
            parse_schedule("2s", min_interval=1).check_period,
            parse_schedule("1h").check_period,
        )

    @pytest.mark.parametrize("text", ["0s", "15 minutes", "* * *", "61 * * * *", "*/5 * * * * *"])
    def test_bad_schedules(self, text: str) -> None:
        """Zero intervals, prose, short and 6-field crons are refused."""
        with pytest.raises(ValueError):
            parse_schedule(text)


class TestScheduleBounds:
    @pytest.mark.parametrize("text", ["0 0 31 2 *", "0 0 30 2 *", "0 12 31 4,6,9,11 *"])
    def test_cron_that_never_fires_is_refused(self, text: str) -> None:
        """A cron with no fire time within the horizon (31 February) is refused."""
        with pytest.raises(ValueError, match="never fires"):
            parse_schedule(text, now=NOW)

    def test_rare_but_real_cron_is_accepted(self) -> None:
        """29 February fires every four years, within the horizon: accepted."""
        assert "0 0 29 2 *" == parse_schedule("0 0 29 2 *", now=NOW).text

    @pytest.mark.parametrize("text", ["1s", "30s", "59s"])
    def test_interval_below_the_minimum_is_refused(self, text: str) -> None:
        """An interval under a minute (the default minimum) is refused."""
        with pytest.raises(ValueError, match="at least 60s"):
            parse_schedule(text)

    def test_interval_at_the_minimum_is_accepted(self) -> None:
        """One minute is the shortest default interval."""
        assert 60 == parse_schedule("1m").interval

    def test_minimum_can_be_lowered(self) -> None:
        """A lower minimum (tests, demos) admits shorter intervals."""
        assert 2 == parse_schedule("2s", min_interval=1).interval

    @pytest.mark.parametrize("text", ["367d", "100000d", "99999999h"])
    def test_absurd_interval_is_refused(self, text: str) -> None:
        """An interval longer than a year (366 days) is refused."""
        with pytest.raises(ValueError, match="at most 366d"):
            parse_schedule(text)

    def test_file_error_names_the_migration_and_reason(self) -> None:
        """A bad schedule in a file is refused with the migration's name, line and reason."""
        text = spec().replace('name = "m"', 'name = "m"\nschedule = "0 0 31 2 *"')

        exc = error(text)

        assert (
            "m.toml:3: migration 'm': cron '0 0 31 2 *' never fires "
            "(no date matches within 5 years) (field migration[0].schedule)"
        ) == str(exc)


class TestSelector:
    def test_list_queries_per_status_with_bounds(self) -> None:
        """Each status is one list call with the creation bounds resolved at the run."""
        selector = one(
            spec(
                select='status = ["requires_input", "verified"]\ncreated_after = "1d"\n'
                'created_before = 2027-01-01T00:00:00Z\naccount = "acct_9"'
            )
        ).selector
        created = {"gt": int(NOW) - 86400, "lt": 1_798_761_600}

        assert [
            {"status": "requires_input", "created": created, "stripe_account": "acct_9"},
            {"status": "verified", "created": created, "stripe_account": "acct_9"},
        ] == selector.list_queries(NOW)

    def test_metadata_conditions(self) -> None:
        """Present, absent and equal metadata conditions must all hold."""
        selector = one(
            spec(
                select='metadata_present = ["crm"]\nmetadata_absent = ["done"]\n'
                'metadata_equals = { region = "eu" }'
            )
        ).selector

        assert [True, False, False, False] == [
            selector.matches(session(metadata={"crm": "1", "region": "eu"}), NOW),
            selector.matches(session(metadata={"region": "eu"}), NOW),
            selector.matches(session(metadata={"crm": "1", "region": "eu", "done": "y"}), NOW),
            selector.matches(session(metadata={"crm": "1", "region": "us"}), NOW),
        ]

    def test_status_and_redaction(self) -> None:
        """Other statuses and redacted sessions never match."""
        selector = one(CRM).selector
        md = {"crm": "1"}

        assert [True, False, False] == [
            selector.matches(session(metadata=md), NOW),
            selector.matches(session(metadata=md, status="verified"), NOW),
            selector.matches(session(metadata=md, redaction={"status": "redacted"}), NOW),
        ]

    def test_a_redaction_in_progress_never_matches(self) -> None:
        """A session whose redaction is still ``processing`` is as good as redacted."""
        selector = one(CRM).selector

        actual = selector.matches(
            session(metadata={"crm": "1"}, redaction={"status": "processing"}), NOW
        )

        assert False is actual

    def test_created_bounds_are_exclusive(self) -> None:
        """created_after and created_before compare strictly, as Stripe's gt and lt."""
        selector = one(spec(select="created_after = 100\ncreated_before = 200")).selector

        assert [False, True, False] == [
            selector.matches(session(created=c), NOW) for c in (100, 150, 200)
        ]

    def test_date_bound_is_utc_midnight(self) -> None:
        """A plain date bound is midnight UTC."""
        selector = one(spec(select="created_after = 2027-01-15")).selector

        assert 1_799_971_200 == selector.list_queries(NOW)[0]["created"]["gt"]


class TestActions:
    def test_copy_then_unset(self) -> None:
        """crm is copied into crm_id and removed, in one update."""
        update = one(CRM).desired_update(session(metadata={"crm": "c1", "x": "y"}))

        assert {"metadata": {"crm": "", "crm_id": "c1"}} == (update and update.to_params())

    def test_already_migrated_is_none(self) -> None:
        """A session already in the desired state needs no update."""
        assert None is one(CRM).desired_update(session(metadata={"crm_id": "c1"}))

    def test_rename_keeps_value(self) -> None:
        """rename moves the value to the new key."""
        migration = one(spec(actions='op = "rename"\nfrom = "a"\nto = "b"'))

        update = migration.desired_update(session(metadata={"a": "v"}))

        assert {"metadata": {"a": "", "b": "v"}} == (update and update.to_params())

    def test_copy_of_absent_key_changes_nothing(self) -> None:
        """Copying a key the session lacks is a no-op."""
        migration = one(spec(actions='op = "copy"\nfrom = "a"\nto = "b"'))

        assert None is migration.desired_update(session(metadata={"c": "v"}))

    def test_set_only_changed_values(self) -> None:
        """set sends only the keys whose value differs."""
        migration = one(spec(actions='op = "set"\nvalues = { a = "1", b = "2" }'))

        update = migration.desired_update(session(metadata={"a": "1"}))

        assert {"metadata": {"b": "2"}} == (update and update.to_params())

    def test_document_and_type(self) -> None:
        """Document options and type are set unless the session has them already."""
        migration = one(
            spec(
                actions='op = "document"\nrequire_matching_selfie = true\n\n'
                '[[migration.action]]\nop = "type"\nvalue = "id_number"'
            )
        )
        done = session(type="id_number", options={"document": {"require_matching_selfie": True}})

        update = migration.desired_update(session())

        assert (
            {"options": {"document": {"require_matching_selfie": True}}, "type": "id_number"},
            None,
        ) == (update and update.to_params(), migration.desired_update(done))

    def test_actions_run_in_order(self) -> None:
        """A set after an unset of the same key wins."""
        migration = one(
            spec(
                actions='op = "unset"\nkeys = ["a"]\n\n[[migration.action]]\nop = "set"\n'
                'values = { a = "new" }'
            )
        )

        update = migration.desired_update(session(metadata={"a": "old"}))

        assert {"metadata": {"a": "new"}} == (update and update.to_params())

    def test_describe(self) -> None:
        """Each action has a one-line summary."""
        assert ["copy crm -> crm_id", "unset crm"] == [a.describe() for a in one(CRM).actions]
