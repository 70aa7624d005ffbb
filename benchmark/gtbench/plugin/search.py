"""Search distributions for equal tuning: where a hyper-parameter's random trials come from.

A method declares them on its parameters (``Parameter(1e-3, "...", search=LogUniform(1e-4,
1e-2))``); a suite may override them with the same text form ``gtbench list`` shows
(``"log-uniform(1e-4, 1e-2)"``, ``"uniform(0, 1)"``, ``"int-uniform(1, 4)"``,
``"choice(a, b, c)"``).

Sampling is seeded per (tuning seed, method, trial, parameter name), as in DomainBed: a
parameter's value in trial ``t`` does not depend on which other parameters are searched
or in which order, so adding a parameter to a space never reshuffles the others.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

__all__ = [
    "Choice",
    "Distribution",
    "IntUniform",
    "LogUniform",
    "Uniform",
    "parse_distribution",
    "sample_space",
    "trial_rng",
]


class Distribution(ABC):
    """A distribution trials draw one value from."""

    @abstractmethod
    def sample(self, rng: random.Random) -> Any:
        """One value, drawn with ``rng`` only."""

    @abstractmethod
    def __str__(self) -> str:
        """The text form a suite accepts (``parse_distribution(str(d)) == d``)."""

    def __repr__(self) -> str:
        return str(self)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and str(other) == str(self)

    def __hash__(self) -> int:
        return hash(str(self))


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{what} must be finite, got {value!r}")
    return float(value)


class _Range(Distribution):
    kind = ""

    def __init__(self, low: float, high: float) -> None:
        self.low = _number(low, f"{self.kind} low")
        self.high = _number(high, f"{self.kind} high")
        if not self.low < self.high:
            raise ValueError(f"{self.kind}: low must be below high, got {low!r}, {high!r}")

    def __str__(self) -> str:
        return f"{self.kind}({self.low:g}, {self.high:g})"


class LogUniform(_Range):
    """Uniform in log space between ``low`` and ``high`` (both > 0): learning rates, weights."""

    kind = "log-uniform"

    def __init__(self, low: float, high: float) -> None:
        super().__init__(low, high)
        if self.low <= 0:
            raise ValueError(f"log-uniform: low must be positive, got {low!r}")

    def sample(self, rng: random.Random) -> float:
        return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))


class Uniform(_Range):
    """Uniform between ``low`` and ``high``."""

    kind = "uniform"

    def sample(self, rng: random.Random) -> float:
        return rng.uniform(self.low, self.high)


class IntUniform(Distribution):
    """An integer between ``low`` and ``high``, both included: layer counts, block indices."""

    def __init__(self, low: int, high: int) -> None:
        for value in (low, high):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"int-uniform bounds must be integers, got {value!r}")
        if low > high:
            raise ValueError(f"int-uniform: low must not exceed high, got {low}, {high}")
        self.low, self.high = low, high

    def sample(self, rng: random.Random) -> int:
        return rng.randint(self.low, self.high)

    def __str__(self) -> str:
        return f"int-uniform({self.low}, {self.high})"


class Choice(Distribution):
    """One of the given values, equally likely: modes, policies, on/off switches."""

    def __init__(self, *values: Any) -> None:
        if not values:
            raise ValueError("choice needs at least one value")
        for value in values:
            if not isinstance(value, (str, int, float, bool)):
                raise ValueError(f"choice values must be str, int, float or bool, got {value!r}")
            if isinstance(value, str) and '"' in value:
                raise ValueError(f"choice value {value!r} may not contain '\"'")
        self.values = tuple(values)

    def sample(self, rng: random.Random) -> Any:
        return self.values[rng.randrange(len(self.values))]

    def __str__(self) -> str:
        return f"choice({', '.join(_literal(v) for v in self.values)})"


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return f'"{value}"'  # quoted: a value may hold commas ("color,translation")
    return str(value)


def _parse_literal(text: str) -> Any:
    lowered = text.lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return text


def _arguments(inside: str) -> list[Any]:
    """Comma-separated literals; a double-quoted one stays a string, commas included."""
    values: list[Any] = []
    rest = inside.strip()
    while rest:
        if rest.startswith('"'):
            end = rest.find('"', 1)
            if end < 0:
                raise ValueError(f"unclosed quote in {inside!r}")
            values.append(rest[1:end])
            rest = rest[end + 1 :].strip()
        else:
            item, _, _ = rest.partition(",")
            values.append(_parse_literal(item.strip()))
            rest = rest[len(item) :].strip()
        if rest and not rest.startswith(","):
            raise ValueError(f"expected ',' in {inside!r}")
        rest = rest[1:].strip()
    return values


_FORM = re.compile(r"^\s*([a-z-]+)\s*\((.*)\)\s*$", re.DOTALL)
_KINDS: dict[str, type[Distribution]] = {
    "log-uniform": LogUniform,
    "uniform": Uniform,
    "int-uniform": IntUniform,
    "choice": Choice,
}


def parse_distribution(text: str) -> Distribution:
    """``"log-uniform(1e-4, 1e-2)"`` → :class:`LogUniform`; ``ValueError`` naming the problem."""
    match = _FORM.match(text)
    if not match or match.group(1) not in _KINDS:
        kinds = ", ".join(f"{k}(...)" for k in _KINDS)
        raise ValueError(f"{text!r} is not a search distribution (expected one of {kinds})")
    kind, inside = match.groups()
    values = _arguments(inside)
    try:
        return _KINDS[kind](*values)
    except TypeError:
        raise ValueError(f"{text!r}: {kind} takes two bounds") from None


def trial_rng(seed: int, method: str, trial: int, name: str) -> random.Random:
    """The random stream of one parameter in one trial of one method."""
    key = f"{seed}/{method}/{trial}/{name}".encode()
    return random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))


def sample_space(
    space: Mapping[str, Distribution], *, seed: int, method: str, trial: int
) -> dict[str, Any]:
    """One trial's values: each name drawn from its own seeded stream."""
    return {
        name: dist.sample(trial_rng(seed, method, trial, name))
        for name, dist in sorted(space.items())
    }
