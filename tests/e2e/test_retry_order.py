"""A retry keeps the place in line of the update it retries, from the command line: the red
team's case of two failures of one session retried oldest first."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.test_cli import _env
from tests.helpers import metadata_csv
from tests.helpers import run_vsbatch as vsbatch


def batch_of(proc: Any) -> str:
    """The batch id ``run`` names on stderr or ``retry`` prints first."""
    found = re.search(r"batch (b_\w+)", proc.stderr) or re.search(r"^\s*(b_\w+)", proc.stdout, re.M)
    assert found, (proc.stdout, proc.stderr)
    return found.group(1)


def outcomes(env: dict[str, str], batch: str) -> list[tuple[str, str]]:
    report = json.loads(vsbatch(env, "report", batch, "--format", "json").stdout)
    return [(r["outcome"], r["reason"]) for r in report["rows"]]


def metadata_of(emulator: Any, session_id: str) -> dict[str, str]:
    sessions = httpx.get(f"{emulator.url}/_emulator/sessions", timeout=10).json()["sessions"]
    found: dict[str, str] = next(s["metadata"] for s in sessions if s["id"] == session_id)
    return found


def test_the_newer_failures_retry_applies_after_the_older_ones(
    emulator: Any, tmp_path: Path
) -> None:
    """Updates A then B of one session both fail (503s); retried A then B, both apply and the
    session ends with B, the newer. (Before: A's retry marked the session at its own new
    place, after B's, and B's retry ended ``skipped: superseded``, leaving A.)"""
    env = _env(emulator, tmp_path / "data", VSBATCH_MAX_ATTEMPTS="3", VSBATCH_RETRY_MAX_SECONDS="3")
    (sid,) = emulator.seed(count=1)
    emulator.configure(fail_503_rate=1.0)
    older = batch_of(
        vsbatch(env, "run", str(metadata_csv(tmp_path / "a.csv", [sid], "metadata.v", "A")))
    )
    newer = batch_of(
        vsbatch(env, "run", str(metadata_csv(tmp_path / "b.csv", [sid], "metadata.v", "B")))
    )
    assert [("failed", "APIError")] == outcomes(env, older) == outcomes(env, newer)
    emulator.configure(fail_503_rate=0.0)

    retry_a = batch_of(vsbatch(env, "retry", older))
    retry_b = batch_of(vsbatch(env, "retry", newer))

    assert ([("succeeded", "")], [("succeeded", "")], {"v": "B"}, {sid: 2}) == (
        outcomes(env, retry_a),
        outcomes(env, retry_b),
        metadata_of(emulator, sid),
        emulator.stats()["applied"],
    )
