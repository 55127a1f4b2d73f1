"""``vsbatch web`` end to end: a real server process, real Redis, real workers against the
emulator, and the pages in headless Chromium (Playwright).

One batch runs through worker processes while the page shows its counters move (server-sent
events), then its failed rows are retried from the page. A batch no worker runs serves the
refusals (wrong token, another origin, a foreign Host), the keyboard-only walk, hostile text
and Ctrl-C.

``WEB_SCREENSHOT=docs/web-dashboard.png`` makes the first test save the dashboard, mid-run.

Start-up, refused arguments, archived batches and Redis going away are in
``test_web_server.py``.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis

from tests.conftest import TEST_API_KEY
from tests.e2e.conftest import Workers
from tests.e2e.web_process import _lines, _until
from tests.helpers import metadata_csv, run_vsbatch
from vsbatch.model.row import BatchState, Outcome
from vsbatch.store.ledger import Ledger

SCREENSHOT = os.environ.get("WEB_SCREENSHOT")


HOSTILE = "<img src=x onerror=alert(1)>"


@dataclass
class WebServer:
    """A running ``vsbatch web`` process: its URL, its token, its process."""

    url: str
    token: str
    proc: subprocess.Popen[str]

    def stop(self) -> tuple[int, str]:
        """Ctrl-C it; its exit code and standard error."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            _, stderr = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, stderr = self.proc.communicate()
        return self.proc.returncode, stderr


@pytest.fixture
def web(env: dict[str, str]) -> Iterator[WebServer]:
    """``vsbatch web --port 0`` on the test Redis, live counters four times a second."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "vsbatch", "web", "--port", "0", "--refresh", "0.25"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url_line, token_line = _lines(proc, 2)
    server = WebServer(url_line.split(": ", 1)[1], token_line.rsplit(" ", 1)[1], proc)
    yield server
    server.stop()


def _submit(env: dict[str, str], path: Path, *args: str) -> str:
    result = run_vsbatch(env, "submit", str(path), *args)
    assert result.stdout.strip(), result.stderr
    return result.stdout.strip()


def _tab_to(page: Any, matches: str, presses: int = 40) -> None:
    """Press Tab until the focused element matches the JS predicate ``matches`` (on ``el``)."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate(f"(() => {{ const el = document.activeElement; return {matches}; }})()"):
            return
    raise AssertionError(f"Tab never reached {matches}")


def _focus_visible(page: Any) -> bool:
    style = "getComputedStyle(document.activeElement)"
    return bool(page.evaluate(f"{style}.outlineStyle !== 'none' && {style}.outlineWidth !== '0px'"))


def _post(server: WebServer, path: str, body: str, headers: dict[str, str]) -> int:
    """A raw POST to the server over its socket; the status code."""
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        kind = {"content-type": "application/x-www-form-urlencoded"}
        conn.request("POST", path, body=body, headers={**kind, **headers})
        return conn.getresponse().status
    finally:
        conn.close()


class TestLiveBatch:
    def test_counters_move_then_failures_are_retried_from_the_page(
        self,
        env: dict[str, str],
        emulator: Any,
        workers: Workers,
        web: WebServer,
        browser: Any,
        redis_client: redis.Redis,
        tmp_path: Path,
    ) -> None:
        """The page's counters rise while workers run the batch, without a reload; Retry on
        the page re-submits the failed rows, which then succeed."""
        # Given a batch of 40 rows, a slow emulator failing 30 % of updates, one try a row
        emulator.configure(latency_ms=120, fail_503_rate=0.3)
        path = metadata_csv(tmp_path / "in.csv", emulator.seed(count=40), "metadata.k", "v")
        batch_id = _submit(env, path, "--name", "nightly")
        page = browser.new_page()
        page.goto(web.url)
        page.evaluate("window.sameDocument = true")
        row = f'tr[data-batch="{batch_id}"]'
        _until(lambda: page.get_attribute("body", "data-ticks"), 10, "a first live message")

        # When workers run it, the page showing what it reads
        workers.start(concurrency=2, VSBATCH_MAX_ATTEMPTS="1")
        seen: list[int] = []
        rates: list[str] = []
        deadline = time.monotonic() + 60
        while not seen or seen[-1] < 40:
            assert time.monotonic() < deadline, f"the page showed {seen} of 40 rows done"
            shown = int(page.inner_text(f'{row} [data-field="terminal"]'))
            if not seen or shown != seen[-1]:
                seen.append(shown)
                rates.append(page.inner_text(f'{row} [data-field="rate"]'))
            if SCREENSHOT and len(seen) == 6:
                page.screenshot(path=SCREENSHOT, full_page=True)
            assert len(seen) < 200 and page.evaluate("window.sameDocument"), seen
            time.sleep(0.05)

        # Then the counters rose in several steps on the same document, with a rate shown
        assert (True, True, True) == (
            len(seen) >= 4,
            seen == sorted(seen),
            any(float(r) > 0 for r in rates),
        ), (seen, rates)
        failed = Ledger(redis_client).get_batch(batch_id).counts[Outcome.FAILED]
        assert failed > 0

        # When the batch's page is filtered to failed rows, and its failures downloaded
        page.click(f'{row} a[href="/batches/{batch_id}"]')
        page.select_option("#f-outcome", "failed")
        page.click("text=Filter rows")
        page.wait_for_url("**outcome=failed**")
        listed = page.locator("table.rows tbody tr").count()
        csv_text = page.request.get(f"{web.url}batches/{batch_id}/failures.csv").text()

        # Then both hold the failed rows, each once
        assert (failed, failed + 1) == (listed, len(csv_text.strip().splitlines())), csv_text

        # When the faults stop and Retry is pressed on the batch's page with the token
        emulator.configure(fail_503_rate=0.0)
        page.fill("#token-retry", web.token)
        page.click("text=Retry failed rows")
        page.wait_for_url(lambda url: "/batches/b_" in url and batch_id not in url)
        child_id = page.url.rsplit("/", 1)[1]

        # Then the child batch holds the failed rows, and the page shows them all succeed
        _until(
            lambda: page.inner_text('#counters [data-field="count-succeeded"]') == str(failed),
            60,
            "the retried rows succeeded on the page",
        )
        child = Ledger(redis_client).get_batch(child_id)
        assert (batch_id, failed, failed) == (
            child.parent_id,
            child.total,
            child.counts[Outcome.SUCCEEDED],
        )

        # When a retried row's session is opened from the child's rows
        page.click('table.rows a[href^="/sessions/"]')
        page.wait_for_url("**/sessions/*")
        history = page.inner_text("table.rows")

        # Then its history shows the failure in the batch and the success in the child
        assert (True, True, True) == (
            batch_id in history,
            child_id in history,
            "failed" in history and "succeeded" in history,
        ), history
        page.close()


class TestGuardedPage:
    def test_keyboard_only_refusals_hostile_text_and_ctrl_c(
        self,
        env: dict[str, str],
        emulator: Any,
        web: WebServer,
        browser: Any,
        redis_client: redis.Redis,
        tmp_path: Path,
    ) -> None:
        """With the keyboard alone a wrong token is refused and the right one cancels the
        batch; other origins and Hosts are refused; hostile text stays text; no key shows;
        Ctrl-C ends the server without a traceback."""
        # Given an open batch named with markup, with a rejected row whose id is markup
        ids = emulator.seed(count=2)
        path = metadata_csv(tmp_path / "in.csv", [*ids, f"vs_{HOSTILE}"], "metadata.k", "v")
        batch_id = _submit(env, path, "--name", HOSTILE)
        page = browser.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(web.url)

        # When the batch is reached with Tab and Enter
        _tab_to(page, f"el.getAttribute('href') === '/batches/{batch_id}'")
        focus_on_link = _focus_visible(page)
        page.keyboard.press("Enter")
        page.wait_for_url(f"**/batches/{batch_id}")
        unlabelled = page.evaluate(
            "[...document.querySelectorAll('input:not([type=hidden]), select')]"
            ".filter(el => el.labels.length === 0).map(el => el.name)"
        )
        text = page.inner_text("main")
        html = page.content()

        # Then focus showed, every control has a label, and hostile text is plain text
        assert (True, [], [], 0) == (
            focus_on_link,
            unlabelled,
            dialogs,
            page.locator("img").count(),
        )
        assert HOSTILE in text and f"vs_{HOSTILE}" in text
        assert TEST_API_KEY not in html and "sk_test_" not in html

        # When a wrong token is typed into Cancel's field and Enter is pressed in the field
        _tab_to(page, "el.id === 'token-cancel'")
        page.keyboard.type("not-the-token")
        with page.expect_navigation():
            page.keyboard.press("Enter")

        # Then Enter submitted Cancel's own form (not Retry, the first action): it is
        # refused and the batch stays open
        assert (True, "wrong access token", BatchState.OPEN) == (
            page.url.endswith(f"/batches/{batch_id}/cancel"),
            "wrong access token" if "wrong access token" in page.inner_text("main") else "",
            Ledger(redis_client).get_batch(batch_id).state,
        )

        # When the right token is typed, and Cancel reached with Tab and pressed with Space
        page.goto(f"{web.url}batches/{batch_id}")
        _tab_to(page, "el.id === 'token-cancel'")
        page.keyboard.type(web.token)
        _tab_to(page, "el.textContent === 'Cancel batch'")
        focus_on_button = _focus_visible(page)
        with page.expect_navigation():
            page.keyboard.press("Space")

        # Then the batch is canceled, and the page says so
        assert focus_on_button
        assert f"batch {batch_id} canceled" in page.inner_text("main")
        assert BatchState.CANCELED is Ledger(redis_client).get_batch(batch_id).state

        # When another origin (or a rebinding DNS name) posts with the token and the CSRF pair
        csrf = page.get_attribute('input[name="csrf"]', "value")
        cookie = f"vsbatch_csrf={csrf}"
        body = f"csrf={csrf}&token={web.token}"
        own = urlsplit(web.url).netloc
        refused = [
            _post(web, f"/batches/{batch_id}/retry", body, {"cookie": cookie, **headers})
            for headers in (
                {"origin": "http://evil.example"},
                {"sec-fetch-site": "cross-site"},
                {"host": f"evil.example:{urlsplit(web.url).port}"},
            )
        ]
        same_origin = _post(
            web, f"/batches/{batch_id}/retry", body, {"cookie": cookie, "origin": f"http://{own}"}
        )

        # Then those are refused; the same request from the page's own origin is served
        assert ([403, 403, 400], 200) == (refused, same_origin)

        # When a page of another site makes the browser post the form, token included
        attack = (
            f'<form id="f" method="post" action="{web.url}batches/{batch_id}/retry">'
            f'<input name="csrf" value="{csrf}"><input name="token" value="{web.token}"></form>'
            "<script>document.getElementById('f').submit()</script>"
        )
        page.route(
            "http://evil.test/**",
            lambda route: route.fulfill(body=attack, content_type="text/html"),
        )
        page.goto("http://evil.test/")
        page.wait_for_url(f"{web.url}batches/{batch_id}/retry")

        # Then the browser's cross-site POST is refused
        assert "refused: a request from another site or origin" in page.inner_text("main")

        # When the server gets Ctrl-C with the page's live stream open
        code, stderr = web.stop()

        # Then it exits cleanly, without a traceback
        assert (0, False) == (code, "Traceback" in stderr), stderr
        page.close()
