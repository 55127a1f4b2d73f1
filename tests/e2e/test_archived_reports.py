"""Reports of a batch read the same from Redis and, once it has left Redis, from the results
store: real ``vsbatch`` processes, the emulator over a socket and a real Redis."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import TEST_API_KEY
from tests.helpers import outside_env, run_vsbatch


def _batch_id(text: str) -> str:
    found = re.search(r"\bb_[a-z0-9]{10,}\b", text)
    assert found, text
    return found.group(0)


@pytest.fixture
def env(redis_url: str, emulator: Any, data_dir: Path) -> dict[str, str]:
    """A user's environment whose archived batches leave Redis within seconds."""
    return outside_env(
        VSBATCH_REDIS_URL=redis_url,
        VSBATCH_STRIPE_API_BASE=emulator.url,
        VSBATCH_STRIPE_API_KEY=TEST_API_KEY,
        VSBATCH_DATA_DIR=str(data_dir),
        VSBATCH_ARCHIVED_RETENTION_DAYS="0.00003",
    )


def _run(env: dict[str, str], csv: Path) -> str:
    """Run ``csv`` (some rows may fail); the batch's id."""
    ran = run_vsbatch(env, "run", str(csv), timeout=90)
    assert ran.returncode in (0, 1), ran.stderr
    return _batch_id(ran.stderr)


def _wait_gone(redis_client: redis.Redis, batch: str) -> None:
    """Until the archived batch has left Redis (its short retention ran out)."""
    deadline = time.monotonic() + 30
    while redis_client.exists(f"vsbatch:b:{batch}") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not redis_client.exists(f"vsbatch:b:{batch}")


def test_status_of_a_batch_that_left_redis_reads_the_results_store(
    redis_client: redis.Redis, env: dict[str, str], emulator: Any, tmp_path: Path
) -> None:
    """``status B`` of an archived batch gone from Redis shows its counters from the results
    store, with the batch's exit code, as ``report B`` does (it said "no batch B")."""
    (session,) = emulator.seed(count=1)
    csv = tmp_path / "in.csv"
    csv.write_text(f"id,metadata.k\n{session},v\nvs_missing{'0' * 18},v\n", "utf-8")
    batch = _run(env, csv)
    _wait_gone(redis_client, batch)

    shown = run_vsbatch(env, "status", batch)

    assert 1 == shown.returncode, shown.stderr
    assert "results store" in shown.stderr
    assert re.search(r"succeeded\s*│\s*1", shown.stdout), shown.stdout
    assert re.search(r"failed\s*│\s*1", shown.stdout), shown.stdout


def test_a_redacted_report_reads_the_same_from_redis_and_from_sql(
    redis_client: redis.Redis, env: dict[str, str], emulator: Any, tmp_path: Path
) -> None:
    """A redacted report shows the idempotency key the row was sent under (derived from the
    update before its emails and phones are hidden), whether it reads Redis or, once the
    batch has left Redis, the results store: the same bytes either way."""
    (session,) = emulator.seed(count=1)
    csv = tmp_path / "in.csv"
    csv.write_text(f"id,provided_details.email\n{session},erin.secret@example.com\n", "utf-8")
    batch = _run(env, csv)
    from_redis = run_vsbatch(env, "report", batch, "--format", "json", "--redact")
    _wait_gone(redis_client, batch)

    from_sql = run_vsbatch(env, "report", batch, "--format", "json", "--redact")

    assert (0, 0) == (from_redis.returncode, from_sql.returncode)
    assert from_redis.stdout == from_sql.stdout
    assert "erin.secret" not in from_sql.stdout
