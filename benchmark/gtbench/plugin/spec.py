"""The one syntax for naming a plugin with parameters, shared by the CLI and suite files.

``name`` or ``name:key=value,key=value``; in a suite file also a table
``{name = "folder", path = "...", res = 64}``. Values stay strings here; each plugin's
:class:`gtbench.api.Parameter` parses them with :func:`coerce`, as the suite does for
its ``[train]`` and ``[eval]`` keys. A value containing a comma is quoted:
``folder:path="a,b",res=64``.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gtbench.errors import UsageError


@dataclass(frozen=True)
class PluginSpec:
    """A plugin name and the parameters the user gave it."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        if not self.params:
            return self.name
        return self.name + ":" + ",".join(f"{k}={v}" for k, v in sorted(self.params.items()))


def parse_spec(text: str | Mapping[str, Any]) -> PluginSpec:
    """Parse ``name:key=value,...`` (or a suite-file table with a ``name`` key)."""
    if isinstance(text, Mapping):
        if "name" not in text:
            raise UsageError(f"plugin table {dict(text)!r} needs a 'name' key")
        params = {k: v for k, v in text.items() if k != "name"}
        return PluginSpec(str(text["name"]), params)
    text = text.strip()
    name, _, rest = text.partition(":")
    name = name.strip()
    if not name:
        raise UsageError(f"empty plugin name in {text!r}")
    params: dict[str, str] = {}
    if rest.strip():
        lexer = shlex.shlex(rest, posix=True)
        lexer.whitespace = ","
        lexer.whitespace_split = True
        for item in lexer:
            key, eq, value = item.partition("=")
            if not eq or not key.strip():
                raise UsageError(f"bad parameter {item!r} in {text!r}: expected key=value")
            params[key.strip()] = value.strip()
    return PluginSpec(name, params)


def parse_spec_list(text: str) -> list[str]:
    """Split a comma-separated list of specs, keeping each spec's own parameters.

    ``finetune,freeze-d:layers=2,ewc`` gives three specs; a comma inside a spec's
    parameters belongs to that spec (``folder:path=x,res=64,debug``: ``res=64`` has an
    ``=``, so it stays with ``folder``)."""
    parts: list[str] = []
    lexer = shlex.shlex(text, posix=False)
    lexer.whitespace = ","
    lexer.whitespace_split = True
    for item in lexer:
        item = item.strip()
        if not item:
            continue
        if parts and "=" in item and ":" not in item.split("=", 1)[0]:
            parts[-1] += "," + item
        else:
            parts.append(item)
    return parts


def coerce(value: Any, like: Any) -> Any:
    """``value`` (a command-line string or a suite-file value) as the type of ``like`` (a
    default), normalised, so ``2``, ``2.0`` and ``"2"`` give one ``run_id``.

    Booleans are ``true``/``false`` only (never 1, "yes"); an integer is an integer (2.0
    becomes 2, 2.5 is refused); a float accepts an integer; a string accepts a number.
    A default of any other type (None, a tuple) takes the value as it is. Raises
    ``ValueError`` with a short reason."""
    if isinstance(like, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise ValueError(f"expected true or false, got {value!r}")
    if isinstance(like, int):
        number = _number(value, "an integer")
        if isinstance(number, float):
            if not number.is_integer():
                raise ValueError(f"expected an integer, got {value!r}")
            number = int(number)
        return number
    if isinstance(like, float):
        return float(_number(value, "a number"))
    if isinstance(like, str):
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _number(value: Any, what: str) -> int | float:
    if isinstance(value, bool):
        raise ValueError(f"expected {what}, got {value!r}")
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        text = value.strip()
        for parse in (int, float):
            try:
                return parse(text)
            except ValueError:
                pass
    raise ValueError(f"expected {what}, got {value!r}")
