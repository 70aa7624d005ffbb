"""The `process` launcher: worker processes give the same leaderboard as `local`; GPUs are
handed out per worker from the parent's visible devices (faked here: no GPU needed), a
dead worker is replaced on the same GPU, more workers than GPUs are refused unless
shared, and SIGTERM cancels the queued cells."""

from __future__ import annotations

import os
import signal
import threading
import time

import pandas as pd
import pytest

from gtbench.api import LaunchRequest
from gtbench.errors import UsageError
from gtbench.launcher import load_record
from gtbench.plugin import registry
from gtbench_plugins.launchers import process
from tests.helpers import FAST, gtbench
from tests.plugins.launchers import _fake_worker
from tests.plugins.launchers.common import debug_plan, variant

SWEEP = [*FAST, "--methods", "scratch,finetune", "--seeds", "0,1"]


def _board(results):
    board = pd.read_csv(results / "leaderboard.csv")
    return board[[c for c in board.columns if not c.endswith(("_s_mean", "_s_std", "_mb_max"))]]


def test_process_launcher_matches_local(tmp_path):
    local, process_dir = tmp_path / "local", tmp_path / "process"
    assert gtbench("run", *SWEEP, results=local).exit_code == 0
    result = gtbench("run", *SWEEP, "--launcher", "process", "--workers", "2", results=process_dir)
    assert result.exit_code == 0, result.output
    assert len(list(process_dir.glob("runs/*/record.json"))) == 4
    pd.testing.assert_frame_equal(_board(local), _board(process_dir))


@pytest.fixture
def two_gpus(monkeypatch):
    """A machine with 4 GPUs of which the parent sees GPUs 3 and 5 (its own mask)."""
    monkeypatch.setattr(process, "_gpu_count", lambda: 2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    monkeypatch.delenv("GTBENCH_DEVICE", raising=False)
    monkeypatch.setattr(process, "_run", _fake_worker.run)


def _cells(n, **flags_by_index):
    base = debug_plan().cells[0]
    cells = [variant(base, seed=100 + i) for i in range(n)]
    for index, flags in flags_by_index.items():
        cells[int(index[1:])].update(flags)
    return cells


def test_visible_gpus_follow_the_parents_mask(monkeypatch):
    monkeypatch.setattr(process, "_gpu_count", lambda: 2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert process.visible_gpus() == ["3", "5"]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert process.visible_gpus() == ["0", "1"]
    monkeypatch.setattr(process, "_gpu_count", lambda: 0)
    assert process.visible_gpus() == []


def test_devices_per_worker():
    gpus = ["3", "5"]
    assert process.assign_devices(gpus, 0, False, None) == ["3", "5"]  # one per GPU
    assert process.assign_devices(gpus, 1, False, None) == ["3"]
    assert process.assign_devices(gpus, 3, True, None) == ["3", "5", "3"]  # shared
    assert process.assign_devices(gpus, 0, False, "cuda:1") == ["5"]
    assert process.assign_devices(gpus, 2, False, "cpu") == [None, None]
    cores = min(process.os.cpu_count() or 1, process.CPU_WORKERS_MAX)
    assert process.assign_devices([], 0, False, None) == [None] * cores  # one per core
    assert process.assign_devices([], 1, False, None) == [None]
    with pytest.raises(UsageError, match="more than the 2 visible GPU.*share_gpus=true"):
        process.assign_devices(gpus, 3, False, None)
    with pytest.raises(UsageError, match="only 2 GPU"):
        process.assign_devices(gpus, 0, False, "cuda:2")
    with pytest.raises(UsageError, match="no GPU visible"):
        process.assign_devices([], 0, False, "cuda")


def test_more_workers_than_gpus_is_refused_before_anything_starts(tmp_path, two_gpus):
    launcher = registry.launchers().create("process")
    done = []
    with pytest.raises(UsageError, match="share_gpus"):
        launcher.launch(LaunchRequest(_cells(3), str(tmp_path), workers=3), done.append)
    assert done == [] and not list(tmp_path.glob("*.env"))


def test_each_worker_keeps_its_gpu_and_a_dead_one_is_replaced_on_the_same_gpu(tmp_path, two_gpus):
    cells = _cells(6, c0={"die": True})
    for cell in cells[1:]:
        cell["sleep"] = 0.5
    done = []
    launcher = registry.launchers().create("process")
    launcher.launch(LaunchRequest(cells, str(tmp_path), workers=0), done.append)

    assert sorted(done) == sorted(c["run_id"] for c in cells)
    seen = _fake_worker.seen(tmp_path)
    assert set(seen) == {c["run_id"] for c in cells}
    # every cell ran masked to one of the parent's GPUs, as the worker's only device
    assert {s["CUDA_VISIBLE_DEVICES"] for s in seen.values()} == {"3", "5"}
    assert {s["GTBENCH_DEVICE"] for s in seen.values()} == {"cuda"}
    # the worker that died was replaced by a new process on the same GPU
    dead = seen[cells[0]["run_id"]]
    gpu = dead["CUDA_VISIBLE_DEVICES"]
    assert any(s["pid"] != dead["pid"] for s in seen.values() if s["CUDA_VISIBLE_DEVICES"] == gpu)
    assert len({s["pid"] for s in seen.values()}) == 3  # two lanes + one replacement
    record = load_record(tmp_path, cells[0]["run_id"])
    assert record["status"] == "failed" and record["error"] == "worker process died"


def test_sigterm_cancels_queued_cells_and_stops_the_worker(tmp_path, monkeypatch):
    monkeypatch.setattr(process, "_gpu_count", lambda: 0)
    monkeypatch.setattr(process, "_run", _fake_worker.run)
    cells = _cells(4)
    for cell in cells:
        cell["sleep"] = 30

    def terminate_when_the_first_cell_runs():
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob("*.env")) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=terminate_when_the_first_cell_runs, daemon=True).start()
    done = []
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        registry.launchers().create("process").launch(
            LaunchRequest(cells, str(tmp_path), workers=1), done.append
        )
    assert time.monotonic() - started < 25  # the running cell was stopped, not awaited
    seen = _fake_worker.seen(tmp_path)
    assert len(seen) == 1 and done == []  # the three queued cells never started
    (only,) = seen.values()
    with pytest.raises(ProcessLookupError):
        os.kill(only["pid"], 0)  # the worker is gone
