"""The ``[tune]`` table of a suite (``gtbench tune``), validated when the suite loads.

Kept apart from :mod:`gtbench.tune.tuning` so that reading a suite never imports the planner
(and the core stays free of import cycles)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gtbench.errors import UsageError

__all__ = ["METRICS", "SELECT_ON", "TuneSettings", "tune_settings"]

METRICS = ("auto", "fid", "kid")
SELECT_ON = ("validation", "evaluation")


@dataclass
class TuneSettings:
    """The suite's ``[tune]`` table."""

    trials: int = 4  # per method, the default configuration included
    metric: str = "auto"  # auto: FID, or KID where FID is not valid for the split's size
    # seeds of the trial cells: never evaluation seeds (a separate range; shots drawn apart)
    seeds: list[int] = field(default_factory=lambda: [1000])
    seed: int = 0  # the sampling seed
    eval: dict[str, Any] = field(default_factory=dict)  # the trials' (cheaper) evaluation
    # method name → {parameter or "train.<setting>": "log-uniform(a, b)" | fixed value}
    search: dict[str, dict[str, Any]] = field(default_factory=dict)
    select_on: str = "validation"  # "evaluation" only when a user asks, labelled so

    @property
    def label(self) -> str:
        return f"tuned-{self.select_on}"


def tune_settings(data: Mapping[str, Any] | None, origin: str = "[tune]") -> TuneSettings:
    """Validate a ``[tune]`` table; every problem is a one-line :class:`UsageError`."""
    from gtbench.measure.eval_settings import EvalSettings

    data = dict(data or {})
    allowed = {f.name for f in dataclasses.fields(TuneSettings)}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise UsageError(
            f"{origin}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})"
        )
    if isinstance(data.get("seeds"), int):
        data["seeds"] = [data["seeds"]]
    settings = TuneSettings(**data)
    if not isinstance(settings.trials, int) or settings.trials < 1:
        raise UsageError(f"{origin}: trials must be a positive integer, got {settings.trials!r}")
    if settings.metric not in METRICS:
        raise UsageError(f"{origin}: metric must be one of {', '.join(METRICS)}")
    if settings.select_on not in SELECT_ON:
        raise UsageError(f"{origin}: select_on must be one of {', '.join(SELECT_ON)}")
    if not settings.seeds or not all(isinstance(s, int) and s >= 0 for s in settings.seeds):
        raise UsageError(f"{origin}: seeds must be a list of integers >= 0")
    fields = {f.name for f in dataclasses.fields(EvalSettings)}
    unknown = sorted(set(settings.eval) - fields)
    if unknown:
        raise UsageError(f"{origin}.eval: unknown key {unknown[0]!r}")
    if not isinstance(settings.search, dict) or not all(
        isinstance(v, dict) for v in settings.search.values()
    ):
        raise UsageError(f"{origin}.search: expected a table per method")
    return settings
