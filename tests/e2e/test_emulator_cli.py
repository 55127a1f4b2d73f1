"""``vsbatch emulator`` as an ops engineer runs it: real processes, printed ids, exit codes.

Each test starts the real command on port 0 and reads its URL from its first stderr line, so
tests never race for a port.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_API_KEY
from tests.helpers import closed_port, outside_env
from tests.helpers import run_vsbatch as vsbatch

SESSION_ID = re.compile(r"vs_[0-9A-Za-z]{24}")
BANNER = re.compile(r"emulator on (http://127\.0\.0\.1:\d+)")


class Running:
    """One ``vsbatch emulator`` process: its URL and what it wrote to stdout so far."""

    def __init__(self, proc: subprocess.Popen[bytes], url: str, stdout: Path, stderr: Path) -> None:
        self.proc = proc
        self.url = url
        self._stdout = stdout
        self._stderr = stderr

    @property
    def stdout(self) -> str:
        return self._stdout.read_text(encoding="utf-8")

    @property
    def stderr(self) -> str:
        return self._stderr.read_text(encoding="utf-8")

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=10) as answer:
            return json.load(answer)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        data = json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method="POST")
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.load(answer)


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Any]:
    """Start ``python -m vsbatch ARGS`` (an emulator on port 0) and wait for its banner."""
    procs: list[subprocess.Popen[bytes]] = []

    def starter(*args: str, module: str = "vsbatch") -> Running:
        n = len(procs)
        out, err = tmp_path / f"emu{n}.out", tmp_path / f"emu{n}.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-m", module, *args, "--port", "0"],
                env=outside_env(),
                stdout=stdout,
                stderr=stderr,
            )
        procs.append(proc)
        deadline = time.monotonic() + 60
        while (found := BANNER.search(err.read_text(encoding="utf-8"))) is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no banner: {err.read_text(encoding='utf-8')}")
            time.sleep(0.05)
        return Running(proc, found.group(1), out, err)

    try:
        yield starter
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=15)


def wait_for_lines(running: Running, count: int) -> list[str]:
    """The first ``count`` lines of the emulator's stdout, once it has printed them."""
    deadline = time.monotonic() + 10
    while len(lines := running.stdout.splitlines()) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return lines


def post_quietly(url: str) -> None:
    """POST an update with the test key; whatever answer or error comes back is ignored."""
    body = b"metadata[k]=v"
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Authorization", f"Bearer {TEST_API_KEY}")
    with contextlib.suppress(OSError, http.client.HTTPException):
        urllib.request.urlopen(request, timeout=30).close()


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The command's single stderr line (the test fails on a traceback or several lines)."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert 1 == len(lines), result.stderr
    return lines[0]


class TestSeeding:
    def test_seeded_ids_are_printed_one_per_line(self, start: Any) -> None:
        """``--sessions 3`` prints the three seeded ids on stdout, one per line."""
        running = start("emulator", "--sessions", "3")

        lines = wait_for_lines(running, 3)

        assert 3 == len({line for line in lines if SESSION_ID.fullmatch(line)}), lines
        listed = [s["id"] for s in running.get("/_emulator/sessions")["sessions"]]
        assert listed == lines

    def test_seed_file_gets_an_id_column_and_stdout_stays_empty(
        self, start: Any, tmp_path: Path
    ) -> None:
        """``--seed-file`` writes a CSV with an ``id`` header and one seeded id per row."""
        path = tmp_path / "ids.csv"

        running = start("emulator", "--sessions", "2", "--seed-file", str(path))

        listed = [s["id"] for s in running.get("/_emulator/sessions")["sessions"]]
        assert "id\n" + "".join(f"{i}\n" for i in listed) == path.read_text(encoding="utf-8")
        assert ("", 2) == (running.stdout, len(listed))

    def test_seed_file_never_overwrites_a_batch_file(self, tmp_path: Path) -> None:
        """An existing file with columns other than ``id`` is left alone: one line, exit 2."""
        path = tmp_path / "updates.csv"
        path.write_text("id,metadata.plan\nvs_1NqXyZ2eZvKYlo2C0a1b2c3d,gold\n", encoding="utf-8")
        before = path.read_bytes()

        result = vsbatch(
            outside_env(), "emulator", "--port", "0", "--sessions", "2", "--seed-file", str(path)
        )

        assert 2 == result.returncode
        assert "--seed-from" in one_line_error(result)
        assert before == path.read_bytes()

    def test_seed_from_seeds_exactly_the_ids_of_a_batch_file(
        self, start: Any, tmp_path: Path
    ) -> None:
        """``--seed-from FILE`` seeds each distinct id of the file's ``id`` column, in order."""
        ids = ["vs_1NqXyZ2eZvKYlo2C0a1b2c3d", "vs_1NqXyZ2eZvKYlo2C4e5f6g7h"]
        path = tmp_path / "updates.csv"
        rows = f"{ids[0]},gold\n{ids[1]},\n{ids[0]},silver\n"
        path.write_text("\ufeffid,metadata.plan\r\n" + rows, encoding="utf-8")

        running = start("emulator", "--seed-from", str(path))

        sessions = running.get("/_emulator/sessions")["sessions"]
        assert [(i, "requires_input") for i in ids] == [(s["id"], s["status"]) for s in sessions]
        assert ids == wait_for_lines(running, 2)

    def test_a_reset_seeds_the_same_sessions_again(self, start: Any, tmp_path: Path) -> None:
        """After ``POST /_emulator/reset`` the ``--sessions`` and ``--seed-from`` ids are back."""
        path = tmp_path / "updates.csv"
        path.write_text("id\nvs_1NqXyZ2eZvKYlo2C0a1b2c3d\n", encoding="utf-8")
        running = start("emulator", "--sessions", "2", "--seed-from", str(path))
        before = running.get("/_emulator/sessions")["sessions"]
        running.post("/_emulator/sessions", {"count": 1})

        running.post("/_emulator/reset", {})

        assert before == running.get("/_emulator/sessions")["sessions"]

    def test_seed_from_a_file_without_an_id_column_is_refused(self, tmp_path: Path) -> None:
        """A ``--seed-from`` file with no ``id`` column ends in one line naming it, exit 2."""
        path = tmp_path / "updates.csv"
        path.write_text("session,metadata.plan\nvs_1,gold\n", encoding="utf-8")

        result = vsbatch(outside_env(), "emulator", "--port", "0", "--seed-from", str(path))

        assert 2 == result.returncode
        assert f"{path}: no 'id' column" in one_line_error(result)


class TestFaultOptions:
    def test_fail_rate_and_latency_are_in_force(self, start: Any) -> None:
        """``--fail-rate`` and ``--latency-ms`` set the matching fields of the served config."""
        running = start("emulator", "--fail-rate", "503=0.05,500-after-apply=0.01,hang=0.01")
        fast = start("emulator", "--latency-ms", "7")

        config = running.get("/_emulator/config")

        expected = {"fail_503_rate": 0.05, "fail_500_after_rate": 0.01, "hang_rate": 0.01}
        assert expected == {k: config[k] for k in expected}
        assert 7.0 == fast.get("/_emulator/config")["latency_ms"]

    def test_python_m_vsbatch_emulator_takes_fail_rate_too(self, start: Any) -> None:
        """``python -m vsbatch.emulator --fail-rate`` parses the same spec."""
        running = start("--fail-rate", "drop=0.02", module="vsbatch.emulator")

        assert 0.02 == running.get("/_emulator/config")["drop_rate"]

    def test_python_m_vsbatch_emulator_takes_a_comma_list_of_api_versions(self, start: Any) -> None:
        """``--api-versions a,b`` sets the extra Stripe-Version values the emulator accepts."""
        running = start(
            "--api-versions", "2025-03-31.basil, 2025-04-30.basil", module="vsbatch.emulator"
        )

        expected = ["2025-03-31.basil", "2025-04-30.basil"]
        assert expected == running.get("/_emulator/config")["api_versions"]

    def test_a_bad_fail_rate_is_one_line_and_exit_2(self) -> None:
        """An unknown kind ends in one line naming it and the valid kinds, exit 2."""
        result = vsbatch(outside_env(), "emulator", "--port", "0", "--fail-rate", "503=0.1,tea=1")

        assert 2 == result.returncode
        line = one_line_error(result)
        assert "--fail-rate: unknown kind 'tea' in 'tea=1'; valid kinds: 503," in line

    def test_a_port_in_use_is_one_line_and_exit_2(self, start: Any) -> None:
        """A second emulator on a busy port ends in one line naming the address, exit 2."""
        port = start("emulator").url.rsplit(":", 1)[1]

        result = vsbatch(outside_env(), "emulator", "--port", port)

        assert 2 == result.returncode
        assert f"cannot listen on 127.0.0.1:{port}" in one_line_error(result)


class TestShutdown:
    def test_ctrl_c_during_a_hung_request_prints_no_traceback(self, start: Any) -> None:
        """SIGINT while a ``hang`` fault holds a request stops the emulator without a traceback."""
        args = ("--sessions", "1", "--fail-rate", "hang=1", "--hang-seconds", "60")
        running = start("emulator", *args)
        [session_id] = wait_for_lines(running, 1)
        path = f"/v1/identity/verification_sessions/{session_id}"
        update = threading.Thread(target=post_quietly, args=(running.url + path,), daemon=True)
        update.start()
        deadline = time.monotonic() + 10
        while running.get("/_emulator/stats")["faults"].get("hang") != 1:
            assert time.monotonic() < deadline, "the update never reached the emulator"
            time.sleep(0.05)

        running.proc.send_signal(signal.SIGINT)
        running.proc.wait(timeout=15)
        update.join(timeout=15)

        assert "Traceback" not in running.stderr, running.stderr
        assert 0 == running.proc.returncode


class TestSessionsListing:
    def test_sessions_lists_id_status_and_metadata(self, start: Any) -> None:
        """``emulator sessions`` prints one line per session: id, account, status, metadata."""
        running = start("emulator")
        [plain] = running.post("/_emulator/sessions", {"count": 1})["ids"]
        body = {"count": 1, "status": "verified", "metadata": {"plan": "gold", "ref": "A1"}}
        [done] = running.post("/_emulator/sessions", body)["ids"]

        result = vsbatch(outside_env(), "emulator", "sessions", "--url", running.url)

        assert 0 == result.returncode, result.stderr
        rows = [line.split() for line in result.stdout.splitlines()]
        expected = [
            ["id", "account", "status", "metadata"],
            [plain, "-", "requires_input", "-"],
            [done, "-", "verified", "plan=gold,ref=A1"],
        ]
        assert expected == rows
        assert "2 sessions" in result.stderr

    def test_sessions_of_an_unreachable_emulator_is_one_line_and_exit_2(self) -> None:
        """Nothing listening at ``--url``: one line naming the URL and how to start one, exit 2."""
        url = f"http://127.0.0.1:{closed_port()}"

        result = vsbatch(outside_env(), "emulator", "sessions", "--url", url)

        assert 2 == result.returncode
        line = one_line_error(result)
        assert f"no emulator answers at {url}" in line and "vsbatch emulator" in line


class TestRehearsal:
    def test_the_documented_rehearsal_runs_a_batch_against_the_emulator(
        self, start: Any, tmp_path: Path
    ) -> None:
        """docs/emulator.md's example: seed file, add a column, ``vsbatch run``, see it applied."""
        # Given an emulator that wrote its seeded ids to ids.csv
        ids_file = tmp_path / "ids.csv"
        running = start("emulator", "--sessions", "3", "--seed-file", str(ids_file))
        lines = ids_file.read_text(encoding="utf-8").splitlines()
        batch = tmp_path / "batch.csv"
        batch.write_text(lines[0] + ",metadata.plan\n" + "".join(f"{i},gold\n" for i in lines[1:]))
        env = {
            **outside_env(),
            "VSBATCH_STRIPE_API_BASE": running.url,
            "VSBATCH_STRIPE_API_KEY": TEST_API_KEY,
            "VSBATCH_DATA_DIR": str(tmp_path / "data"),
        }

        # When the batch is run against it
        result = vsbatch(env, "run", str(batch))

        # Then every row succeeded and the emulator lists the new metadata
        assert 0 == result.returncode, result.stderr
        listing = vsbatch(outside_env(), "emulator", "sessions", "--url", running.url)
        assert 3 == listing.stdout.count("plan=gold"), listing.stdout
