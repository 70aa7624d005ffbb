"""Run cells one after another in this process (the default; shows per-cell progress)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from gtbench.api import Launcher, LaunchRequest
from gtbench.launcher import run_cell


class LocalLauncher(Launcher):
    description = "in-process, sequential"

    def launch(self, request: LaunchRequest, on_done: Callable[[str], None]) -> None:
        for cell in request.cells:
            run_id = cell["run_id"]
            report = partial(request.progress, run_id) if request.progress else None
            run_cell(dict(cell), request.results_dir, report)
            on_done(run_id)
