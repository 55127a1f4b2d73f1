"""The ledger's, locks' and rate limiter's Lua scripts, loaded as package resources.

A script may share code with others: a line ``--#include NAME.lua`` is replaced by that
file's text when the script is loaded (Redis scripts cannot import). ``row_core.lua``, the one
copy of "move a row", is shared this way.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_INCLUDE = re.compile(r"^--#include ([\w.]+\.lua)$", re.M)


@cache
def lua_script(name: str) -> str:
    """The text of one of vsbatch's Lua scripts, its ``--#include`` lines expanded."""
    text = resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
    return _INCLUDE.sub(lambda match: lua_script(match.group(1)), text)
