"""A sweep: plan the cells, skip those already done (resume), hand the rest to a launcher,
and rebuild the tables after every finished cell."""

from __future__ import annotations

import json
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gtbench.errors import UsageError
from gtbench.measure.eval_settings import DEFAULT_REFERENCE
from gtbench.plan.cells import Cell, Plan, PluginRef, Skipped, describe, make_plugin
from gtbench.plan.identity import (
    canonical_json,
    changed_versions,
    difference,
    parameter_changes,
    same_configuration,
)
from gtbench.plugin import registry
from gtbench.plugin.base import LaunchRequest
from gtbench.plugin.spec import parse_spec
from gtbench.results.leaderboard import write_tables
from gtbench.results.records import (
    FAILED_RECORD,
    PLAN_JSON,
    RECORD,
    CorruptRecord,
    Record,
    atomic_write_text,
    iter_records,
    read_record,
    run_dir,
)


@dataclass
class StaleRecord:
    """An ``ok`` record of a planned cell's configuration made by other code or data: its
    run id differs from the cell's, so the cell runs again (unless ``--keep-stale``)."""

    run_id: str  # the stale record's
    cell_run_id: str  # the planned cell's
    label: str
    reason: str
    # False: only the parameters of a plugin whose version changed differ (their defaults
    # may have moved with it); such a record stands for the cell in the listing only and
    # is never kept by --keep-stale
    exact: bool = True


@dataclass
class SweepSummary:
    planned: int = 0
    already_done: int = 0
    pending: list[Cell] = field(default_factory=list)  # cells to run
    stale: list[StaleRecord] = field(default_factory=list)
    kept_stale: int = 0  # cells counted as done on a stale record (--keep-stale)
    statuses: Counter[str] = field(default_factory=Counter)
    skipped: list[Skipped] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # failed/diverged cells, one line each
    notes: list[str] = field(default_factory=list)  # corrupt records found, ...
    wall_s: float = 0.0

    @property
    def exit_code(self) -> int:
        return 1 if self.statuses["failed"] or self.statuses["diverged"] else 0


def cell_label(cell: Cell) -> str:
    return (
        f"{describe(cell['source'], 'source')} → {describe(cell['dataset'], 'dataset')} "
        f"· {describe(cell['method'], 'method')} · {cell['shots']}-shot · seed {cell['seed']}"
    )


def ensure_writable(results_dir: Path) -> None:
    """Fail early, in one line, when the results folder cannot be written."""
    try:
        (results_dir / "runs").mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=results_dir, prefix=".probe-"):
            pass
    except OSError as error:
        raise UsageError(
            f"results folder {results_dir} is not writable: {error.strerror or error}"
        ) from None


def pending_cells(plan: Plan, results_dir: Path, force: bool) -> tuple[list[Cell], int, list[str]]:
    """Cells to run, how many are already done, and notes on corrupt records found."""
    pending, done, notes = [], 0, []
    for cell in plan.cells:
        path = run_dir(results_dir, cell["run_id"]) / RECORD
        if path.exists() and not force:
            try:
                if read_record(path)["status"] == "ok":
                    done += 1
                    continue
            except CorruptRecord as error:
                notes.append(f"corrupt record, running the cell again: {error}")
        pending.append(cell)
    return pending, done, notes


def stale_records(pending: list[Cell], results_dir: Path) -> list[StaleRecord]:
    """The ``ok`` records of the pending cells' configurations made by other plugin,
    trainer or protocol versions, other data or other extractor weights (so under
    another run id): one per record, the cell it stands for, and what changed."""
    wanted = {cell["run_id"]: cell for cell in pending}
    found = []
    for record in iter_records(results_dir):
        if record["status"] != "ok" or record["run_id"] in wanted:
            continue
        match = next((cell for cell in pending if same_configuration(record, cell)), None)
        if match is not None:
            reason = difference(record, match)
            found.append(StaleRecord(record["run_id"], match["run_id"], cell_label(match), reason))
            continue
        for cell in pending:
            if same_configuration(record, cell, changed_versions(record, cell)):
                reason = difference(record, cell)
                changes = parameter_changes(record, cell)
                reason += f"; {changes}" if changes else ""
                label = cell_label(cell)
                found.append(StaleRecord(record["run_id"], cell["run_id"], label, reason, False))
                break
    return found


def triage(
    plan: Plan, results_dir: str | Path, *, force: bool = False, keep_stale: bool = False
) -> SweepSummary:
    """What a sweep would do, without doing it: cells done, cells to run, the stale
    records found for them, and the cells ``--keep-stale`` counts as done."""
    results_dir = Path(results_dir)
    summary = SweepSummary(planned=len(plan.cells), skipped=list(plan.skipped))
    pending, summary.already_done, summary.notes = pending_cells(plan, results_dir, force)
    summary.stale = stale_records(pending, results_dir)
    if keep_stale and summary.stale:
        kept = {stale.cell_run_id for stale in summary.stale if stale.exact}
        pending = [cell for cell in pending if cell["run_id"] not in kept]
        summary.kept_stale = len(kept)
        summary.already_done += len(kept)
    summary.pending = pending
    return summary


def check_device() -> None:
    """``--device`` / ``GTBENCH_DEVICE`` names a device this machine has (one line if not)."""
    import os

    wanted = os.environ.get("GTBENCH_DEVICE", "").strip()
    if not wanted.startswith("cuda"):
        return
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    index = int(wanted.partition(":")[2] or 0)
    if index >= count:
        raise UsageError(f"--device {wanted}: this machine has {count} visible CUDA device(s)")


def check_contracts(cells: list[Cell]) -> None:
    """Every distinct dataset and source of ``cells`` returns what its ``info`` declares
    (:mod:`gtbench.plugin.contracts`): a broken plugin fails the sweep here, in one line naming
    it, instead of training and landing in the leaderboard."""
    from gtbench.plugin.contracts import check_dataset, check_source

    datasets: dict[str, PluginRef] = {}
    sources: dict[str, tuple[PluginRef, bool]] = {}
    for cell in cells:
        datasets.setdefault(canonical_json(cell["dataset"]), cell["dataset"])
        key = canonical_json(cell["source"])
        trains = bool(cell["train"]) or sources.get(key, (None, False))[1]
        sources[key] = (cell["source"], trains)
    for ref in datasets.values():
        check_dataset(make_plugin("dataset", ref))
    for ref, trains in sources.values():
        check_source(make_plugin("source", ref), needs_discriminator=trains)


def prefetch_assets(cells: list[Cell]) -> None:
    """Fetch (or find in the cache) every asset the cells' plugins declare, here and now.

    A missing asset then fails the sweep once, in one line, before anything trains, and
    cluster jobs find everything in the (shared) cache even on nodes without network."""
    from gtbench.files.assets import fetch

    seen: set[tuple[str, str]] = set()
    for cell in cells:
        refs = [(k, cell[k]["name"]) for k in ("source", "method", "dataset")]
        refs.append(("extractor", cell["eval"]["extractor"]["name"]))
        for kind, name in refs:
            if (kind, name) in seen:
                continue
            seen.add((kind, name))
            for asset in registry.registry(kind).get(name).assets:
                fetch(asset)


def preflight(pending: list[Cell], *, check_this_device: bool = True) -> None:
    """The checks a sweep makes before anything trains, and ``--dry-run`` makes too: the
    device exists (``check_this_device``: cells run on this machine), the extractor's
    weights are here, every declared asset is fetched, and every dataset and source keeps
    its contract (:func:`check_contracts`). Each failure is one line."""
    if not pending:
        return
    if check_this_device:
        check_device()
    make_plugin("extractor", pending[0]["eval"]["extractor"]).check_available()
    prefetch_assets(pending)
    check_contracts(pending)


def _write_plan(plan: Plan, results_dir: Path, kept: dict[str, str] | None = None) -> None:
    payload = {
        "cells": [{"run_id": c["run_id"], "label": cell_label(c)} for c in plan.cells],
        "skipped": [vars(s) for s in plan.skipped],
        "kept_stale": kept or {},  # stale record → the cell it stands for (--keep-stale)
    }
    atomic_write_text(results_dir / PLAN_JSON, json.dumps(payload, indent=2) + "\n")


def run_sweep(
    plan: Plan,
    results_dir: str | Path,
    *,
    launcher: str = "local",
    workers: int = 1,
    force: bool = False,
    keep_stale: bool = False,
    on_start: Callable[[int], None] | None = None,
    on_stale: Callable[[list[StaleRecord]], None] | None = None,
    on_cell_done: Callable[[Cell, Record | None], None] | None = None,
    progress: Callable[[str, str, int, int], None] | None = None,
    wait: bool = True,
    reference: str = DEFAULT_REFERENCE,
) -> SweepSummary:
    """Run every pending cell of ``plan``; returns what happened.

    Records of the cells' configurations made by other plugin/trainer/protocol versions
    or other data are *stale*: ``on_stale`` hears of them before anything runs, and
    their cells run again under their new run ids (the old records stay, set apart by
    :func:`gtbench.results.records.stale_reasons`), unless ``keep_stale`` counts them as done.

    The tables (``runs.csv``, ``leaderboard.csv``, ``ranks.csv``, against ``reference``)
    are rebuilt once, when the launcher returns or is interrupted, not after every cell.

    Raises one-line errors (unwritable folder, missing extractor weights, broken plugins)
    before any cell trains."""
    start = time.perf_counter()
    results_dir = Path(results_dir)
    ensure_writable(results_dir)
    summary = triage(plan, results_dir, force=force, keep_stale=keep_stale)
    pending = summary.pending
    if on_stale is not None and summary.stale:
        on_stale(summary.stale)
    launcher_plugin = registry.launchers().create(parse_spec(launcher))
    if not wait and not launcher_plugin.can_detach:
        raise UsageError(
            f"--no-wait needs a launcher whose jobs outlive this process (e.g. slurm); "
            f"{launcher_plugin.name!r} runs the cells itself"
        )
    preflight(pending, check_this_device=not launcher_plugin.can_detach)
    kept = {s.run_id: s.cell_run_id for s in summary.stale if s.exact} if keep_stale else {}
    _write_plan(plan, results_dir, kept)
    by_id = {cell["run_id"]: cell for cell in pending}
    if on_start is not None:
        on_start(len(pending))

    def done(run_id: str) -> None:
        record, note = None, ""
        folder = run_dir(results_dir, run_id)
        # a failed rerun of an ok cell is written beside the kept record
        for name in (FAILED_RECORD, RECORD):
            try:
                record = read_record(folder / name)
            except CorruptRecord:
                continue
            if name == FAILED_RECORD:
                note = f" (the previous ok record is kept; this attempt: runs/{run_id}/{name})"
            break
        status = record["status"] if record else "failed"
        summary.statuses[status] += 1
        if status != "ok":
            error = record.get("error") if record else "no record written"
            summary.problems.append(f"{status}: {cell_label(by_id[run_id])}: {error}{note}")
        if on_cell_done is not None:
            on_cell_done(by_id[run_id], record)

    try:
        if pending:
            request = LaunchRequest(pending, str(results_dir), workers, {"wait": wait}, progress)
            launcher_plugin.launch(request, done)
    finally:  # once, at the end or on interruption: never after every cell
        write_tables(results_dir, reference)
    summary.wall_s = time.perf_counter() - start
    return summary
