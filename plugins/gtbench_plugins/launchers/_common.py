"""Shared by the cluster launchers: the parent's fallback record for a cell whose job
died without writing one, and the "install the extra" error."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from gtbench.errors import PluginError
from gtbench.launcher import (
    FAILED_RECORD,
    RECORD,
    RUNNING,
    failed_record,
    load_record,
    run_dir,
    write_record,
)

Stamp = tuple[tuple[int, int] | None, ...]


def record_stamp(results_dir: str | Path, run_id: str) -> Stamp:
    """(mtime, size) of a cell's record and of its ``record.failed.json`` (None where
    absent): taken at submission, it tells a record the job wrote from one left by an
    earlier sweep. A ``--force`` rerun that fails writes only the second file."""
    folder = run_dir(results_dir, run_id)
    stamps = []
    for name in (RECORD, FAILED_RECORD):
        try:
            stat = (folder / name).stat()
        except OSError:
            stamps.append(None)
            continue
        stamps.append((stat.st_mtime_ns, stat.st_size))
    return tuple(stamps)


def require(module: str, launcher: str, extra: str) -> None:
    """Fail in one line, before anything is submitted, when an optional extra is missing."""
    if importlib.util.find_spec(module) is None:
        raise PluginError(
            f"launcher {launcher!r} needs {module}, which is not installed: "
            f"pip install 'gtbench[{extra}]'"
        )


def wrote_record(results_dir: str | Path, run_id: str, before: Stamp | None) -> bool:
    """Whether the job wrote a record since ``before`` was taken: a readable record, or a
    failed one beside a kept ``ok`` record (a ``--force`` rerun that failed)."""
    now = record_stamp(results_dir, run_id)
    if before is None:
        before = (None,) * len(now)
    record_changed, failed_changed = (
        a is not None and a != b for a, b in zip(now, before, strict=True)
    )
    if failed_changed:
        return True
    return record_changed and load_record(results_dir, run_id) is not None


def record_lost_cell(
    cell: dict[str, Any], results_dir: str | Path, error: str, before: Stamp | None
) -> None:
    """Write a ``failed`` record for ``cell`` unless its job wrote one (``before``: the
    record's :func:`record_stamp` at submission; an unchanged record is an old one).

    Results are always read from run folders: a job that was killed, ran out of memory
    or never started leaves no record, and this one stands in for it (the running
    marker it left is removed, since nothing runs the cell any more)."""
    if wrote_record(results_dir, cell["run_id"], before):
        return
    write_record(results_dir, failed_record(cell, error))
    (run_dir(results_dir, cell["run_id"]) / RUNNING).unlink(missing_ok=True)
