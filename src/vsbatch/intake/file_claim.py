"""The claim a CSV file's content (and default account) has on its one live batch.

``submit`` refuses a file whose earlier batch is still open, and two submits of one file
started together must not both pass that check: the lookup and the claim are one Lua script
(``claim_file.lua``). The claim names a batch and holds while that batch is staging or
open, so it follows the batch's life: a discarded, done or canceled batch frees the file.
"""

from __future__ import annotations

from typing import cast

from vsbatch.store.ledger import Ledger
from vsbatch.store.scripts import lua_script


def claim_file(ledger: Ledger, batch_id: str, digest: str, account: str | None) -> str:
    """Claim the file for the STAGING batch ``batch_id``; return the batch that holds it
    (``batch_id`` itself when the claim is taken, another live batch's id when not)."""
    script = ledger.client.register_script(lua_script("claim_file.lua"))
    key = ledger.keys.file_claim(account, digest)
    args: list[str | int] = [ledger.keys.batch(""), batch_id, ledger.retention_seconds]
    held = cast(bytes | str, script(keys=[key], args=args))
    return held.decode() if isinstance(held, bytes) else held


def release_file(ledger: Ledger, batch_id: str, digest: str, account: str | None) -> None:
    """Drop the file's claim if it still names ``batch_id`` (its staged batch is discarded)."""
    script = ledger.client.register_script(lua_script("release_file.lua"))
    script(keys=[ledger.keys.file_claim(account, digest)], args=[batch_id])
