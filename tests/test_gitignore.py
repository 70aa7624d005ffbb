"""`.gitignore` names what gtbench writes into a committed results folder and is not a
result: the running marker, a rerun's staging folder, `gtbench generate`'s default output
and kept weights."""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import pytest

from gtbench.launch.runner import STAGING, WEIGHTS
from gtbench.results.records import RUNNING

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", [RUNNING, f"{STAGING}/record.json", "generated/x.png", WEIGHTS])
def test_working_files_in_committed_results_are_ignored(name: str) -> None:
    path = f"results/reference/runs/0123456789abcdef/{name}"
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", "-q", path], cwd=ROOT, check=False
    )
    assert ignored.returncode == 0, f"{path} is not ignored by .gitignore"


def test_records_and_samples_of_committed_results_are_not_ignored() -> None:
    for folder, name in itertools.product(
        ("reference", "tuned", "regime", "shots"), ("record.json", "samples.png", "train_log.csv")
    ):
        path = f"results/{folder}/runs/0123456789abcdef/{name}"
        ignored = subprocess.run(
            ["git", "check-ignore", "--no-index", "-q", path], cwd=ROOT, check=False
        )
        assert ignored.returncode == 1, f"{path} would be ignored"
