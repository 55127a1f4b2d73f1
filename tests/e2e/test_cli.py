"""The ``vsbatch`` command line as a user runs it: real processes, exit codes, outputs."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_API_KEY
from tests.helpers import metadata_csv, outside_env
from tests.helpers import run_vsbatch as vsbatch


def _env(emulator: Any, data_dir: Path, **extra: str) -> dict[str, str]:
    return {
        **outside_env(),
        "VSBATCH_STRIPE_API_BASE": emulator.url,
        "VSBATCH_STRIPE_API_KEY": TEST_API_KEY,
        "VSBATCH_DATA_DIR": str(data_dir),
        "VSBATCH_RATE_LIMIT": "200",
        "VSBATCH_CONCURRENCY": "4",
        "VSBATCH_HTTP_TIMEOUT": "2",
        **extra,
    }


def tier_csv(tmp_path: Path, *session_ids: str) -> Path:
    """``in.csv`` setting metadata.tier to gold on each session."""
    return metadata_csv(tmp_path / "in.csv", session_ids, "metadata.tier", "gold")


@pytest.fixture
def sessions(emulator: Any) -> dict[str, str]:
    """Two updatable sessions and a verified one."""
    ready = emulator.seed(count=2)
    done = emulator.seed(count=1, status="verified")
    return {"a": ready[0], "b": ready[1], "verified": done[0]}


class TestRun:
    def test_run_applies_and_reports_json(
        self, emulator: Any, data_dir: Path, tmp_path: Path, sessions: dict[str, str]
    ) -> None:
        """``run`` works a file on the embedded Redis and prints a JSON report; exit 0."""
        path = tier_csv(tmp_path, sessions["a"], sessions["verified"])

        result = vsbatch(_env(emulator, data_dir), "run", str(path), "--format", "json")

        assert 0 == result.returncode, result.stderr
        report = json.loads(result.stdout)
        assert {"succeeded": 1, "skipped": 1} == {k: v for k, v in report["counts"].items() if v}
        rows = {r["row"]: r for r in report["rows"]}
        assert ("succeeded", sessions["a"]) == (rows[2]["outcome"], rows[2]["id"])
        assert ("skipped", "not_requires_input") == (rows[3]["outcome"], rows[3]["reason"])

    def test_failures_exit_1_and_rejections_exit_2(
        self, emulator: Any, data_dir: Path, tmp_path: Path, sessions: dict[str, str]
    ) -> None:
        """A failed row makes ``run`` exit 1; a rejected row alone makes it exit 2."""
        failing = tmp_path / "failing.csv"
        failing.write_text(f"id,metadata.k\n{'vs_' + 'X' * 24},v\n", encoding="utf-8")
        rejected = tmp_path / "rejected.csv"
        rejected.write_text(f"id,type\n{sessions['b']},selfie\n", encoding="utf-8")
        env = _env(emulator, data_dir)

        assert 1 == vsbatch(env, "run", str(failing)).returncode
        assert 2 == vsbatch(env, "run", str(rejected)).returncode

    def test_refused_file_is_one_line_exit_2_and_enqueues_nothing(
        self, emulator: Any, data_dir: Path, tmp_path: Path, sessions: dict[str, str]
    ) -> None:
        """An unknown column refuses the file with one line naming it; no batch is left."""
        path = tmp_path / "bad.csv"
        path.write_text(f"id,metdata.k\n{sessions['a']},v\n", encoding="utf-8")
        env = _env(emulator, data_dir)

        result = vsbatch(env, "run", str(path))
        listing = vsbatch(env, "status")

        assert 2 == result.returncode
        assert "metdata.k" in result.stderr and "Traceback" not in result.stderr
        assert "" == listing.stdout.strip()
        assert {} == emulator.stats()["applied"]

    def test_live_key_needs_live_flag(self, emulator: Any, data_dir: Path, tmp_path: Path) -> None:
        """A live-mode key is refused without --live, with exit 2 and one line."""
        path = tmp_path / "in.csv"
        path.write_text("id,metadata.k\nvs_123,v\n", encoding="utf-8")
        env = _env(emulator, data_dir, VSBATCH_STRIPE_API_KEY="sk_live_" + "z" * 24)

        result = vsbatch(env, "run", str(path))

        assert 2 == result.returncode
        assert 1 == len(result.stderr.strip().splitlines())
        assert "--live" in result.stderr
        assert "zzzz" not in result.stderr


class TestResume:
    def test_unfinished_batch_of_a_file_is_resumed_not_resubmitted(
        self, emulator: Any, data_dir: Path, tmp_path: Path, sessions: dict[str, str]
    ) -> None:
        """A batch left open (no worker ran it): ``submit`` of the same file refuses, and
        ``run`` of it finishes that batch, under its keys, applying each session once."""
        path = tier_csv(tmp_path, sessions["a"], sessions["b"])
        env = _env(emulator, data_dir)
        first = vsbatch(env, "submit", str(path))
        assert 0 == first.returncode, first.stderr
        batch_id = first.stdout.strip()

        again = vsbatch(env, "submit", str(path))
        resumed = vsbatch(env, "run", str(path), "--format", "json")

        assert (2, 1) == (again.returncode, len(again.stderr.strip().splitlines()))
        assert f"vsbatch resume {batch_id}" in again.stderr
        assert 0 == resumed.returncode, resumed.stderr
        assert f"resuming batch {batch_id}" in resumed.stderr
        assert batch_id == json.loads(resumed.stdout)["id"]
        assert {sessions["a"]: 1, sessions["b"]: 1} == emulator.stats()["applied"]

    def test_resume_refuses_a_finished_batch(
        self, emulator: Any, data_dir: Path, tmp_path: Path, sessions: dict[str, str]
    ) -> None:
        """``resume`` of a done batch is a one-line error, exit 2, and sends nothing more."""
        path = tier_csv(tmp_path, sessions["a"])
        env = _env(emulator, data_dir)
        done = vsbatch(env, "run", str(path), "--format", "json")
        batch_id = json.loads(done.stdout)["id"]

        result = vsbatch(env, "resume", batch_id)

        assert (2, f"batch {batch_id} is done: nothing to resume") == (
            result.returncode,
            result.stderr.strip().removeprefix("error: "),
        )
        assert {sessions["a"]: 1} == emulator.stats()["applied"]


class TestReconcile:
    def test_submit_prints_id_then_report_failures_verify(
        self, emulator: Any, data_dir: Path, tmp_path: Path, sessions: dict[str, str]
    ) -> None:
        """``submit`` prints the batch id alone; a worker applies it; the readers agree."""
        # Given a file submitted for workers, and a worker on the same data directory
        path = tmp_path / "in.csv"
        missing = "vs_" + "Q" * 24
        path.write_text(
            f"id,metadata.tier\n{sessions['a']},gold\n{missing},gold\n", encoding="utf-8"
        )
        env = _env(emulator, data_dir)
        submitted = vsbatch(env, "submit", str(path))
        assert 0 == submitted.returncode, submitted.stderr
        batch_id = submitted.stdout.strip()
        assert batch_id.startswith("b_") and "\n" not in batch_id

        # When a `run` of an empty-update-free file drains the queue (in-process workers)
        drain = tmp_path / "drain.csv"
        drain.write_text(f"id,metadata.x\n{sessions['b']},1\n", encoding="utf-8")
        vsbatch(env, "run", str(drain))

        # Then the first batch is done too, and every reader tells the same story
        report = json.loads(vsbatch(env, "report", batch_id, "--format", "json").stdout)
        assert {"succeeded": 1, "failed": 1} == {k: v for k, v in report["counts"].items() if v}
        rows = list(csv.DictReader(io.StringIO(vsbatch(env, "failures", batch_id).stdout)))
        assert [missing] == [r["id"] for r in rows]
        verified = vsbatch(env, "verify", batch_id)
        assert 0 == verified.returncode, verified.stdout + verified.stderr
        assert "1 succeeded row(s): 0 drifted" in verified.stdout

    def test_plan_reads_and_writes_nothing(
        self, emulator: Any, data_dir: Path, tmp_path: Path, sessions: dict[str, str]
    ) -> None:
        """``plan`` classifies each row and applies nothing."""
        emulator.seed(count=1, ids=["vs_" + "P" * 24], metadata={"tier": "gold"})
        path = tmp_path / "in.csv"
        path.write_text(
            "id,metadata.tier\n"
            f"{sessions['a']},gold\n{sessions['verified']},gold\n{'vs_' + 'P' * 24},gold\n",
            encoding="utf-8",
        )

        result = vsbatch(_env(emulator, data_dir), "plan", str(path))

        assert 0 == result.returncode, result.stderr
        assert "already so: 1, cannot update: 1, would change: 1" in result.stdout
        assert {} == emulator.stats()["applied"]
        assert not (data_dir / "redis").exists()
