"""The healthcheck's file test (``python -m vsbatch.ops.health FILE MAX_AGE``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vsbatch.ops.health import is_fresh, main, touch


class TestHealthFile:
    def test_fresh_within_max_age_stale_after(self, tmp_path: Path) -> None:
        """A file touched at t is fresh until t + max_age (an injected 'now')."""
        path = tmp_path / "alive"
        touch(path)
        os.utime(path, (1000.0, 1000.0))

        assert (True, True, False) == (
            is_fresh(path, 30, now=1000.0),
            is_fresh(path, 30, now=1030.0),
            is_fresh(path, 30, now=1030.5),
        )

    def test_missing_file_is_unhealthy_in_one_line(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """No file yet (the process never beat): exit 1 and one line naming it."""
        code = main([str(tmp_path / "never"), "30"])

        assert (1, 1) == (code, len(capsys.readouterr().err.strip().splitlines()))

    def test_touched_now_is_healthy(self, tmp_path: Path) -> None:
        """Exit 0 right after a touch."""
        touch(tmp_path / "alive")

        assert 0 == main([str(tmp_path / "alive"), "30"])
