"""``vsbatch archive``, ``query`` and ``run`` with the results store, as an operator runs them:
real processes (``python -m vsbatch``), the emulator over a socket, a real Redis.

Bad settings and option values are one line and exit 2 before anything is staged; a query
honours ``VSBATCH_REDACT_PII``; a no-op ``cancel`` leaves an archived batch's short retention.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import TEST_API_KEY
from tests.helpers import closed_port, outside_env, run_vsbatch


def _env(redis_url: str, emulator: Any, data_dir: Path, **extra: str) -> dict[str, str]:
    return outside_env(
        VSBATCH_REDIS_URL=redis_url,
        VSBATCH_STRIPE_API_BASE=emulator.url,
        VSBATCH_STRIPE_API_KEY=TEST_API_KEY,
        VSBATCH_DATA_DIR=str(data_dir),
        **extra,
    )


def _batch_id(text: str) -> str:
    found = re.search(r"\bb_[a-z0-9]{10,}\b", text)
    assert found, text
    return found.group(0)


def _assert_one_line_error(proc: subprocess.CompletedProcess[str], code: int = 2) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.returncode == code, (proc.returncode, proc.stderr[-2000:])
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres@127.0.0.1:abc/test",  # a port typo
        "postgresql://[::1",  # an unclosed IPv6 bracket
        "postgresql+asyncpg://postgres@127.0.0.1/test",  # a driver vsbatch does not ship
        "postgresql+psycopg2://postgres@127.0.0.1/test",  # SQLAlchemy's default, not shipped
        "sqlite+pysqlcipher:///x.db",
    ],
)
def test_a_bad_results_url_is_one_line_and_exit_2(data_dir: Path, url: str) -> None:
    """README: VSBATCH_RESULTS_URL ... Unusable: one line, exit 2."""
    env = outside_env(VSBATCH_DATA_DIR=str(data_dir), VSBATCH_RESULTS_URL=url)
    _assert_one_line_error(run_vsbatch(env, "query", "totals", timeout=60))


@pytest.mark.parametrize("command", [["archive"], ["web", "--port", "0"], ["status"]])
def test_every_command_refuses_a_bad_results_url_before_it_starts(
    data_dir: Path, command: list[str]
) -> None:
    """The URL's form is checked with the other settings: one line naming the variable."""
    env = outside_env(VSBATCH_DATA_DIR=str(data_dir), VSBATCH_RESULTS_URL="postgresql://[::1")
    proc = run_vsbatch(env, *command, timeout=60)
    _assert_one_line_error(proc)
    assert "VSBATCH_RESULTS_URL" in proc.stderr


def test_run_with_a_malformed_results_url_stops_before_anything_is_staged(
    redis_client: redis.Redis, redis_url: str, emulator: Any, data_dir: Path, tmp_path: Path
) -> None:
    """README: VSBATCH_RESULTS_URL unusable: one line, exit 2 -- checked with the other
    settings, before run stages or applies anything (not after every row was applied)."""
    (session,) = emulator.seed(count=1)
    csv = tmp_path / "in.csv"
    csv.write_text(f"id,metadata.k\n{session},v\n", encoding="utf-8")
    env = _env(redis_url, emulator, data_dir, VSBATCH_RESULTS_URL="postgresql://u@127.0.0.1:abc/x")
    proc = run_vsbatch(env, "run", str(csv), timeout=90)
    _assert_one_line_error(proc)
    assert "VSBATCH_RESULTS_URL" in proc.stderr
    assert [] == redis_client.keys("vsbatch:b:*")
    assert {} == emulator.stats()["applied"]


def test_run_with_a_failing_results_store_keeps_the_batch_exit_code(
    redis_client: redis.Redis, redis_url: str, emulator: Any, data_dir: Path, tmp_path: Path
) -> None:
    """docs/results-store.md: for run, 'a store that fails is one warning line; the batch
    stays in Redis' -- and run exits with the batch's code (0: every row applied)."""
    (session,) = emulator.seed(count=1)
    csv = tmp_path / "in.csv"
    csv.write_text(f"id,metadata.k\n{session},v\n", encoding="utf-8")
    url = f"postgresql://u@127.0.0.1:{closed_port()}/x?connect_timeout=2"  # well formed, down
    env = _env(redis_url, emulator, data_dir, VSBATCH_RESULTS_URL=url)
    proc = run_vsbatch(env, "run", str(csv), timeout=90)
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.returncode == 0, proc.stderr[-2000:]
    (warning,) = [line for line in proc.stderr.splitlines() if "not archived" in line]
    assert warning.startswith("warning: batch b_"), warning


def test_archive_follow_with_an_infinite_interval_is_refused(data_dir: Path) -> None:
    """README: number settings must be finite; no user error ends in a traceback."""
    env = outside_env(VSBATCH_DATA_DIR=str(data_dir))
    proc = run_vsbatch(env, "archive", "--follow", "--interval", "inf", timeout=60)
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.returncode == 2, proc.stderr[-2000:]


def test_an_ssl_key_password_in_the_results_url_is_hidden(data_dir: Path) -> None:
    """README: log and error lines drop every URL's credentials (userinfo, password=...)."""
    url = f"postgresql://postgres@127.0.0.1:{closed_port()}/t?sslpassword=S3CR3T&sslmode=require"
    env = outside_env(VSBATCH_DATA_DIR=str(data_dir), VSBATCH_RESULTS_URL=url)
    proc = run_vsbatch(env, "query", "totals", timeout=60)
    assert proc.returncode == 2
    assert "S3CR3T" not in proc.stderr + proc.stdout, proc.stderr


def test_a_no_op_cancel_keeps_an_archived_batch_on_the_short_retention(
    redis_client: redis.Redis, redis_url: str, emulator: Any, data_dir: Path, tmp_path: Path
) -> None:
    """README: once a batch is archived whole, Redis keeps it 7 days instead of 30."""
    (session,) = emulator.seed(count=1)
    csv = tmp_path / "in.csv"
    csv.write_text(f"id,metadata.k\n{session},v\n", encoding="utf-8")
    env = _env(redis_url, emulator, data_dir)
    ran = run_vsbatch(env, "run", str(csv), timeout=90)
    assert ran.returncode == 0, ran.stderr
    batch = _batch_id(ran.stderr)
    week = 7 * 86400
    assert 0 < redis_client.ttl(f"vsbatch:b:{batch}") <= week  # archived by run: 7 days

    canceled = run_vsbatch(env, "cancel", batch, timeout=60)  # "is done: nothing to cancel"
    assert canceled.returncode == 0, canceled.stderr

    for key in (f"vsbatch:b:{batch}", f"vsbatch:b:{batch}:rows", f"vsbatch:b:{batch}:counts"):
        assert redis_client.ttl(key) <= week, key


def test_query_session_redacts_emails_and_phones_with_redact_pii(
    redis_client: redis.Redis, redis_url: str, emulator: Any, data_dir: Path, tmp_path: Path
) -> None:
    """README: VSBATCH_REDACT_PII hides provided_details emails and phones in ... exports;
    'reports redact when they read, with --redact or VSBATCH_REDACT_PII'."""
    (session,) = emulator.seed(count=1)
    csv = tmp_path / "in.csv"
    csv.write_text(
        "id,provided_details.email,provided_details.phone\n"
        f"{session},alice.secret@example.com,+15555550123\n",
        encoding="utf-8",
    )
    env = _env(redis_url, emulator, data_dir)
    assert run_vsbatch(env, "run", str(csv), timeout=90).returncode == 0
    shown = run_vsbatch(
        {**env, "VSBATCH_REDACT_PII": "true"}, "query", "session", session, "-f", "json"
    )
    assert shown.returncode == 0, shown.stderr
    assert "alice.secret@example.com" not in shown.stdout
    assert "+15555550123" not in shown.stdout


def test_archive_follow_stops_on_sigterm_as_on_ctrl_c(data_dir: Path, tmp_path: Path) -> None:
    """SIGTERM (docker stop, systemd) ends ``archive --follow`` as Ctrl-C does: its one line,
    exit 130, and the embedded Redis it started stopped."""
    env = outside_env(VSBATCH_DATA_DIR=str(data_dir))  # no VSBATCH_REDIS_URL: embedded
    errors = tmp_path / "stderr.txt"
    with errors.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vsbatch", "archive", "--follow", "--interval", "1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    try:
        _until(lambda: "following:" in errors.read_text() or proc.poll() is not None)
        assert proc.poll() is None, errors.read_text()
        server = json.loads((data_dir / "redis" / "server.json").read_text())

        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    following, *rest = errors.read_text().splitlines()
    assert following.startswith("following:"), following
    assert (130, ["stopped: every batch archived so far is in the results store"]) == (
        proc.returncode,
        rest,
    )
    assert not (data_dir / "redis" / "server.json").exists()
    assert not _alive(server["pid"])


def _until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
