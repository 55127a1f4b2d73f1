"""One rule for a Stripe account id: the CSV column, ``--account``, the app API, migrations."""

from __future__ import annotations

import pytest

from vsbatch.app_api import _validated
from vsbatch.errors import InputError, VsbatchError
from vsbatch.intake.csv_cells import update_from_cells
from vsbatch.intake.stage import SubmitOptions, check_submit_options
from vsbatch.migrations.spec import parse_migrations

VALUES = ["acct_1", "acct_AbC9", "acct_" + "a" * 250, "acct_" + "a" * 251, "acct_", "acct_$(id)"]


def _column_ok(account: str) -> bool:
    try:
        update_from_cells("vs_1", account, {"metadata.k": "v"})
    except Exception:
        return False
    return True


def _option_ok(account: str) -> bool:
    try:
        check_submit_options(SubmitOptions(account=account))
    except InputError:
        return False
    return True


def _app_ok(account: str) -> bool:
    try:
        _validated("vs_1", {"metadata": {"k": "v"}}, account, None)
    except VsbatchError:
        return False
    return True


def _migration_ok(account: str) -> bool:
    text = (
        '[[migration]]\nname = "m"\nschedule = "1h"\n'
        f'[migration.select]\naccount = "{account}"\n'
        '[[migration.action]]\nop = "unset"\nkeys = ["crm"]\n'
    )
    try:
        parse_migrations(text)
    except VsbatchError:
        return False
    return True


@pytest.mark.parametrize("account", VALUES)
def test_every_entry_point_applies_the_column_rule(account: str) -> None:
    """The column, the option, the app API and a migration accept exactly the same ids."""
    expected = _column_ok(account)

    assert [expected] * 3 == [_option_ok(account), _app_ok(account), _migration_ok(account)]
