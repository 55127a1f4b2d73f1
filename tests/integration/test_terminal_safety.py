"""Text from data or the network reaches the terminal as text: never as markup or escapes.

Batch names, session ids and Stripe error messages holding Rich markup (``[/x]``), ANSI
escape sequences and other control characters go through the real CLI (``CliRunner`` and a
real ``python -m vsbatch`` process) on a real Redis.
"""

from __future__ import annotations

import io
import unicodedata
from pathlib import Path
from typing import Any

import pytest
import redis
from rich.console import Console
from typer.testing import CliRunner

from tests.conftest import TEST_API_KEY
from tests.helpers import ledger_env, outside_env, run_vsbatch
from vsbatch.cli.main import cli
from vsbatch.cli.progress import wait_for_batch
from vsbatch.model.row import NewRow, Outcome
from vsbatch.store.ledger import Ledger

NAME = "[/n]\x1b[2J\x1b]0;owned\x07[bold]x"
EVIL_ID = "[/x]\x1b[31m"
MESSAGE = "[/red]\x1b[5mboom\x9b2J\u202etxt"


def _env(redis_url: str, data_dir: Path) -> dict[str, str]:
    return ledger_env(redis_url, data_dir, VSBATCH_LOG_FORMAT="text")


def _controls(text: str) -> list[str]:
    """Control and bidi-override characters in ``text`` other than line feeds."""
    return [
        repr(c)
        for c in text
        if c != "\n" and (unicodedata.category(c) == "Cc" or "\u202a" <= c <= "\u202e")
    ]


@pytest.fixture
def batch_id(redis_client: redis.Redis) -> str:
    """An open batch named ``NAME``: a rejected row with ``EVIL_ID``, a failed row."""
    ledger = Ledger(redis_client)
    batch = ledger.create_batch(name=NAME, kind="csv", source="x.csv")
    rows = [
        NewRow(2, EVIL_ID, None, None, rejection=("id", f"Not a session id: {EVIL_ID!r}")),
        NewRow(3, "vs_1AAAA", None, {"type": "document"}, idempotency_key="k3"),
    ]
    ledger.add_rows(batch.id, rows)
    ledger.open_batch(batch.id)
    ledger.transition(
        batch.id, 3, Outcome.FAILED, error_message=MESSAGE, error_code="x", retryable=False
    )
    return batch.id


COMMANDS = [
    ["status"],
    ["status", "{bid}"],
    ["report", "{bid}"],
    ["status", EVIL_ID],
    ["report", MESSAGE],
]


class TestThroughCliRunner:
    @pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a).split("\x1b")[0])
    def test_output_is_plain_text(
        self, batch_id: str, redis_url: str, data_dir: Path, args: list[str]
    ) -> None:
        """The command ends without a traceback and prints no control character."""
        argv = [a.format(bid=batch_id) for a in args]

        result = CliRunner().invoke(cli, argv, env=_env(redis_url, data_dir))

        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert result.exit_code in (0, 1, 2), result.output
        assert [] == _controls(result.output)
        assert "Traceback" not in result.output

    def test_markup_in_a_name_is_shown_literally(
        self, batch_id: str, redis_url: str, data_dir: Path
    ) -> None:
        """A batch name that looks like markup is listed as written, its escapes made visible."""
        result = CliRunner().invoke(cli, ["status"], env=_env(redis_url, data_dir))

        assert 0 == result.exit_code, result.output
        assert "[/n]\\x1b[2J\\x1b]0;owned\\x07[bold]x" in result.output


class TestThroughAProcess:
    def test_status_and_report_print_no_escape_sequences(
        self, batch_id: str, redis_url: str, data_dir: Path
    ) -> None:
        """A real process lists, shows and reports the batch without a control character."""
        env = outside_env(**_env(redis_url, data_dir))
        outputs = []
        for args in (["status"], ["status", batch_id], ["report", batch_id]):
            done = run_vsbatch(env, *args)
            outputs.append((done.returncode, done.stdout + done.stderr))

        # The batch has a failed row: status and report of it exit 1, as run would.
        assert [0, 1, 1] == [code for code, _ in outputs], outputs
        for _, text in outputs:
            assert [] == _controls(text)
            assert "Traceback" not in text
        assert "boom" in outputs[2][1]


class TestProgress:
    def test_progress_bar_shows_the_name_as_text(self, redis_client: redis.Redis) -> None:
        """The progress bar's description is the batch name as written, escapes made visible."""
        ledger = Ledger(redis_client)
        batch = ledger.create_batch(name="[/n] :x: \x1b[2J", kind="csv", source="x.csv")
        ledger.add_rows(batch.id, [NewRow(2, "bad", None, None, rejection=("id", "bad"))])
        ledger.open_batch(batch.id)
        console = Console(file=io.StringIO(), width=120)

        wait_for_batch(ledger, batch.id, console, sleep=lambda _: None)

        text = console.file.getvalue()  # type: ignore[attr-defined]
        assert "[/n] :x: \\x1b[2J" in text
        assert [] == _controls(text)


class TestPlan:
    def test_plan_shows_invalid_ids_as_text(
        self, tmp_path: Path, data_dir: Path, emulator: Any
    ) -> None:
        """``plan`` lists a row whose id is markup and escapes as text, without a traceback."""
        path = tmp_path / "in.csv"
        path.write_text(f"id,type\n{EVIL_ID},document\n", encoding="utf-8")
        env = {
            "VSBATCH_STRIPE_API_KEY": TEST_API_KEY,
            "VSBATCH_STRIPE_API_BASE": emulator.url,
            "VSBATCH_DATA_DIR": str(data_dir),
        }

        result = CliRunner().invoke(cli, ["plan", str(path)], env=env)

        assert 2 == result.exit_code, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert [] == _controls(result.output)
        assert "[/x]\\x1b[31m" in result.output.replace("\n", "")
