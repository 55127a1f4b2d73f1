"""``vsbatch web`` end to end as a server: start-up with no settings, SIGTERM and refused
arguments, a batch that has left Redis served from the results store, and Redis going away
(503 at once).
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.e2e.web_process import _lines, _until
from tests.helpers import closed_port, outside_env, run_vsbatch
from tests.redis_servers import Server, servers, valkey_binary


class TestStartup:
    def test_embedded_defaults_serve_loopback_and_sigterm_cleans_up(self, tmp_path: Path) -> None:
        """With no setting at all (a fresh clone) it serves on 127.0.0.1 from the embedded
        Redis; SIGTERM stops it with exit 0 and the embedded Redis stopped."""
        # Given ``vsbatch web`` with only a data directory
        data = tmp_path / "data"
        proc = subprocess.Popen(
            [sys.executable, "-m", "vsbatch", "web", "--port", "0"],
            env=outside_env(VSBATCH_DATA_DIR=str(data)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        url = _lines(proc, 2)[0].split(": ", 1)[1]

        # When the dashboard is read, then the server gets SIGTERM
        with urllib.request.urlopen(url, timeout=10) as answer:
            status, body = answer.status, answer.read().decode()
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=20)

        # Then it answered on loopback, and left neither a traceback nor a Redis running
        assert (True, 200, "vsbatch dashboard" in body, 0, False, False) == (
            url.startswith("http://127.0.0.1:"),
            status,
            True,
            proc.returncode,
            "Traceback" in stderr,
            (data / "redis" / "server.json").exists(),
        ), stderr

    @pytest.mark.parametrize(
        "args",
        [
            ("--port", "70000"),
            ("--port", "-1"),
            ("--refresh", "inf"),
            ("--refresh", "nan"),
            ("--refresh", "1e9"),
            ("--refresh", "0"),
        ],
    )
    def test_web_with_a_port_out_of_range_is_one_line_and_exit_2(
        self, tmp_path: Path, args: tuple[str, str]
    ) -> None:
        """README: no user error ends in a traceback; exit 2 for usage errors (the port is
        0..65535, the refresh finite and sensible)."""
        result = run_vsbatch(outside_env(VSBATCH_DATA_DIR=str(tmp_path)), "web", *args)
        assert (2, 1, False, True) == (
            result.returncode,
            len(result.stderr.strip().splitlines()),
            "Traceback" in result.stderr,
            args[0] in result.stderr,
        ), result.stderr

    def test_busy_port_is_one_line_and_exit_2(self, tmp_path: Path) -> None:
        """A port already in use ends ``vsbatch web`` with one line naming it, exit 2."""
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen(1)
            port = busy.getsockname()[1]
            result = run_vsbatch(
                outside_env(VSBATCH_DATA_DIR=str(tmp_path)), "web", "--port", str(port)
            )

        assert (2, 1, "", True) == (
            result.returncode,
            len(result.stderr.strip().splitlines()),
            result.stdout,
            f"127.0.0.1:{port}" in result.stderr,
        ), result.stderr


MISSING = "vs_doesnotexist0000000000077"


def _start_web(env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "vsbatch", "web", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = re.search(r"http://\S+/", _lines(proc, 1)[0])
    assert url
    return proc, url.group(0)


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


class TestArchivedBatch:
    def test_the_dashboard_serves_a_batch_that_left_redis_from_the_results_store(
        self, redis_client: redis.Redis, env: dict[str, str], emulator: Any, tmp_path: Path
    ) -> None:
        """docs/web.md: /batches/<id>/failures.csv is 'the failed and rejected rows, as
        vsbatch failures writes them'; `vsbatch failures` of a batch that has left Redis reads
        it from SQL (README), and the session page links to the batch page."""
        (session,) = emulator.seed(count=1)
        csv = tmp_path / "in.csv"
        csv.write_text(f"id,metadata.k\n{session},v\n{MISSING},v\n", encoding="utf-8")
        env = {**env, "VSBATCH_ARCHIVED_RETENTION_DAYS": "0.00003"}
        ran = run_vsbatch(env, "run", str(csv), timeout=90)
        assert ran.returncode == 1, ran.stderr
        found = re.search(r"\bb_[a-z0-9]{10,}\b", ran.stderr)
        assert found, ran.stderr
        batch = found.group(0)
        _until(lambda: not redis_client.exists(f"vsbatch:b:{batch}"), 30, "the batch expires")
        cli = run_vsbatch(env, "failures", batch)
        assert cli.returncode == 0 and MISSING in cli.stdout  # the CLI reads it from SQL

        web, base = _start_web(env)
        try:
            session_status, session_page = _get(f"{base}sessions/{MISSING}")
            assert session_status == 200 and f"/batches/{batch}" in session_page
            page_status, page = _get(f"{base}batches/{batch}")
            filtered_status, filtered = _get(f"{base}batches/{batch}?outcome=succeeded")
            csv_status, body = _get(f"{base}batches/{batch}/failures.csv")
            _, index = _get(base)
        finally:
            web.terminate()
            web.communicate(timeout=30)  # closes its pipes
        assert page_status == 200
        assert csv_status == 200
        assert body.replace("\r\n", "\n") == cli.stdout.replace("\r\n", "\n")
        # The page reads its rows (filters included) from SQL, says so, and offers no action
        assert (MISSING in page, "results store" in page, "Retry failed rows" in page) == (
            True,
            True,
            False,
        )
        assert (filtered_status, session in filtered, MISSING in filtered) == (200, True, False)
        # The index lists it as archived, with a link to its page
        assert f'href="/batches/{batch}"' in index and "archived" in index


class TestRedisDown:
    def test_pages_answer_503_at_once_when_redis_stops(
        self, data_dir: Path, tmp_path: Path
    ) -> None:
        """With Redis gone a page is a 503 within two seconds, not after the long reconnect
        budget workers have (about half a minute)."""
        with servers() as started:
            node = Server(valkey_binary(), tmp_path / "redis", closed_port(), ["save ''"])
            started.append(node.start())
            env = outside_env(
                VSBATCH_REDIS_URL=f"redis://127.0.0.1:{node.port}/0",
                VSBATCH_DATA_DIR=str(data_dir),
            )
            web, base = _start_web(env)
            try:
                assert _get(base)[0] == 200
                node.kill()
                began = time.monotonic()
                status, body = _get(f"{base}batches/b_whatever")
                took = time.monotonic() - began
            finally:
                web.terminate()
                web.communicate(timeout=30)
        assert (status, "is Redis up?" in body, took < 2.5) == (503, True, True), took
