"""``gtbench status``: where the cells of a results folder stand, read from disk alone.

Works while a sweep runs anywhere (a cluster writing into a shared folder, a sweep
submitted with ``wait=false``): planned cells come from ``sweep.json``, finished ones
from their records, running ones from the ``running.json`` marker the runner keeps in
a run folder while the cell runs. A marker whose process is gone from this host is
shown as ``interrupted`` (the cell reruns with the next ``gtbench run``). An ``ok``
record made by other plugin/trainer/protocol versions or superseded by a newer one is
``stale`` (:func:`gtbench.results.records.stale_reasons`; the next ``gtbench run`` reruns it).
"""

from __future__ import annotations

import json
import os
import socket
from collections import Counter
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gtbench.results.leaderboard import plain_lines
from gtbench.results.records import (
    PLAN_JSON,
    RECORD,
    RUNNING,
    CorruptRecord,
    read_record,
    runs_dir,
    stale_reasons,
)

STATES = ("pending", "running", "interrupted", "done", "stale", "failed", "diverged")
_COLOURS = {"done": "green", "running": "cyan", "failed": "red", "diverged": "red"}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def _marker_state(path: Path) -> tuple[str, str] | None:
    """(``running``|``interrupted``, where) from a running marker, or None without one."""
    try:
        marker = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return "running", "?"  # being replaced right now
    host, pid = str(marker.get("host", "?")), int(marker.get("pid", 0))
    where = f"{host}:{pid}"
    if host == socket.gethostname() and not _alive(pid):
        return "interrupted", where
    return "running", where


def cell_states(results_dir: str | Path) -> list[dict[str, Any]]:
    """Every planned cell, and every other run folder found, with its state."""
    results_dir = Path(results_dir)
    rows: dict[str, dict[str, Any]] = {}
    plan = results_dir / PLAN_JSON
    if plan.exists():
        try:
            for cell in json.loads(plan.read_text()).get("cells", []):
                rows[cell["run_id"]] = {"run_id": cell["run_id"], "label": cell.get("label", "")}
        except (OSError, ValueError, KeyError, TypeError):
            pass  # an unreadable plan: show what the run folders say
    root = runs_dir(results_dir)
    folders = {p.name: p for p in root.iterdir() if p.is_dir()} if root.is_dir() else {}
    records: dict[str, dict[str, Any]] = {}
    for run_id in sorted(set(rows) | set(folders)):
        try:
            path = root / run_id / RECORD
            records[run_id] = read_record(path) if path.exists() else None
        except CorruptRecord:
            records[run_id] = None
    stale = stale_reasons(results_dir, [r for r in records.values() if r is not None])
    states = []
    for run_id in sorted(set(rows) | set(folders)):
        folder = root / run_id
        record = records[run_id]
        marker = _marker_state(folder / RUNNING)
        if run_id not in rows and record is None and marker is None:
            continue  # a folder that holds no cell we know of
        row = rows.get(run_id) or {"run_id": run_id, "label": _label(record) if record else ""}
        row.update(state="pending", where="", error="")
        if record is not None:
            row["state"] = "done" if record["status"] == "ok" else record["status"]
            row["error"] = record.get("error") or ""
            if row["state"] == "done" and run_id in stale:
                row["state"], row["error"] = "stale", stale[run_id]
        if marker is not None:
            row["state"], row["where"] = marker
        states.append(row)
    return states


def _label(record: dict[str, Any]) -> str:
    def name(ref: Any) -> str:
        return ref.get("name", "?") if isinstance(ref, dict) else str(ref)

    return (
        f"{name(record.get('source'))} → {name(record.get('dataset'))} · "
        f"{name(record.get('method'))} · {record.get('shots')}-shot · seed {record.get('seed')}"
    )


@click.command("status")
@click.option("--results", default="results", show_default=True, help="results folder")
@click.option("--all", "show_all", is_flag=True, help="list done cells too")
@click.option("--json", "as_json", is_flag=True, help="one JSON object: counts and cells")
def status_command(results: str, show_all: bool, as_json: bool) -> None:
    """Show pending, running, interrupted, done and failed cells of a results folder."""
    from gtbench.errors import UsageError

    if not Path(results).is_dir():
        raise UsageError(f"no results folder {results!r}")
    rows = cell_states(results)
    counts = Counter(row["state"] for row in rows)
    if as_json:
        payload = {"counts": {s: counts[s] for s in STATES}, "cells": rows}
        click.echo(json.dumps(payload, indent=2))
        return
    summary = ", ".join(f"{counts[s]} {s}" for s in STATES if counts[s]) or "no cells"
    click.echo(f"{results}: {len(rows)} cells: {summary}")
    shown = [row for row in rows if show_all or row["state"] != "done"]
    if not shown:
        return
    headers = ["state", "cell", "run id", "where / error"]
    order = {
        state: i
        for i, state in enumerate(
            ("running", "interrupted", "failed", "diverged", "pending", "stale", "done")
        )
    }
    shown = sorted(shown, key=lambda r: (order[r["state"]], r["label"]))
    cells = [[r["state"], r["label"], r["run_id"], r["where"] or r["error"] or ""] for r in shown]
    from gtbench.cli.main import interactive

    if not interactive():  # a log: one plain line per cell
        for line in plain_lines("", headers, cells):
            click.echo(line)
        return
    table = Table(show_edge=False)
    for column in headers:
        table.add_column(column)
    for state, label, run_id, detail in cells:
        colour = _COLOURS.get(state, "yellow")
        table.add_row(f"[{colour}]{state}[/]", escape(label), run_id, escape(detail))
    Console().print(table, highlight=False)
