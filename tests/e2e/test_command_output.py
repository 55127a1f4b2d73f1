"""What a new user sees from the CLI: next steps, retries with nothing to retry, piped output.

Real processes: ``python -m vsbatch`` with stdout a pipe, the embedded Redis, the emulator.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.e2e.test_cli import _env, tier_csv, vsbatch


def _batch_ids(env: dict[str, str]) -> list[str]:
    listed = vsbatch(env, "status")
    assert 0 == listed.returncode, listed.stderr
    return [line.split()[0] for line in listed.stdout.splitlines() if line.strip()]


class TestRetryWithNothingRetryable:
    def test_retry_creates_no_child_and_says_why(self, emulator: Any, tmp_path: Path) -> None:
        """Retrying a batch whose only failure is not retryable creates no batch, names the
        failure count and where to see it, and exits 0."""
        # Given a batch whose one failure is a missing session (not retryable)
        env = _env(emulator, tmp_path / "data")
        path = tier_csv(tmp_path, *emulator.seed(count=1), "vs_missing0000000000000001")
        ran = vsbatch(env, "run", str(path))
        assert 1 == ran.returncode, ran.stderr
        [batch_id] = _batch_ids(env)

        # When the operator retries it
        retried = vsbatch(env, "retry", batch_id)

        # Then nothing is created, and the one line says why
        assert 0 == retried.returncode, retried.stderr
        assert "" == retried.stdout
        expected = (
            f"nothing to retry: batch {batch_id} has no retryable failures"
            f" (1 failed non-retryable: see 'vsbatch failures {batch_id}')"
        )
        assert [expected] == retried.stderr.splitlines()
        assert [batch_id] == _batch_ids(env)


class TestNextSteps:
    def test_run_with_a_permanent_failure_suggests_failures_not_retry(
        self, emulator: Any, tmp_path: Path
    ) -> None:
        """After a run whose failure is permanent, the next steps are the failures CSV and the
        HTML report, never ``retry``."""
        env = _env(emulator, tmp_path / "data")
        path = tier_csv(tmp_path, *emulator.seed(count=1), "vs_missing0000000000000002")

        ran = vsbatch(env, "run", "--format", "json", str(path))

        assert 1 == ran.returncode, ran.stderr
        batch_id = json.loads(ran.stdout)["id"]
        steps = ran.stderr[ran.stderr.index("next:") :]
        assert f"vsbatch failures {batch_id} > fix.csv" in steps
        assert f"vsbatch report {batch_id} --format html -o report.html" in steps
        assert "vsbatch retry" not in ran.stderr

    def test_run_with_retryable_failures_suggests_retry_first(
        self, emulator: Any, tmp_path: Path
    ) -> None:
        """After a run that failed during an outage, the first next step is ``retry``."""
        env = _env(emulator, tmp_path / "data", VSBATCH_MAX_ATTEMPTS="1")
        emulator.configure(fail_503_rate=1.0)
        path = tier_csv(tmp_path, *emulator.seed(count=2))

        ran = vsbatch(env, "run", str(path))

        assert 1 == ran.returncode, ran.stderr
        [batch_id] = _batch_ids(env)
        first = ran.stderr.splitlines()[ran.stderr.splitlines().index("next:") + 1]
        assert re.match(rf"\s+vsbatch retry {batch_id}\s+# 2 failure\(s\) may succeed now", first)
        assert "fix.csv" not in ran.stderr

    def test_run_progress_line_counts_skips_rejections_and_rate(
        self, emulator: Any, tmp_path: Path
    ) -> None:
        """The progress line of ``run`` shows skipped and rejected counts and the rate."""
        env = _env(emulator, tmp_path / "data")
        [ready] = emulator.seed(count=1)
        [done] = emulator.seed(count=1, status="verified")
        path = tmp_path / "in.csv"
        path.write_text(
            f"id,metadata.tier,type\n{ready},gold,\n{done},gold,\n{ready},x,passport\n",
            encoding="utf-8",
        )

        ran = vsbatch(env, "run", str(path))

        assert 2 == ran.returncode, ran.stderr
        assert re.search(r"skipped 1, failed 0, rejected 1 · [\d.]+ rows/s", ran.stderr), ran.stderr


class TestPipedOutput:
    def test_long_ids_are_whole_when_stdout_is_a_pipe(self, emulator: Any, tmp_path: Path) -> None:
        """The report table written to a pipe holds every id in full, never cut with '…'."""
        env = _env(emulator, tmp_path / "data")
        long_id = "vs_" + "L" * 70
        path = tier_csv(tmp_path, *emulator.seed(count=1), long_id)

        ran = vsbatch(env, "run", str(path))

        assert 1 == ran.returncode, ran.stderr
        [batch_id] = _batch_ids(env)
        assert long_id in ran.stdout
        assert "…" not in ran.stdout
        assert batch_id in ran.stdout

    def test_a_long_batch_name_is_one_line_in_a_pipe(self, emulator: Any, tmp_path: Path) -> None:
        """A batch's name stays whole on one line when the summary goes to a pipe, from
        ``run`` and from ``status`` (it was folded into the counters' table width)."""
        env = _env(emulator, tmp_path / "data")
        name = "quarterly-migration-of-plan-metadata-for-enterprise-customers-2026-q4-final-v2"
        path = tier_csv(tmp_path, *emulator.seed(count=1))

        ran = vsbatch(env, "run", str(path), "--name", name)
        [batch_id] = _batch_ids(env)
        shown = vsbatch(env, "status", batch_id)

        assert (0, 0) == (ran.returncode, shown.returncode), ran.stderr + shown.stderr
        assert f"{name}: done" in ran.stdout.splitlines()
        assert f"{name}: done" in shown.stdout.splitlines()

    def test_version_prints_the_package_version(self, emulator: Any, tmp_path: Path) -> None:
        """``vsbatch --version`` prints the installed version and exits 0."""
        from importlib.metadata import version

        shown = vsbatch(_env(emulator, tmp_path / "data"), "--version")

        assert (0, f"vsbatch {version('vsbatch')}\n") == (shown.returncode, shown.stdout)


class TestDemo:
    def test_demo_exits_1_like_run_when_a_row_failed(self, emulator: Any, tmp_path: Path) -> None:
        """The demo, whose example fails a row on purpose, exits 1 as ``run`` would, says why,
        and suggests the failures CSV rather than ``retry``."""
        env = _env(emulator, tmp_path / "data")

        ran = vsbatch(env, "demo", "--concurrency", "4", cwd=Path(__file__).parents[2])

        assert 1 == ran.returncode, ran.stderr
        assert "exit code 1, as 'vsbatch run' gives it" in ran.stderr
        assert "> fix.csv" in ran.stderr
        assert "vsbatch retry" not in ran.stderr
