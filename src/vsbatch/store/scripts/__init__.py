"""The ledger's, locks' and rate limiter's Lua scripts, loaded as package resources."""

from __future__ import annotations

from importlib import resources


def lua_script(name: str) -> str:
    """The text of one of vsbatch's Lua scripts (package data in this package)."""
    return resources.files("vsbatch.store.scripts").joinpath(name).read_text(encoding="utf-8")
