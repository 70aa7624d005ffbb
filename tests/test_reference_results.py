"""The committed reference poses the few-shot problem it ranks (docs/regime.md): every
target of the `full` suite at its adapted budget, at least 5 seeds a row, and plain
fine-tuning's samples moved to the target there (≥ 90 % by the adaptation measure), so a
ranking is never read on generators that still draw the source."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
BOARD = ROOT / "results" / "reference" / "leaderboard.csv"


@pytest.fixture(scope="module")
def board() -> pd.DataFrame:
    frame = pd.read_csv(BOARD)
    return frame[~frame["stale"].astype(bool)]


def _full_suite_targets(budget: str) -> set[str]:
    from gtbench.plan.suite import load_suite

    return {
        d for part in load_suite("full").parts() if part.budget == budget for d in part.datasets
    }


def test_every_ranked_row_at_the_adapted_budget_has_five_seeds(board):
    adapted = board[board["budget"] == "adapted"]
    assert {"animals-cat", "digits"} <= set(adapted["dataset"]) <= _full_suite_targets("adapted")
    assert adapted["n_seeds"].min() >= 5
    assert not adapted.duplicated(["dataset", "method"]).any()  # one row per method


def test_every_target_of_the_full_suite_is_ranked_at_its_adapted_budget(board):
    adapted = board[board["budget"] == "adapted"]
    assert set(adapted["dataset"]) == _full_suite_targets("adapted")


def test_finetune_draws_the_target_at_the_adapted_budget(board):
    """Issue 18: at the reference budget finetune reaches ≥ 90 % on every target."""
    finetune = board[(board["budget"] == "adapted") & (board["method"] == "finetune")]
    adapted = finetune.set_index("dataset")["adaptation_mean"]
    assert set(adapted.index) == _full_suite_targets("adapted")  # faces included
    assert (adapted >= 0.9).all(), adapted.to_dict()


def test_budgets_are_never_pooled(board):
    """One row per target, method and budget: no row averages two budgets' runs."""
    assert not board.duplicated(["dataset", "method", "budget"]).any()
    assert set(board["budget"]) <= {"adapted", "long"}


def test_finetune_shows_the_few_shot_failure_at_the_long_budget(board):
    """Issue 18: the long budget is where fine-tuning fails — on every target ranked there,
    its memorisation is above and its diversity below their adapted values (docs/
    leaderboard.md: its FID comes back up on cats, and levels on digits)."""
    finetune = board[board["method"] == "finetune"]
    long_targets = set(finetune.loc[finetune["budget"] == "long", "dataset"])
    assert long_targets == {"animals-cat", "digits"}
    for target in long_targets:
        rows = finetune[finetune["dataset"] == target].set_index("budget")
        memorised = rows["mem_closer_to_train_mean"]
        diversity = rows["intra_cluster_diversity_mean"]
        assert memorised["long"] > memorised["adapted"], target
        assert diversity["long"] < diversity["adapted"], target
        assert rows.loc["long", "n_seeds"] >= 5
    cats = finetune[finetune["dataset"] == "animals-cat"].set_index("budget")["fid_mean"]
    assert cats["long"] > cats["adapted"]


def test_every_long_target_of_the_full_suite_is_ranked(board):
    """Issue 18: at least two targets at the long budget."""
    long = board[board["budget"] == "long"]
    assert set(long["dataset"]) == _full_suite_targets("long")
    assert len(set(long["dataset"])) >= 2
