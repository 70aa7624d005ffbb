"""Phases: stretches of one counted training budget (warm-up, probe, mine, main)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Phase", "UPDATES"]

UPDATES = ("d", "gd")


@dataclass(frozen=True)
class Phase:
    """One stretch of the training budget.

    ``steps``: how many steps (each one D update, plus one G update when ``updates`` is
    ``"gd"``); ``None`` for the phase that takes the rest of the budget (at most one per
    method). ``new_optimizers``: build fresh Adam optimisers (from :meth:`Method.param_groups`)
    at its start; ``reset_ema``: restart the EMA generator from the current G at its start
    (e.g. after a probe whose weights must not leak into the evaluated average)."""

    name: str
    steps: int | None = None
    updates: str = "gd"  # "d": discriminator only; "gd": both
    new_optimizers: bool = False
    reset_ema: bool = False

    def __post_init__(self) -> None:
        if self.updates not in UPDATES:
            raise ValueError(f"phase {self.name!r}: updates must be 'd' or 'gd'")
        if self.steps is not None and self.steps < 0:
            raise ValueError(f"phase {self.name!r}: steps must be >= 0, got {self.steps}")

    @property
    def trains_generator(self) -> bool:
        return "g" in self.updates
