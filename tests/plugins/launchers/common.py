"""The small sweep the launcher tests run, and cells derived from it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pandas as pd

from gtbench.plan.cells import Plan, plan_suite
from gtbench.plan.identity import run_id_of
from gtbench.plan.suite import load_suite

TIMINGS = ("_s_mean", "_s_std", "_mb_max")  # wall times and peak memory


def debug_plan(seeds: tuple[int, ...] = (0,)) -> Plan:
    """The debug suite (source-only, scratch, finetune) at a tiny budget."""
    suite = load_suite("debug")
    suite.seeds = list(seeds)
    suite.train.update(iters=4, batch_size=4)
    suite.eval.update(n_samples=40)
    return plan_suite(suite)


def variant(cell: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of ``cell`` with nested changes (``dataset__params__channels=2``) and the
    run id of its new configuration."""
    changed = copy.deepcopy(cell)
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        target = changed
        for key in parents:
            target = target[key]
        target[leaf] = value
    changed["run_id"] = run_id_of({k: v for k, v in changed.items() if k != "run_id"})
    return changed


def failing(cell: dict[str, Any]) -> dict[str, Any]:
    """A cell that raises at run time: a 2-channel target cannot be matched to an RGB
    source (plan_suite would accept the dataset; the runner fails converting it)."""
    return variant(cell, dataset__params__channels=2)


def board(results: Path) -> pd.DataFrame:
    """The leaderboard without timing columns (those differ between any two runs)."""
    frame = pd.read_csv(results / "leaderboard.csv")
    return frame[[c for c in frame.columns if not c.endswith(TIMINGS)]]
