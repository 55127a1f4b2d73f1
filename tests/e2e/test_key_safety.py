"""The API key under hostile conditions, through real ``vsbatch`` processes: a server that
echoes it, a ``.env`` that redirects it, a Redis URL with a password in its query."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_API_KEY
from tests.e2e.stub_servers import EchoStripe, key_forms
from tests.helpers import closed_port as _closed_port
from tests.helpers import outside_env as _env
from tests.helpers import run_vsbatch as _vsbatch

LIVE_KEY = "sk_live_vsbatch0123456789abcdefLIVESECRET"


def _leaks(text: str | bytes, key: str) -> list[str]:
    data = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return [name for name, form in key_forms(key).items() if form in data]


@pytest.fixture
def echo() -> Iterator[EchoStripe]:
    """A Stripe look-alike on a real socket that echoes the key in every answer."""
    server = EchoStripe().start()
    try:
        yield server
    finally:
        server.stop()


class TestEchoingServer:
    def test_echoed_key_reaches_no_ledger_report_log_or_aof(
        self, echo: EchoStripe, tmp_path: Path
    ) -> None:
        """After a batch against a server echoing the key everywhere, the key is nowhere."""
        # Given a batch with one session that succeeds and one that fails, both echoing the key
        csv = tmp_path / "in.csv"
        csv.write_text(
            f"id,metadata.tier\nvs_good{'A' * 20},gold\nvs_bad{'B' * 21},gold\n", encoding="utf-8"
        )
        data_dir = tmp_path / "data"
        env = _env(
            VSBATCH_STRIPE_API_KEY=TEST_API_KEY,
            VSBATCH_STRIPE_API_BASE=echo.url,
            VSBATCH_DATA_DIR=str(data_dir),
            VSBATCH_LOG_FORMAT="json",
            VSBATCH_LOG_LEVEL="DEBUG",
            VSBATCH_RATE_LIMIT="200",
            VSBATCH_CONCURRENCY="2",
        )

        # When it runs, and every report format is written from the ledger
        run = _vsbatch(env, "run", str(csv), "--format", "json")
        found = re.search(r"batch (\S+): 2 rows", run.stderr)
        assert found is not None, run.stderr
        outputs = {"run": run.stdout + run.stderr}
        for fmt in ("json", "csv", "html"):
            report = _vsbatch(env, "report", found.group(1), "--format", fmt)
            assert run.returncode == report.returncode, report.stderr  # one exit-code table
            outputs[fmt] = report.stdout + report.stderr
        aof = b"".join(p.read_bytes() for p in (data_dir / "redis").rglob("*") if p.is_file())

        # Then the rows ended as the server answered, and no form of the key is anywhere
        assert 1 == run.returncode, run.stderr
        assert '"succeeded"' in outputs["json"] and '"failed"' in outputs["json"]
        assert b"vs_bad" in aof  # the AOF does hold the ledger
        assert len(echo.requests) >= 3
        leaks = {name: _leaks(text, TEST_API_KEY) for name, text in {**outputs, "aof": aof}.items()}
        assert {name: [] for name in leaks} == leaks


class TestKeyInTheInput:
    def test_a_key_pasted_in_a_cell_is_rejected_never_sent_stored_or_printed(
        self, emulator: Any, tmp_path: Path
    ) -> None:
        """A Stripe secret key pasted into a CSV cell (the configured one, or another) ends the
        row rejected with the column named; it reaches neither Stripe, nor the ledger's
        append-only file, nor the results store, nor any report or query output."""
        import sqlite3

        # Given a file whose rows hold the configured key and another account's live key
        ok, mine, other = emulator.seed(count=3)
        csv = tmp_path / "in.csv"
        csv.write_text(
            f"id,metadata.note\n{ok},fine\n{mine},{TEST_API_KEY}\n{other},x {LIVE_KEY} y\n",
            encoding="utf-8",
        )
        data_dir = tmp_path / "data"
        env = _env(
            VSBATCH_STRIPE_API_KEY=TEST_API_KEY,
            VSBATCH_STRIPE_API_BASE=emulator.url,
            VSBATCH_DATA_DIR=str(data_dir),
        )

        # When it runs, and its rows are read back every way
        run = _vsbatch(env, "run", str(csv), "--format", "json")
        found = re.search(r"batch (\S+): 3 rows", run.stderr)
        assert found is not None, run.stderr
        outputs = [run.stdout + run.stderr]
        for args in (
            ("report", found.group(1), "--format", "csv"),
            ("failures", found.group(1)),
            ("explain", f"{found.group(1)}:3"),
            ("query", "session", mine, "-f", "json"),
        ):
            shown = _vsbatch(env, *args)
            outputs.append(shown.stdout + shown.stderr)
        aof = b"".join(p.read_bytes() for p in (data_dir / "redis").rglob("*") if p.is_file())
        with sqlite3.connect(data_dir / "results.sqlite3") as db:
            dump = "\n".join(db.iterdump())

        # Then two rows are rejected naming the column, one applied, and no key is anywhere
        assert 2 == run.returncode, run.stderr
        assert '"metadata.note"' in outputs[0] and '"rejected"' in outputs[0]
        assert {ok: 1} == emulator.stats()["applied"]
        everything = "\n".join([*outputs, aof.decode("utf-8", "replace"), dump])
        assert ([], []) == (_leaks(everything, TEST_API_KEY), _leaks(everything, LIVE_KEY))


class TestDotEnv:
    def test_dotenv_cannot_send_a_live_key_to_another_host(
        self, echo: EchoStripe, tmp_path: Path
    ) -> None:
        """A .env setting an http base and VSBATCH_LIVE=true gets no request sent: exit 2."""
        # Given a working directory whose .env redirects the API to a recording server
        (tmp_path / ".env").write_text(
            f"VSBATCH_STRIPE_API_BASE={echo.url}\nVSBATCH_LIVE=true\n"
            f"VSBATCH_STRIPE_API_BASE_ALLOW={echo.url}\n",
            encoding="utf-8",
        )
        csv = tmp_path / "in.csv"
        csv.write_text(f"id,metadata.tier\nvs_good{'A' * 20},gold\n", encoding="utf-8")
        env = _env(VSBATCH_STRIPE_API_KEY=LIVE_KEY, VSBATCH_DATA_DIR=str(tmp_path / "data"))

        # When the operator runs the file with their live key
        result = _vsbatch(env, "run", str(csv), cwd=tmp_path)

        # Then nothing reached the server, and one line says why
        assert [] == echo.requests
        assert 2 == result.returncode
        lines = result.stderr.strip().splitlines()
        assert 1 == len(lines) and "live-mode key is sent only to" in lines[0], result.stderr
        assert [] == _leaks(result.stderr + result.stdout, LIVE_KEY)


class TestRedisUrl:
    def test_password_query_parameter_never_printed(self, tmp_path: Path) -> None:
        """An unreachable Redis URL with ``?password=`` is printed without the password."""
        url = f"redis://127.0.0.1:{_closed_port()}/0?password=hunter2query"
        env = _env(VSBATCH_REDIS_URL=url, VSBATCH_STRIPE_API_KEY=TEST_API_KEY)

        result = _vsbatch(env, "status")

        assert 2 == result.returncode
        assert "hunter2query" not in result.stderr + result.stdout
        assert "redis://***@127.0.0.1:" in result.stderr  # moved into the userinfo, masked
