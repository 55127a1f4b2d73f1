"""The dashboard's routes through Starlette's TestClient: who may act, and hostile text.

Reads and actions are in-memory twins of :class:`vsbatch.web.data.Reads`/``Actions`` (the
ledger versions are exercised end to end in tests/e2e/test_web.py and test_web_server.py).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from vsbatch.errors import NotFoundError
from vsbatch.model.row import BatchInfo, BatchState, Outcome, RowRecord
from vsbatch.web.app import create_app
from vsbatch.web.auth import CSRF_COOKIE, Guard, allowed_hosts, new_token
from vsbatch.web.data import Feed, FoundBatch, RetryResult, RowFilter

with warnings.catch_warnings():  # Starlette would rather have httpx2 (not installed): httpx works
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

TOKEN = "right-token-" + "x" * 30
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'
BASE = "http://127.0.0.1:12180"


def _batch(batch_id: str = "b_1", name: str = "first") -> BatchInfo:
    counts = dict.fromkeys(Outcome, 0)
    counts[Outcome.FAILED] = 1
    counts[Outcome.SUCCEEDED] = 1
    return BatchInfo(batch_id, name, "csv", "in.csv", None, None, 1.7e9, BatchState.DONE, 2, counts)


def _row(row: int, session_id: str, outcome: Outcome, message: str = "") -> RowRecord:
    return RowRecord(
        "b_1", row, session_id, None, {}, None, row, outcome, error_message=message or None
    )


class MemoryReads:
    """An in-memory :class:`~vsbatch.web.data.Reads`."""

    history_source = "memory"

    def __init__(self, batch: BatchInfo, rows: list[RowRecord]) -> None:
        self._batch = batch
        self._rows = rows

    def batches(self) -> list[BatchInfo]:
        return [self._batch]

    def archived_batches(self) -> list[BatchInfo]:
        return []

    def batch(self, batch_id: str) -> FoundBatch:
        if batch_id != self._batch.id:
            raise NotFoundError(f"no batch {batch_id} (unknown or expired)")
        return FoundBatch(self._batch)

    def rows(self, batch_id: str, wanted: RowFilter, limit: int) -> list[RowRecord]:
        self.batch(batch_id)
        return [r for r in self._rows if wanted.keeps(r)][:limit]

    def session_history(self, session_id: str, limit: int) -> list[RowRecord]:
        return [r for r in self._rows if r.session_id == session_id][:limit]

    def failures(self, batch_id: str) -> Iterator[RowRecord]:
        self.batch(batch_id)
        return iter([r for r in self._rows if r.outcome is Outcome.FAILED])

    def feed(self) -> Feed:
        return lambda: {"batches": [], "accounts": [], "workers": 0, "reasons": []}


class MemoryActions:
    """An in-memory :class:`~vsbatch.web.data.Actions` that records what it was asked."""

    def __init__(self) -> None:
        self.done: list[tuple[str, str]] = []

    def retry(self, batch_id: str) -> RetryResult:
        self.done.append(("retry", batch_id))
        return RetryResult("b_child", "1 row to retry")

    def cancel(self, batch_id: str) -> str:
        self.done.append(("cancel", batch_id))
        return f"batch {batch_id} canceled"


@pytest.fixture
def actions() -> MemoryActions:
    return MemoryActions()


@pytest.fixture
def client(actions: MemoryActions) -> Iterator[TestClient]:
    rows = [_row(2, "vs_ok", Outcome.SUCCEEDED), _row(3, XSS, Outcome.FAILED, message=XSS)]
    reads = MemoryReads(_batch(name=XSS), rows)
    app = create_app(reads, actions, Guard(TOKEN), allowed_hosts("127.0.0.1"), 12180)
    with TestClient(app, base_url=BASE, follow_redirects=False) as test_client:
        yield test_client


def _csrf(client: TestClient) -> str:
    """Open the batch page (which sets the CSRF cookie); the form's CSRF value."""
    page = client.get("/batches/b_1")
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def _post(client: TestClient, action: str, **form: str) -> Any:
    return client.post(f"/batches/b_1/{action}", data=form, headers={"origin": BASE})


class TestToken:
    def test_tokens_are_long_and_new_each_time(self) -> None:
        """Two tokens differ and carry 256 random bits (43 URL-safe characters)."""
        first, second = new_token(), new_token()

        assert (True, 43) == (first != second, len(first))

    def test_only_the_exact_token_passes(self) -> None:
        """The token passes; a prefix, an empty or a missing value does not."""
        guard = Guard(TOKEN)

        assert [True, False, False, False] == [
            guard.token_ok(TOKEN),
            guard.token_ok(TOKEN[:-1]),
            guard.token_ok(""),
            guard.token_ok(None),
        ]


class TestActions:
    def test_retry_with_token_and_csrf_redirects_to_the_child(
        self, client: TestClient, actions: MemoryActions
    ) -> None:
        """The right token and CSRF field start the retry and redirect to the child batch."""
        csrf = _csrf(client)

        answer = _post(client, "retry", csrf=csrf, token=TOKEN)

        assert (303, "/batches/b_child", [("retry", "b_1")]) == (
            answer.status_code,
            answer.headers["location"],
            actions.done,
        )

    def test_cancel_shows_the_line(self, client: TestClient, actions: MemoryActions) -> None:
        """Cancel runs and the batch page says what became of the rows."""
        answer = _post(client, "cancel", csrf=_csrf(client), token=TOKEN)

        assert (200, [("cancel", "b_1")]) == (answer.status_code, actions.done)
        assert "batch b_1 canceled" in answer.text

    @pytest.mark.parametrize("token", ["", "wrong", TOKEN + "x"])
    def test_wrong_token_is_refused(
        self, client: TestClient, actions: MemoryActions, token: str
    ) -> None:
        """A wrong or empty token is a 403 and nothing is done."""
        answer = _post(client, "retry", csrf=_csrf(client), token=token)

        assert (403, []) == (answer.status_code, actions.done)
        assert "wrong access token" in answer.text

    def test_csrf_field_must_match_the_cookie(
        self, client: TestClient, actions: MemoryActions
    ) -> None:
        """A CSRF field that is not the cookie's value is refused, token or not."""
        _csrf(client)

        answer = _post(client, "retry", csrf="forged", token=TOKEN)

        assert (403, []) == (answer.status_code, actions.done)

    def test_no_csrf_cookie_is_refused(self, client: TestClient, actions: MemoryActions) -> None:
        """Without the cookie (a request forged elsewhere) the action is refused."""
        answer = _post(client, "retry", csrf="anything", token=TOKEN)

        assert (403, []) == (answer.status_code, actions.done)

    @pytest.mark.parametrize(
        "headers",
        [
            {"origin": "http://evil.example"},
            {"origin": "null"},
            {"origin": BASE, "sec-fetch-site": "cross-site"},
            {"sec-fetch-site": "same-site"},
        ],
    )
    def test_cross_origin_post_is_refused(
        self, client: TestClient, actions: MemoryActions, headers: dict[str, str]
    ) -> None:
        """A POST marked as coming from another origin is refused, with token and CSRF."""
        csrf = _csrf(client)

        answer = client.post(
            "/batches/b_1/retry", data={"csrf": csrf, "token": TOKEN}, headers=headers
        )

        assert (403, []) == (answer.status_code, actions.done)

    def test_actions_are_post_only(self, client: TestClient, actions: MemoryActions) -> None:
        """A GET of an action's URL does nothing."""
        answer = client.get("/batches/b_1/retry", params={"token": TOKEN})

        assert (405, []) == (answer.status_code, actions.done)

    def test_a_non_form_body_is_refused(self, client: TestClient, actions: MemoryActions) -> None:
        """A JSON body is not the dashboard's form: 400."""
        csrf = _csrf(client)

        answer = client.post(
            "/batches/b_1/retry", json={"csrf": csrf, "token": TOKEN}, headers={"origin": BASE}
        )

        assert (400, []) == (answer.status_code, actions.done)


class TestHostsAndHeaders:
    @pytest.mark.parametrize(
        "host",
        [
            "evil.example",
            "evil.example:12180",
            "127.0.0.2",
            "localhost:1@evil.com",  # userinfo-like junk after the port
            "localhost:abc",  # a port that is not a number
            "127.0.0.1:12180 evil",  # text after the port
            "127.0.0.1:8080",  # another port than the one served
            "localhost:",  # an empty port
            "[::1",  # an unclosed bracket
            "[::1]junk",
            "::1",  # IPv6 without its brackets
            "",
        ],
    )
    def test_foreign_host_header_is_refused(self, client: TestClient, host: str) -> None:
        """A Host that is not this server's (DNS rebinding) gets a 400, even for a page."""
        answer = client.get("/", headers={"host": host})

        assert 400 == answer.status_code

    @pytest.mark.parametrize(
        "host",
        [
            "127.0.0.1:12180",
            "localhost:12180",
            "[::1]:12180",
            "LOCALHOST:12180",
            "localhost",
            "[::1]",
        ],
    )
    def test_loopback_names_are_served(self, client: TestClient, host: str) -> None:
        """Every loopback name reaches a loopback-bound server."""
        assert 200 == client.get("/", headers={"host": host}).status_code

    def test_wildcard_bind_answers_to_the_names_given(self) -> None:
        """Bound to 0.0.0.0, the server answers to loopback names and the extra ones."""
        assert {"127.0.0.1", "localhost", "::1", "box.lan"} == allowed_hosts("0.0.0.0", ["box.lan"])

    def test_pages_forbid_inline_scripts_and_framing(self, client: TestClient) -> None:
        """The CSP allows scripts of the page's origin only, and no framing."""
        policy = client.get("/").headers["content-security-policy"]

        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy

    def test_csrf_cookie_is_strict_and_http_only(self, client: TestClient) -> None:
        """The CSRF cookie is SameSite=Strict and HttpOnly."""
        cookie = client.get("/batches/b_1").headers["set-cookie"].lower()

        assert cookie.startswith(CSRF_COOKIE) and "samesite=strict" in cookie
        assert "httponly" in cookie


class TestEscaping:
    @pytest.mark.parametrize("path", ["/", "/batches/b_1", "/batches/b_1?session=%3Cscript"])
    def test_hostile_names_and_reasons_are_text(self, client: TestClient, path: str) -> None:
        """Batch names, session ids and reasons with markup are shown escaped, never as tags."""
        page = client.get(path).text

        assert ("<script>alert" in page, "<img src=x" in page) == (False, False)
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page

    def test_hostile_session_page_is_text(self, client: TestClient) -> None:
        """A session page for a hostile id escapes it in the title and the rows."""
        page = client.get("/sessions/" + XSS.replace("/", "%2F")).text

        assert "<script>alert" not in page
        assert "&lt;img src=x onerror=alert(1)&gt;" in page

    def test_unknown_batch_is_a_404_page(self, client: TestClient) -> None:
        """An unknown batch id is a 404 page that says so (the id escaped)."""
        answer = client.get("/batches/%3Cb%3E")

        assert (404, True) == (answer.status_code, "no batch &lt;b&gt;" in answer.text)


class TestFailuresCsv:
    def test_failures_download_as_csv(self, client: TestClient) -> None:
        """The failures come as a CSV attachment in the input format, one failed row."""
        answer = client.get("/batches/b_1/failures.csv")

        assert answer.headers["content-disposition"] == 'attachment; filename="b_1-failures.csv"'
        assert answer.headers["content-type"].startswith("text/csv")
        assert 2 == len(answer.text.strip().splitlines())


class TestBatchPage:
    def _forms(self, page: str) -> list[str]:
        return re.findall(r"<form [^>]*method=\"post\".*?</form>", page, flags=re.S)

    def test_each_action_is_its_own_form(self) -> None:
        """On an open batch Retry and Cancel are two forms, each with its own token field and
        one button: Enter in a token field submits that form's action, never the other."""
        from dataclasses import replace

        from vsbatch.web.pages import batch_page

        open_batch = replace(_batch(), state=BatchState.OPEN)
        page = batch_page(FoundBatch(open_batch), [], wanted=RowFilter(), limit=5, csrf="c")
        forms = self._forms(page)

        assert [("retry", 1, 1), ("cancel", 1, 1)] == [
            (
                re.findall(r'action="/batches/b_1/(\w+)"', form)[0],
                form.count('name="token"'),
                form.count("<button"),
            )
            for form in forms
        ]

    def test_an_archived_batch_has_no_action_and_says_where_it_comes_from(self) -> None:
        """A batch read from the results store shows no Retry or Cancel, and says why."""
        from vsbatch.web.pages import batch_page, index_page

        found = FoundBatch(_batch(name="old"), archived=True)
        page = batch_page(found, [], wanted=RowFilter(), limit=5, csrf="c")
        index = index_page([], {}, [_batch(name="old")])

        assert ([], True, False, True) == (
            self._forms(page),
            "results store" in page,
            "data-batch" in page,  # nothing for the live script to update
            'href="/batches/b_1"' in index and "archived" in index,
        )
