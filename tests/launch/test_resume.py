"""A sweep killed with SIGKILL mid-way and rerun ends with every cell exactly once and the
same leaderboard as an uninterrupted sweep."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from gtbench.results.records import iter_records
from tests.helpers import FAST, gtbench

SWEEP = [*FAST, "--methods", "scratch,finetune", "--seeds", "0,1,2"]
TIMINGS = ("_s_mean", "_s_std", "_mb_max")  # wall times and peak memory


def _sweep(results: Path) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen(
        [sys.executable, "-m", "gtbench.cli.main", "run", *SWEEP, "--results", str(results)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )


def _board(results: Path) -> pd.DataFrame:
    board = pd.read_csv(results / "leaderboard.csv")
    return board[[c for c in board.columns if not c.endswith(TIMINGS)]]


def test_sigkill_then_resume(tmp_path):
    killed = tmp_path / "killed"
    process = _sweep(killed)
    deadline = time.time() + 120
    while len(list(killed.glob("runs/*/record.json"))) < 2:
        assert process.poll() is None, process.stderr.read().decode()
        assert time.time() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = len(list(killed.glob("runs/*/record.json")))
    assert done_before < 6

    resumed = _sweep(killed)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err.decode()
    assert f"{done_before} already done" in err.decode()
    records = list(iter_records(killed))
    assert len(records) == 6 and len({r["run_id"] for r in records}) == 6
    assert all(r["status"] == "ok" for r in records)

    clean = tmp_path / "clean"
    straight = _sweep(clean)
    _, err = straight.communicate(timeout=300)
    assert straight.returncode == 0, err.decode()
    pd.testing.assert_frame_equal(_board(killed), _board(clean))


def test_sigterm_stops_cleanly(tmp_path):
    process = _sweep(tmp_path)
    deadline = time.time() + 120
    while not list(tmp_path.glob("runs/*/record.json")):
        assert process.poll() is None and time.time() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err.decode()
    assert "interrupted" in err.decode() and "Traceback" not in err.decode()
    records = list(iter_records(tmp_path))
    assert len(records) == len(list(tmp_path.glob("runs/*/record.json"))) < 6
    assert not list(tmp_path.rglob("*.tmp"))
    # the tables are rebuilt on interruption, from the records written so far
    assert len(pd.read_csv(tmp_path / "runs.csv")) == len(records)


def test_tables_are_built_once_per_sweep_and_on_demand(tmp_path, monkeypatch):
    from gtbench.launch import sweep

    calls = []
    real = sweep.write_tables

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(sweep, "write_tables", counting)
    args = [*FAST, "--methods", "scratch,finetune", "--seeds", "0,1"]
    result = gtbench("run", *args, "--reference", "scratch", results=tmp_path)
    assert result.exit_code == 0, result.output
    assert len(calls) == 1  # not once per cell (4 cells)
    assert len(pd.read_csv(tmp_path / "runs.csv")) == 4
    assert set(pd.read_csv(tmp_path / "leaderboard.csv")["reference"]) == {"scratch"}
    (tmp_path / "leaderboard.csv").unlink()
    assert gtbench("leaderboard", results=tmp_path).exit_code == 0
    assert (tmp_path / "leaderboard.csv").exists()
