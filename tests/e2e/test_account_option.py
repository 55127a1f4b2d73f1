"""``--account`` is checked like the ``stripe_account`` column: at once, one line, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis


def _vsbatch(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vsbatch", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def csv_file(tmp_path: Path, emulator: Any) -> Path:
    path = tmp_path / "st.csv"
    ids = emulator.seed(count=2)
    path.write_text("id,metadata.k\n" + "".join(f"{i},v\n" for i in ids), encoding="utf-8")
    return path


class TestAccountOption:
    @pytest.mark.parametrize("account", ["acct_$(id)", "not-an-account", "acct_" + "a" * 251])
    def test_submit_refuses_a_bad_account_and_stages_nothing(
        self, env: dict[str, str], csv_file: Path, redis_client: redis.Redis, account: str
    ) -> None:
        """``submit --account BAD``: one line naming the option, exit 2, no batch written."""
        result = _vsbatch(env, "submit", str(csv_file), "--account", account)

        assert (2, "") == (result.returncode, result.stdout), result.stderr
        lines = result.stderr.strip().splitlines()
        assert 1 == len(lines) and "--account" in lines[0], result.stderr
        assert [] == list(redis_client.scan_iter("vsbatch:b:*"))

    def test_run_refuses_a_bad_account_before_sending(
        self, env: dict[str, str], csv_file: Path, emulator: Any
    ) -> None:
        """``run --new --account BAD``: exit 2 with one line, and no request reaches Stripe."""
        result = _vsbatch(env, "run", str(csv_file), "--new", "--account", "not-an-account")

        assert 2 == result.returncode, result.stderr
        assert 1 == len(result.stderr.strip().splitlines()), result.stderr
        assert 0 == emulator.stats()["updates"]

    def test_plan_refuses_a_bad_account(self, env: dict[str, str], csv_file: Path) -> None:
        """``plan --account BAD``: exit 2 with one line naming the option."""
        result = _vsbatch(env, "plan", str(csv_file), "--account", "acct_$(id)")

        assert 2 == result.returncode and "--account" in result.stderr, result.stderr
        assert 1 == len(result.stderr.strip().splitlines()), result.stderr
