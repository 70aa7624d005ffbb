"""``gtbench status``: pending, running, interrupted, done and failed cells read from a
results folder, and the running marker the runner keeps while a cell runs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from click.testing import CliRunner

from gtbench.cli.status import cell_states, status_command
from gtbench.launch.runner import RUNNING, run_cell
from gtbench.measure.evaluation import PROTOCOL_VERSION
from gtbench.plan.identity import SCHEMA_VERSION
from gtbench.results.records import PLAN_JSON, atomic_write_text, run_dir, write_record
from gtbench.train.trainer import TRAINER_VERSION
from tests.plugins.launchers.common import debug_plan


def _record(run_id: str, status: str, seed: int = 0, method_version: str = "1") -> dict:
    """A record made by the installed code (current), unless told otherwise."""
    ref = {"name": "debug", "params": {}, "version": "1"}
    return {
        "schema_version": SCHEMA_VERSION,
        "protocol_version": PROTOCOL_VERSION,
        "trainer_version": TRAINER_VERSION,
        "run_id": run_id,
        "status": status,
        "source": ref,
        "method": {"name": "finetune", "params": {}, "version": method_version},
        "dataset": ref,
        "eval": {"extractor": ref},
        "shots": 10,
        "seed": seed,
        "error": "boom" if status != "ok" else None,
    }


def _marker(results, run_id: str, pid: int, host: str | None = None) -> None:
    payload = {"host": host or socket.gethostname(), "pid": pid, "started_at": 0}
    atomic_write_text(run_dir(results, run_id) / RUNNING, json.dumps(payload))


def test_states_of_a_results_folder(tmp_path):
    planned = ["done1", "failed1", "running1", "gone1", "pending1", "remote1"]
    cells = [{"run_id": r, "label": f"cell {r}"} for r in planned]
    atomic_write_text(tmp_path / PLAN_JSON, json.dumps({"cells": cells, "skipped": []}))
    write_record(tmp_path, _record("done1", "ok"))
    write_record(tmp_path, _record("failed1", "failed"))
    write_record(tmp_path, _record("older", "ok", seed=1))  # from an earlier sweep: listed
    write_record(tmp_path, _record("bumped", "ok", seed=2, method_version="0"))  # old method
    schema1 = _record("schema1", "ok", seed=3)
    del schema1["schema_version"]  # made before versions were part of run_id
    write_record(tmp_path, schema1)
    _marker(tmp_path, "running1", os.getpid())
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    _marker(tmp_path, "gone1", int(finished.stdout))  # its process has exited
    _marker(tmp_path, "remote1", 1, host="some-other-node")  # cannot check: running
    (tmp_path / "runs" / "not-a-cell").mkdir()

    states = {row["run_id"]: row["state"] for row in cell_states(tmp_path)}
    assert states == {
        "done1": "done",
        "failed1": "failed",
        "running1": "running",
        "gone1": "interrupted",
        "pending1": "pending",
        "remote1": "running",
        "older": "done",
        "bumped": "stale",
        "schema1": "stale",
    }
    reasons = {row["run_id"]: row["error"] for row in cell_states(tmp_path)}
    assert "method finetune version 0 → 1" in reasons["bumped"]
    assert "schema 1" in reasons["schema1"]

    result = CliRunner().invoke(status_command, ["--results", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.output)["counts"]
    assert counts == {
        "pending": 1,
        "running": 2,
        "interrupted": 1,
        "done": 2,
        "stale": 2,
        "failed": 1,
        "diverged": 0,
    }
    table = CliRunner().invoke(status_command, ["--results", str(tmp_path)])
    assert "9 cells" in table.output and "interrupted" in table.output
    assert "2 stale" in table.output and "bumped" in table.output  # stale ones are listed
    assert "cell done1" not in table.output  # done cells only with --all
    # not a terminal (a log): one plain line per cell, never wrapped, whatever the width
    lines = table.output.splitlines()
    assert lines[1].split() == ["state", "cell", "run", "id", "where", "/", "error"]
    assert len(lines) == 2 + 7  # the summary, the header, one line per cell not done
    by_id = {line.split()[2]: line for line in lines[2:] if line.split()[0] != "stale"}
    assert by_id["gone1"].startswith("interrupted")
    assert by_id["remote1"].endswith("some-other-node:1")


def test_missing_folder_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(status_command, ["--results", str(tmp_path / "nope")])
    assert result.exit_code != 0


def test_runner_keeps_a_marker_while_the_cell_runs(tmp_path):
    plan = debug_plan()
    cell = plan.cells[0]
    seen = []

    def report(stage: str, done: int, total: int) -> None:
        seen.append((run_dir(tmp_path, cell["run_id"]) / RUNNING).exists())

    assert run_cell(cell, tmp_path, report).status == "ok"
    assert seen and all(seen)
    assert not (run_dir(tmp_path, cell["run_id"]) / RUNNING).exists()
