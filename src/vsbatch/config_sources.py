"""Where settings come from: the caller's values, the environment, a ``.env`` file, in that order.

:class:`vsbatch.config.Settings` is a plain pydantic model; this module gathers the raw values
it validates. It replaces pydantic-settings, whose import cost every ``vsbatch`` command about
as much again as pydantic's own (0.1 s of CPU from bytecode, 0.25 s compiling from source),
and keeps its rules as vsbatch configured them:

- Precedence, field by field: values given to ``Settings(...)`` > the environment > ``.env``
  > the field's default. A value given as ``None`` counts as given.
- Names: ``VSBATCH_<FIELD>``, in any case (``vsbatch_rate_limit`` too). A field with an
  ``AliasChoices`` validation alias is read from those names instead, the first one found
  winning within a source (``VSBATCH_STRIPE_API_KEY`` before ``STRIPE_API_KEY``); a source
  of higher precedence wins whichever of its names it uses.
- An empty value (``VSBATCH_RATE_LIMIT=``, as compose files write) is no value.
- ``.env`` is read from the path given (the working directory's ``.env`` by default; ``None``
  reads none), with python-dotenv, the parser pydantic-settings used: ``export``, quotes,
  comments and ``${VAR}`` expansion work as before. A missing file is no file.
- Some settings are never read from ``.env`` (``not_from_dotenv``): a file lying in a directory
  is not the operator's word on where a live key may go.

Validation, conversion and error messages stay pydantic's (the model's fields).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from pydantic import AliasChoices
from pydantic.fields import FieldInfo

__all__ = ["DEFAULT_ENV_FILE", "env_names", "gather"]

DEFAULT_ENV_FILE = ".env"


def env_names(name: str, field: FieldInfo, prefix: str) -> tuple[str, ...]:
    """The variable names of one field, lower case, in the order they are tried.

    Args:
        name: The field's name.
        field: The field (its ``AliasChoices`` validation alias, if any, names the variables).
        prefix: The prefix of unaliased fields (``VSBATCH_``).
    """
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        found = [c for c in alias.choices if isinstance(c, str)]
    else:
        found = [alias if isinstance(alias, str) else prefix + name]
    return tuple(dict.fromkeys(n.lower() for n in found))


def gather(
    fields: Mapping[str, FieldInfo],
    given: Mapping[str, Any],
    *,
    prefix: str,
    env_file: str | os.PathLike[str] | None = DEFAULT_ENV_FILE,
    not_from_dotenv: Collection[str] = (),
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The raw values of a settings model: ``given``, plus each field it leaves to the sources.

    Args:
        fields: The model's fields by name (``Model.model_fields``).
        given: The caller's values, by field name or alias; they win over every source.
        prefix: The prefix of the variables' names (``VSBATCH_``).
        env_file: The ``.env`` file to read, or None for none.
        not_from_dotenv: Fields whose ``.env`` values are ignored.
        environ: The environment (default ``os.environ``).

    Returns:
        ``given`` with, for every other field found in a source, its raw string value
        under the field's name, or its first alias (``VSBATCH_STRIPE_API_KEY``): the name
        pydantic gives in its errors, whichever variable the value came from.
    """
    env = _lowered(os.environ if environ is None else environ)
    dotenv: dict[str, str] | None = None  # read once, and only if some field needs it
    values = dict(given)
    for name, field in fields.items():
        names = env_names(name, field, prefix)
        if _is_given(name, field, given):
            continue
        value = _first(env, names)
        if value is None and name not in not_from_dotenv and env_file is not None:
            if dotenv is None:
                dotenv = read_dotenv(env_file)
            value = _first(dotenv, names)
        if value is not None:
            values[_key(name, field)] = value
    return values


def read_dotenv(path: str | os.PathLike[str]) -> dict[str, str]:
    """The variables of a ``.env`` file (names lower case, empty and bare names left out).

    A path that is neither a file nor a FIFO is an empty file.
    """
    file = Path(path).expanduser()
    if not (file.is_file() or file.is_fifo()):
        return {}
    from dotenv import dotenv_values  # only when there is a file: one import fewer otherwise

    return _lowered(dotenv_values(file, encoding="utf-8"))


def _lowered(variables: Mapping[str, str | None]) -> dict[str, str]:
    """``variables`` with lower-case names and without empty or missing values."""
    return {k.lower(): v for k, v in variables.items() if v}


def _first(variables: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        if name in variables:
            return variables[name]
    return None


def _key(name: str, field: FieldInfo) -> str:
    alias = field.validation_alias
    first = alias.choices[0] if isinstance(alias, AliasChoices) else alias
    return first if isinstance(first, str) else name


def _is_given(name: str, field: FieldInfo, given: Mapping[str, Any]) -> bool:
    """Whether the caller gave the field, by its name or one of its aliases."""
    if name in given:
        return True
    alias = field.validation_alias
    choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
    return any(isinstance(c, str) and c in given for c in choices)
