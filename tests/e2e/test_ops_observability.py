"""Watching a real batch: a worker's Prometheus endpoint, and the HTML report in Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Workers, wait_done
from tests.helpers import CHROMIUM_FLAGS, closed_port
from vsbatch.bootstrap import Deps
from vsbatch.intake.stage import submit_csv
from vsbatch.model.row import Outcome
from vsbatch.worker.tasks import enqueue_chunk


def _mixed_batch(emulator: Any, producer: Deps, tmp_path: Path) -> str:
    """Four successes, one failure (unknown session), one rejection and one skip."""
    ready = emulator.seed(count=4)
    verified = emulator.seed(count=1, status="verified")
    csv = tmp_path / "in.csv"
    csv.write_text(
        "id,metadata.note\n"
        + "".join(f"{i},<b>hi</b>\n" for i in ready)
        + f"{verified[0]},x\nvs_{'M' * 24},x\nnot-an-id,x\n",
        encoding="utf-8",
    )
    return submit_csv(producer, csv, enqueue_chunk).id


def _metric(text: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include ``labels``."""
    total = 0.0
    for match in re.finditer(rf"^{name}\{{([^}}]*)\}} (\S+)$", text, re.MULTILINE):
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(2))
    return total


class TestMetricsEndpoint:
    def test_worker_serves_row_and_request_counters(
        self,
        emulator: Any,
        workers: Workers,
        producer: Deps,
        env: dict[str, str],
        tmp_path: Path,
    ) -> None:
        """After a small batch the worker's /metrics counts its rows, attempts and latency."""
        # Given a worker started with --metrics-port
        port = closed_port()
        with (tmp_path / "metrics-worker.log").open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "vsbatch", "worker", "--metrics-port", str(port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        workers.procs.append(proc)

        # When a batch is worked and the endpoint scraped
        wait_done(producer, _mixed_batch(emulator, producer, tmp_path))
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text

        # Then the counters match the batch
        assert 4 == _metric(text, "vsbatch_rows_total", outcome="succeeded", account="platform")
        assert 1 == _metric(text, "vsbatch_rows_total", outcome="failed", reason="resource_missing")
        assert 1 == _metric(
            text, "vsbatch_rows_total", outcome="skipped", reason="not_requires_input"
        )
        assert 4 == _metric(text, "vsbatch_attempts_total", result="ok")
        assert 2 == _metric(text, "vsbatch_attempts_total", result="client_error")
        assert 4 == _metric(text, "vsbatch_stripe_request_seconds_count", status="200")
        assert 6 <= _metric(text, "vsbatch_limiter_wait_seconds_count")
        assert 0 == _metric(text, "vsbatch_rows_in_flight")


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _dump_dom(browser: str, page: Path, profile: Path) -> str:
    result = subprocess.run(
        [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert 0 == result.returncode, result.stderr[-2000:]
    return result.stdout


class TestHtmlReport:
    def test_report_page_shows_totals_in_headless_chromium(
        self,
        emulator: Any,
        workers: Workers,
        producer: Deps,
        env: dict[str, str],
        tmp_path: Path,
    ) -> None:
        """The page ``report --format html`` writes shows the batch's totals in a browser."""
        browser = _chromium()
        if browser is None:
            if os.environ.get("CI"):
                pytest.fail("chromium is missing on CI (.ci/run installs it)")
            pytest.skip("chromium is not installed")
        # Given a finished batch with every kind of outcome
        workers.start(concurrency=4)
        batch_id = _mixed_batch(emulator, producer, tmp_path)
        batch = wait_done(producer, batch_id)
        assert 4 == batch.counts[Outcome.SUCCEEDED]

        # When its HTML report is written by the CLI and loaded in headless Chromium
        page = tmp_path / "report.html"
        written = subprocess.run(
            [sys.executable, "-m", "vsbatch", "report", batch_id, "-f", "html", "-o", str(page)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        # `report B` exits by the run table: this batch has failed rows.
        assert 1 == written.returncode, written.stderr
        started = time.monotonic()
        dom = _dump_dom(browser, page, tmp_path / "profile")

        # Then the rendered DOM holds the totals, the groups and the commands, escaped
        tiles = dict(re.findall(r'id="count-(\w+)"[^>]*><span class="n">(\d+)</span>', dom))
        assert {"succeeded": "4", "skipped": "1", "failed": "1", "rejected": "1", "total": "7"} == (
            tiles
        )
        assert "vsbatch retry" not in dom  # its one failure (a missing session) is not retryable
        assert f"vsbatch failures {batch_id} &gt; fix.csv" in dom
        assert "resource_missing" in dom
        assert "<b>hi</b>" not in page.read_text(encoding="utf-8")
        assert "<script" not in page.read_text(encoding="utf-8")
        assert time.monotonic() - started < 90
