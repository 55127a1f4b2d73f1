"""Redaction: API keys always, email and phone numbers when asked, in text and in records."""

from __future__ import annotations

from vsbatch.model.row import Outcome, RowRecord
from vsbatch.ops.redaction import EMAIL_MARK, KEY_MARK, PHONE_MARK, redact_record, redact_text

KEY = "sk_test_vsbatch0123456789abcdefSECRET"


def _record(**fields: object) -> RowRecord:
    base: dict[str, object] = {
        "batch_id": "b_1",
        "row": 2,
        "session_id": "vs_" + "A" * 24,
        "account": None,
        "params": {"provided_details": {"email": "ada@example.com", "phone": "+15555550100"}},
        "idempotency_key": "k",
        "seq": 1,
        "outcome": Outcome.FAILED,
    }
    base.update(fields)
    return RowRecord(**base)  # type: ignore[arg-type]


class TestRedactText:
    def test_api_keys_always_go(self) -> None:
        """Secret and restricted keys, test or live, are replaced even without PII redaction."""
        text = f"Bearer {KEY} and rk_live_abcDEF123 stay out"

        assert f"Bearer {KEY_MARK} and {KEY_MARK} stay out" == redact_text(text)

    def test_url_passwords_always_go(self) -> None:
        """A Redis URL keeps its host and user but not its password, even with PII redaction."""
        text = "cannot reach redis://:s3cr3t-pw@127.0.0.1:6379/0 or rediss://app:pw2@r.internal"

        for pii in (False, True):
            assert (
                "cannot reach redis://***@127.0.0.1:6379/0 or rediss://***@r.internal"
                == redact_text(text, pii=pii)
            )

    def test_pii_stays_unless_asked(self) -> None:
        """Without ``pii`` an email address is left as it is."""
        assert "mail ada@example.com" == redact_text("mail ada@example.com")

    def test_email_and_phone_go_when_asked(self) -> None:
        """Emails and phone numbers in the usual forms are replaced."""
        text = "ada@example.co.uk, +1 555 555 0100, (555) 555-0100, 555-555-0100"

        assert f"{EMAIL_MARK}, {PHONE_MARK}, {PHONE_MARK}, {PHONE_MARK}" == redact_text(
            text, pii=True
        )

    def test_numbers_and_times_are_left_alone(self) -> None:
        """Row numbers, counts, ids and timestamps are not mistaken for phone numbers."""
        text = "row 123456789 at 2026-01-02 03:04:05 req_12345678 vs_1NqXyZ2eZvKYlo2C0a1b2c3d"

        assert text == redact_text(text, pii=True)


class TestRedactRecord:
    def test_update_parameters_lose_email_and_phone(self) -> None:
        """provided_details values become markers; nothing else in the update changes."""
        record = redact_record(_record(), pii=True)

        assert {"provided_details": {"email": EMAIL_MARK, "phone": PHONE_MARK}} == record.params

    def test_rejected_cells_and_messages_are_redacted(self) -> None:
        """A rejected row's kept cells and an error message echoing PII are redacted."""
        record = _record(
            params=None,
            error_message="Invalid email: ada@example.com",
            extra={"raw": {"provided_details.email": "ada@example.com", "id": "vs_x"}},
        )

        redacted = redact_record(record, pii=True)

        assert ("Invalid email: [redacted-email]", EMAIL_MARK, "vs_x") == (
            redacted.error_message,
            redacted.extra["raw"]["provided_details.email"],
            redacted.extra["raw"]["id"],
        )

    def test_original_record_is_untouched(self) -> None:
        """Redaction returns a copy."""
        record = _record()

        redact_record(record, pii=True)

        assert "ada@example.com" == record.params["provided_details"]["email"]  # type: ignore[index]


class TestUrls:
    def test_safe_url_hides_userinfo_and_password_parameters(self) -> None:
        """``safe_url`` masks the password in userinfo and in the query, keeps the rest."""
        from vsbatch.urls import safe_url

        url = (
            "rediss://default:pw1secret@redis.example:6380/0?password=pw2secret&ssl_cert_reqs=none"
        )

        assert "rediss://***@redis.example:6380/0?password=***&ssl_cert_reqs=none" == safe_url(url)

    def test_safe_url_hides_every_parameter_named_like_a_password(self) -> None:
        """``sslpassword=``, ``db_passwd=``: any name holding password or passwd; a path such
        as ``sslkey=`` or ``passfile=`` stays."""
        from vsbatch.urls import safe_url

        url = "postgresql://h/db?sslpassword=S3&sslkey=/k.pem&db_passwd=S4&passfile=/p&x=1"

        assert "postgresql://h/db?sslpassword=***&sslkey=/k.pem&db_passwd=***&passfile=/p&x=1" == (
            safe_url(url)
        )

    def test_key_inside_a_word_is_replaced(self) -> None:
        """A key glued to other letters (``req_<key>``, ``x<key>y``) is still replaced."""
        text = f"req{KEY} and x{KEY}y"

        assert "SECRET" not in redact_text(text)

    def test_urls_in_free_text_lose_their_credentials(self) -> None:
        """Any URL in a message loses userinfo and password/token/secret parameters."""
        text = "cannot reach redis://:topsecret1@h:1/0 or http://h/x?token=topsecret2&a=1"

        assert "topsecret" not in redact_text(text)
