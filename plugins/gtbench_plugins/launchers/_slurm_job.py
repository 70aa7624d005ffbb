"""The callable each SLURM job runs. Kept apart from :mod:`.slurm` because it subclasses
a submitit class: importing it needs submitit, and ``gtbench list`` must not."""

from __future__ import annotations

import sys
from typing import Any

import submitit

from gtbench.launcher import run_cell, write_tables


class CellJob(submitit.helpers.Checkpointable):
    """Run one cell; on pre-emption or time-out, requeue the same cell.

    What is pickled is the cell (its JSON configuration), the results folder and an
    attempt counter — never training state. A requeued cell starts again in its own
    run folder; the record it writes is the only result the parent reads."""

    def __init__(
        self, cell: dict[str, Any], results_dir: str, attempt: int = 1, tables: bool = False
    ) -> None:
        self.cell, self.results_dir, self.attempt, self.tables = cell, results_dir, attempt, tables

    def __call__(self) -> str:
        _say(f"cell {self.cell['run_id']} attempt {self.attempt}")
        status = run_cell(self.cell, self.results_dir).status
        if self.tables:  # nobody waits for this job: keep the tables current ourselves
            write_tables(self.results_dir)
        return status

    def checkpoint(self, *args: Any, **kwargs: Any) -> submitit.helpers.DelayedSubmission:
        _say(f"cell {self.cell['run_id']} interrupted, requeued")
        again = CellJob(self.cell, self.results_dir, self.attempt + 1, self.tables)
        return submitit.helpers.DelayedSubmission(again)


def _say(message: str) -> None:
    """One line in the job's log (submitit keeps stderr per job)."""
    print(f"gtbench: {message}", file=sys.stderr, flush=True)
