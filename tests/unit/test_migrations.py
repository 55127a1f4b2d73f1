"""Migrations: TOML parsing (errors with line and field) and the ``migrate`` and ``beat``
commands reading the file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.migration_specs import CRM, error, one, spec
from vsbatch.cli.migrations import migrate  # noqa: F401  (the module imports cleanly)
from vsbatch.errors import InputError, MigrationSpecError
from vsbatch.migrations.schedule import Schedule
from vsbatch.migrations.spec import load_migrations

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "migrations.toml"


# A wide terminal, so that table cells are not folded.
WIDE = {"COLUMNS": "250"}


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
