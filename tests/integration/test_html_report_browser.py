"""The HTML report as a reader sees it: rendered by headless Chromium (Playwright), offline.

The page is written by ``vsbatch report --format html`` from a ledger on the real test Redis,
then loaded from disk with the network cut off: nothing may be fetched, no placeholder text
may show, every chart has labelled axes, and skipped rows are listed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis
from typer.testing import CliRunner

from tests.conftest import TEST_API_KEY
from vsbatch.cli.main import cli
from vsbatch.model.row import NewRow, Outcome
from vsbatch.store.ledger import Ledger

BOOLEAN_ERROR = "Expected true or false (or yes/no, 1/0), got 'maybe'."


def _batch(redis_client: redis.Redis) -> str:
    """A finished batch: 2 applied, 2 skipped, 2 failed for good with messages that differ
    only by session id, 1 rejected with digits in its reason."""
    ledger = Ledger(redis_client)
    batch = ledger.create_batch(name="page", kind="csv", source="in.csv")
    params = {"metadata": {"tier": "gold"}}
    ids = ["vs_1Ok000000", "vs_2Ok000000", "vs_Skip0001A", "vs_Skip0002B"]
    ids += ["vs_GoneAAAAAAAA", "vs_GoneBBBBBBBB"]
    rows = [NewRow(n + 2, sid, None, params, idempotency_key=f"k{n}") for n, sid in enumerate(ids)]
    rows.append(NewRow(8, "vs_Bad000001", None, None, rejection=("options", BOOLEAN_ERROR)))
    ledger.add_rows(batch.id, rows)
    ledger.open_batch(batch.id)
    for row in (2, 3):
        ledger.transition(batch.id, row, Outcome.SUCCEEDED)
    for row in (4, 5):
        ledger.transition(
            batch.id, row, Outcome.SKIPPED, reason="not_requires_input", session_status="verified"
        )
    for row, sid in ((6, ids[4]), (7, ids[5])):
        message = f"Session {sid} was deleted"
        ledger.transition(batch.id, row, Outcome.FAILED, retryable=False, error_message=message)
    return batch.id


@pytest.fixture
def page(browser: Any, redis_client: redis.Redis, redis_url: str, tmp_path: Path) -> Any:
    """The report page of :func:`_batch`, written by the CLI, open in an offline browser."""
    path = tmp_path / "report.html"
    env = {
        "VSBATCH_REDIS_URL": redis_url,
        "VSBATCH_STRIPE_API_KEY": TEST_API_KEY,
        "VSBATCH_DATA_DIR": str(tmp_path / "data"),
    }
    batch_id = _batch(redis_client)
    written = CliRunner().invoke(cli, ["report", batch_id, "-f", "html", "-o", str(path)], env=env)
    # `report B` exits by the run table: the batch has failed rows.
    assert 1 == written.exit_code, written.output
    context = browser.new_context(offline=True)
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    tab = context.new_page()
    tab.goto(path.as_uri())
    tab.batch_id = batch_id
    tab.requested = requested
    yield tab
    context.close()


class TestHtmlReportInChromium:
    def test_page_fetches_nothing_but_itself(self, page: Any) -> None:
        """Loaded offline, the page requests no URL but its own file, and still renders."""
        assert [page.url] == page.requested
        assert "7" == page.inner_text("#count-total .n")

    def test_no_placeholder_or_python_text(self, page: Any) -> None:
        """The rendered text holds no folded placeholders ("N/N", "…") or Python reprs."""
        text = page.inner_text("body")

        for placeholder in ("N/N", "…", "None", "{'"):
            assert placeholder not in text, placeholder
        assert BOOLEAN_ERROR in text

    def test_every_chart_has_labelled_axes(self, page: Any) -> None:
        """Each SVG chart has an x and a y axis title and at least two distinct ticks on each
        axis."""
        charts = page.query_selector_all("svg")

        assert 2 == len(charts)
        for chart in charts:
            label = chart.get_attribute("aria-label")
            for axis in ("x", "y"):
                assert chart.query_selector(f".axis-title.{axis}").text_content().strip(), label
                ticks = [t.text_content() for t in chart.query_selector_all(f".tick.{axis}")]
                assert 2 <= len(ticks), (label, axis)
                assert len(set(ticks)) == len(ticks), (label, ticks)

    def test_messages_differing_only_by_id_form_one_group(self, page: Any) -> None:
        """Two failures whose messages differ only by the session id are one group of 2."""
        groups = [g.inner_text() for g in page.query_selector_all(".group h3")]

        assert 2 == len(groups), groups
        assert "(2 row(s))" in groups[0]

    def test_skipped_rows_are_listed(self, page: Any) -> None:
        """Each skipped row is listed with its session and status."""
        listed = page.inner_text("#skipped-rows")

        assert "vs_Skip0001A" in listed and "vs_Skip0002B" in listed
        assert "verified" in listed

    def test_no_retry_suggested_when_nothing_is_retryable(self, page: Any) -> None:
        """With no retryable failure the page suggests the failures CSV, never ``retry``."""
        commands = page.inner_text("#next")

        assert "vsbatch retry" not in commands
        assert f"vsbatch failures {page.batch_id} > fix.csv" in commands
