"""What a launcher plugin needs beyond the plugin API: running one cell and reading back
its record. The second audience of the public surface (plugin authors import
:mod:`gtbench.api`; launcher authors this module as well).

A launcher (a :class:`gtbench.api.Launcher`) gets a :class:`gtbench.api.LaunchRequest`,
runs every cell with :func:`run_cell` wherever it likes, and reads results back from the
run folders (:func:`run_dir`, :data:`RECORD`, :func:`load_record`; :func:`write_record`
with :func:`failed_record` for a lost job's stand-in record; :data:`RUNNING` marks a
running cell), never from return values; a job that outlives the sweep rebuilds the
tables with :func:`write_tables`.
The names are imported on first use, so importing this module costs nothing (no torch,
no pandas).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gtbench.launch.runner import run_cell
    from gtbench.results.leaderboard import write_tables
    from gtbench.results.records import (
        FAILED_RECORD,
        RECORD,
        RUNNING,
        failed_record,
        load_record,
        run_dir,
        write_record,
    )

__all__ = [
    "FAILED_RECORD",
    "RECORD",
    "RUNNING",
    "failed_record",
    "load_record",
    "run_cell",
    "run_dir",
    "write_record",
    "write_tables",
]

_HOME = {
    "run_cell": "gtbench.launch.runner",
    "write_tables": "gtbench.results.leaderboard",
    **dict.fromkeys(
        [
            "FAILED_RECORD",
            "RECORD",
            "RUNNING",
            "failed_record",
            "load_record",
            "run_dir",
            "write_record",
        ],
        "gtbench.results.records",
    ),
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        value = getattr(importlib.import_module(_HOME[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gtbench.launcher' has no attribute {name!r}")
