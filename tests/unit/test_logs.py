"""Log lines: JSON or text, with a row's fields, and redacted by the handler's filter."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from vsbatch.config import Settings
from vsbatch.ops.logs import setup_logging, wants_json

KEY = "sk_test_vsbatch0123456789abcdefSECRET"
ROW = {
    "batch": "b_1",
    "row": 7,
    "session": "vs_" + "A" * 24,
    "outcome": "failed",
    "reason": "resource_missing",
    "attempts": 2,
    "request_id": "req_123",
}


class _Err:
    """stderr as pytest captures it, read with ``getvalue()``."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.text = ""

    def getvalue(self) -> str:
        self.text += self.capsys.readouterr().err
        return self.text


@pytest.fixture
def captured(capsys: pytest.CaptureFixture[str]) -> Iterator[_Err]:
    """What vsbatch's handler writes to stderr; the handler is removed afterwards."""
    yield _Err(capsys)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_vsbatch", False):
            root.removeHandler(handler)


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def _log(message: str, *args: object, **extra: object) -> None:
    logging.getLogger("vsbatch.test").warning(message, *args, extra=extra)


class TestFormats:
    def test_json_line_carries_the_row_fields(self, captured: _Err) -> None:
        """A row outcome is one JSON object with batch, row, session, outcome, reason..."""
        setup_logging(_settings(log_format="json"))

        _log("row %s", "failed", **ROW)

        line = json.loads(captured.getvalue())
        assert {**ROW, "message": "row failed", "level": "warning"} == {
            k: line[k] for k in (*ROW, "message", "level")
        }

    def test_text_line_is_readable(self, captured: _Err) -> None:
        """Text lines show level, logger, message and key=value fields."""
        setup_logging(_settings(log_format="text"))

        _log("row failed", **ROW)

        assert "WARNING vsbatch.test: row failed  batch=b_1 row=7" in captured.getvalue()

    def test_auto_means_json_off_a_terminal(self) -> None:
        """``auto`` picks JSON for a stream that is not a TTY."""
        assert (True, False, True) == (
            wants_json("auto", io.StringIO()),
            wants_json("text", io.StringIO()),
            wants_json("json", io.StringIO()),
        )


class TestRedaction:
    def test_api_key_never_printed(self, captured: _Err) -> None:
        """A key in the message, its arguments or an extra field is replaced."""
        setup_logging(_settings(log_format="json"))

        _log("header Bearer %s", KEY, detail=f"key={KEY}")

        assert KEY not in captured.getvalue()
        assert "[redacted-key]" in captured.getvalue()

    def test_key_in_a_traceback_is_replaced(self, captured: _Err) -> None:
        """Exception text goes through the same filter."""
        setup_logging(_settings(log_format="text"))

        try:
            raise ValueError(f"bad key {KEY}")
        except ValueError:
            logging.getLogger("vsbatch.test").exception("boom")

        assert KEY not in captured.getvalue() and "ValueError" in captured.getvalue()

    def test_pii_redacted_only_when_configured(self, captured: _Err) -> None:
        """Emails and phones stay with redact_pii off and go with it on."""
        setup_logging(_settings(log_format="json"))
        _log("mail ada@example.com phone +15555550100")
        setup_logging(_settings(log_format="json", redact_pii=True))
        _log("mail ada@example.com phone +15555550100")

        first, second = (json.loads(x)["message"] for x in captured.getvalue().splitlines())

        assert "mail ada@example.com phone +15555550100" == first
        assert "mail [redacted-email] phone [redacted-phone]" == second


class TestRedactionOfOtherSpellings:
    def test_known_key_is_removed_in_any_spelling(self, captured: _Err) -> None:
        """The configured key inside a word or percent-encoded never reaches a log line."""
        setup_logging(_settings(log_format="json", stripe_api_key=KEY))
        encoded = "".join(f"%{b:02X}" for b in KEY.encode())

        _log("echo x%sy and %s", KEY, encoded, detail=f"id=req{KEY}")

        text = captured.getvalue()
        assert ("SECRET" in text, encoded in text) == (False, False)

    def test_httpx_style_url_with_credentials_is_cleaned(self, captured: _Err) -> None:
        """A logged URL keeps neither its userinfo nor a password query parameter."""
        setup_logging(_settings(log_format="text"))

        logging.getLogger("httpx").warning(
            'HTTP Request: GET %s "HTTP/1.1 200 OK"',
            "https://user:hunter2pw@proxy.example/v1/x?limit=1&password=hunter3pw",
        )

        text = captured.getvalue()
        assert [] == [s for s in ("hunter2pw", "hunter3pw", "user:") if s in text]
        assert "proxy.example/v1/x?limit=1&password=" in text


class TestConnectionTroubleIsOneLine:
    def test_lost_redis_connection_logged_by_kombu_has_no_traceback(self, captured: _Err) -> None:
        """A Redis restart seen by kombu's ack is logged as one line, not a traceback."""
        import redis

        setup_logging(_settings(log_format="json"))

        try:
            try:
                raise ConnectionResetError(104, "Connection reset by peer")
            except ConnectionResetError as exc:
                raise redis.ConnectionError("Error while reading from 127.0.0.1:6379") from exc
        except redis.ConnectionError:
            logging.getLogger("kombu.message").exception("Unable to ack message")

        line = json.loads(captured.getvalue().strip())
        assert "Traceback" not in line["exception"]
        assert "ConnectionError: Error while reading from 127.0.0.1:6379" == line["exception"]

    def test_a_bug_keeps_its_traceback(self, captured: _Err) -> None:
        """An unexpected error (not a lost connection) keeps the traceback for its report."""
        setup_logging(_settings(log_format="json"))

        try:
            raise KeyError("row")
        except KeyError:
            logging.getLogger("celery.app.trace").exception("Task raised unexpected")

        assert "Traceback" in json.loads(captured.getvalue().strip())["exception"]
