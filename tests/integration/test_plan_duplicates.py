"""``vsbatch plan`` shows a file's repeated sessions the way a run treats them, per row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from tests.conftest import TEST_API_KEY
from vsbatch.cli.main import cli


def _plan(emulator: Any, data_dir: Path, path: Path) -> tuple[int, dict[str, list[str]]]:
    """Run ``plan`` on ``path``: its exit code and its table as row number -> cells."""
    env = {
        "VSBATCH_STRIPE_API_KEY": TEST_API_KEY,
        "VSBATCH_STRIPE_API_BASE": emulator.url,
        "VSBATCH_DATA_DIR": str(data_dir),
        "COLUMNS": "250",
    }
    result = CliRunner().invoke(cli, ["plan", str(path)], env=env)
    rows = {}
    for line in result.output.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if cells and cells[0].isdigit():
            rows[cells[0]] = cells[1:]
    return result.exit_code, rows


class TestPlanDuplicates:
    def test_a_second_row_of_a_session_is_shown_rejected_as_the_run_would(
        self, emulator: Any, data_dir: Path, tmp_path: Path
    ) -> None:
        """A later row of a session already in the file is ``invalid: id: duplicate of row N``."""
        a, b = emulator.seed(count=2)
        path = tmp_path / "in.csv"
        path.write_text(
            f"id,metadata.tier\n{a},gold\n{b},gold\n{a},silver\n{b},gold\n", encoding="utf-8"
        )

        code, rows = _plan(emulator, data_dir, path)

        assert 2 == code, rows
        assert {
            "2": [a, "would change", "metadata.tier: (unset) -> gold"],
            "3": [b, "would change", "metadata.tier: (unset) -> gold"],
            "4": [a, "invalid", "id: duplicate of row 2"],
            "5": [b, "invalid", "id: duplicate of row 3"],
        } == rows

    def test_a_rejected_row_does_not_claim_its_session(
        self, emulator: Any, data_dir: Path, tmp_path: Path
    ) -> None:
        """An invalid first row of a session leaves the next row of it valid, as in a run."""
        (a,) = emulator.seed(count=1)
        path = tmp_path / "in.csv"
        path.write_text(f"id,type\n{a},selfie\n{a},document\n", encoding="utf-8")

        code, rows = _plan(emulator, data_dir, path)

        assert (2, "invalid", "already so") == (code, rows["2"][1], rows["3"][1]), rows
