"""What the migration tests share: a small spec (:data:`CRM`) and the helpers that write one
(:func:`spec`) and parse one (:func:`one`, :func:`error`).
"""

from __future__ import annotations

import pytest

from vsbatch.errors import MigrationSpecError
from vsbatch.migrations.spec import Migration, parse_migrations

CRM = """
[[migration]]
name = "crm"
schedule = "15m"

[migration.select]
metadata_present = ["crm"]

[[migration.action]]
op = "copy"
from = "crm"
to = "crm_id"

[[migration.action]]
op = "unset"
keys = ["crm"]
"""


def one(text: str) -> Migration:
    (migration,) = parse_migrations(text).values()
    return migration


def spec(select: str = "", actions: str = 'op = "set"\nvalues = { a = "1" }') -> str:
    return (
        f'[[migration]]\nname = "m"\n\n[migration.select]\n{select}\n\n'
        f"[[migration.action]]\n{actions}\n"
    )


def error(text: str) -> MigrationSpecError:
    with pytest.raises(MigrationSpecError) as info:
        parse_migrations(text, path="m.toml")
    return info.value
