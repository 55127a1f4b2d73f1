"""Migrations: TOML parsing (errors with line and field), schedules, selectors and actions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vsbatch.cli.migrations import migrate  # noqa: F401  (the module imports cleanly)
from vsbatch.errors import InputError, MigrationSpecError
from vsbatch.migrations.schedule import CRON_GRACE, Schedule, parse_schedule
from vsbatch.migrations.spec import Migration, load_migrations, parse_migrations

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "migrations.toml"

CRM = """
[[migration]]
name = "crm"
schedule = "15m"

[migration.select]
metadata_present = ["crm"]

[[migration.action]]
op = "copy"
from = "crm"
to = "crm_id"

[[migration.action]]
op = "unset"
keys = ["crm"]
"""


# A wide terminal, so that table cells are not folded.
WIDE = {"COLUMNS": "250"}


def one(text: str) -> Migration:
    (migration,) = parse_migrations(text).values()
    return migration


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


def spec(select: str = "", actions: str = 'op = "set"\nvalues = { a = "1" }') -> str:
    return (
        f'[[migration]]\nname = "m"\n\n[migration.select]\n{select}\n\n'
        f"[[migration.action]]\n{actions}\n"
    )


def error(text: str) -> MigrationSpecError:
    with pytest.raises(MigrationSpecError) as info:
        parse_migrations(text, path="m.toml")
    return info.value


class TestParsing:
    def test_example_file_parses(self) -> None:
        """The shipped example declares its three migrations."""
        migrations = load_migrations(EXAMPLE)

        assert ["crm-to-crm-id", "eu-selfie", "legacy-to-id-number"] == list(migrations)

    def test_example_schedules(self) -> None:
        """Cron, interval and manual schedules are read as such."""
        migrations = load_migrations(EXAMPLE)

        assert [Schedule("0 3 * * *"), Schedule("1h", 3600), None] == [
            m.schedule for m in migrations.values()
        ]

    def test_defaults_select_requires_input(self) -> None:
        """Without a status the selector lists sessions in requires_input only."""
        assert ("requires_input",) == one(CRM).selector.statuses

    def test_toml_syntax_error_names_line(self) -> None:
        """A TOML syntax error is refused with its line."""
        exc = error('[[migration]]\nname = "m"\nschedule = \n')

        assert ("m.toml", 3) == (exc.path, exc.line)

    def test_unknown_field_names_line_and_field(self) -> None:
        """A misspelt selector field is refused with its line and dotted field."""
        exc = error(spec(select='status = "requires_input"\nmetadata_presnt = ["crm"]'))

        assert (6, "migration[0].select.metadata_presnt") == (exc.line, exc.field)

    def test_bad_status_names_line(self) -> None:
        """An unknown status is refused at its line."""
        exc = error(spec(select='status = ["requires_input", "pending"]'))

        assert (5, "migration[0].select.status") == (exc.line, exc.field)

    def test_bad_action_op_names_action(self) -> None:
        """An unknown op is refused at the action's op line."""
        exc = error(spec(actions='op = "move"\nfrom = "a"'))

        assert (8, "migration[0].action[0].op") == (exc.line, exc.field)

    def test_bad_metadata_key_is_refused(self) -> None:
        """A copy target with brackets breaks Stripe's key rules."""
        exc = error(spec(actions='op = "copy"\nfrom = "a"\nto = "b[1]"'))

        assert (10, "migration[0].action[0].to") == (exc.line, exc.field)

    def test_bad_document_option_is_refused(self) -> None:
        """A document option with a wrong type names that option."""
        exc = error(spec(actions='op = "document"\nrequire_matching_selfie = "yes"'))

        assert "migration[0].action[0].require_matching_selfie" == exc.field

    def test_bad_schedule_is_refused(self) -> None:
        """A schedule that is neither interval nor cron is refused at its line."""
        exc = error(
            '[[migration]]\nname = "m"\nschedule = "often"\n[[migration.action]]\n'
            'op = "type"\nvalue = "document"\n'
        )

        assert (3, "migration[0].schedule") == (exc.line, exc.field)

    def test_missing_actions_are_refused(self) -> None:
        """A migration without actions is refused."""
        exc = error('[[migration]]\nname = "m"\n')

        assert "migration[0].action" == exc.field

    def test_duplicate_names_are_refused(self) -> None:
        """Two migrations may not share a name; the second is named."""
        exc = error(CRM + CRM)

        assert ("migration[1].name", 19) == (exc.field, exc.line)

    def test_unknown_top_level_key_is_refused(self) -> None:
        """Anything but [[migration]] at the top is refused."""
        exc = error("version = 2\n" + CRM)

        assert ("version", 1) == (exc.field, exc.line)

    def test_error_is_an_input_error(self) -> None:
        """Spec errors are usage errors (exit code 2)."""
        assert (True, 2) == (
            issubclass(MigrationSpecError, InputError),
            MigrationSpecError.exit_code,
        )

    def test_message_carries_location(self) -> None:
        """The message reads path:line: reason (field ...)."""
        exc = error(spec(select='status = "nope"'))

        assert str(exc).startswith("m.toml:5: 'nope' is not one of")

    def test_unreadable_file_is_refused(self, tmp_path: Path) -> None:
        """A missing file is a spec error naming the path."""
        with pytest.raises(MigrationSpecError) as info:
            load_migrations(tmp_path / "none.toml")

        assert str(tmp_path / "none.toml") == info.value.path


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


class TestCli:
    def test_list_shows_every_migration(self) -> None:
        """``migrate list`` prints each migration of the file and exits 0."""
        from typer.testing import CliRunner

        from vsbatch.cli.main import cli

        result = CliRunner().invoke(cli, ["migrate", "list", "--file", str(EXAMPLE)])

        assert (0, True) == (
            result.exit_code,
            all(n in result.output for n in ("crm-to-crm-id", "eu-selfie", "manual")),
        )

    def test_list_shows_the_creation_bounds(self, tmp_path: Path) -> None:
        """``migrate list`` shows a selector's ``created_after`` and ``created_before``."""
        from typer.testing import CliRunner

        from vsbatch.cli.main import cli

        path = tmp_path / "m.toml"
        path.write_text(spec('created_after = "7d"\ncreated_before = 2026-01-02T03:04:05Z'))

        result = CliRunner().invoke(cli, ["migrate", "list", "--file", str(path)], env=WIDE)

        assert (0, True, True) == (
            result.exit_code,
            "created after 7d ago" in result.output,
            "created before 2026-01-02T03:04:05Z" in result.output,
        ), result.output

    @pytest.mark.parametrize("schedule", ["0 0 31 2 *", "0s", "5s", "400d"])
    @pytest.mark.parametrize("command", [["migrate", "list"], ["beat"]])
    def test_bad_schedule_exits_2_with_one_line(
        self, tmp_path: Path, command: list[str], schedule: str
    ) -> None:
        """``migrate list`` and ``beat`` refuse a bad schedule: exit 2, one line naming it."""
        from typer.testing import CliRunner

        from vsbatch.cli.main import cli

        bad = tmp_path / "m.toml"
        bad.write_text(spec().replace('name = "m"', f'name = "m"\nschedule = "{schedule}"'))

        result = CliRunner().invoke(cli, [*command, "--file", str(bad)])

        lines = result.output.strip().splitlines()
        assert (2, 1, True) == (result.exit_code, len(lines), "'m'" in result.output), lines

    def test_bad_file_exits_2_with_location(self, tmp_path: Path) -> None:
        """A refused file exits 2 and names the line."""
        from typer.testing import CliRunner

        from vsbatch.cli.main import cli

        bad = tmp_path / "m.toml"
        bad.write_text(spec(select='status = "nope"'), encoding="utf-8")

        result = CliRunner().invoke(cli, ["migrate", "plan", "m", "--file", str(bad)])

        assert (2, True) == (result.exit_code, "m.toml:5:" in result.output)
