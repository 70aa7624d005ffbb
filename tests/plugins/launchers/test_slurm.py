"""The ``slurm`` launcher: its parameters, chunked arrays and lost-job records (fast, with
a stand-in executor and submitit's in-process ``debug`` cluster), and a sweep on
submitit's ``local`` executor — real subprocesses — with a cell that raises, one that
is pre-empted and requeued, and one whose job is killed (slow)."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from gtbench.api import LaunchRequest
from gtbench.errors import GtbenchError, UsageError
from gtbench.launch.runner import RUNNING
from gtbench.launch.sweep import run_sweep
from gtbench.plan.cells import Plan
from gtbench.plugin import registry
from gtbench.results.records import load_record, write_record
from tests.plugins.launchers.common import board, debug_plan, failing, variant

submitit = pytest.importorskip("submitit", reason="submitit not installed (gtbench[slurm])")


def test_missing_extra_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "submitit", None)  # find_spec then reports it missing
    with pytest.raises(GtbenchError, match=r"pip install 'gtbench\[slurm\]'") as caught:
        registry.launchers().create("slurm:partition=gpu")
    assert "\n" not in str(caught.value)


def test_parameters_and_extra_sbatch_parameters():
    launcher = registry.launchers().create("slurm:partition=gpu,time=90,extra=account=lab;qos=high")
    assert launcher.params["time"] == 90 and launcher.extra == {"account": "lab", "qos": "high"}
    with pytest.raises(GtbenchError, match="cluster must be"):
        registry.launchers().create("slurm:cluster=pbs")
    with pytest.raises(UsageError, match="key=value"):
        registry.launchers().create("slurm:extra=oops")


def test_no_slurm_here_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no srun
    launcher = registry.launchers().create("slurm")
    with pytest.raises(GtbenchError, match="srun") as caught:
        launcher.executor(str(tmp_path))
    assert "\n" not in str(caught.value)


def test_sbatch_file_carries_the_parameters(tmp_path, monkeypatch):
    srun = tmp_path / "bin" / "srun"  # submitit only checks that srun exists
    srun.parent.mkdir()
    srun.write_text("#!/bin/sh\n")
    srun.chmod(0o755)
    monkeypatch.setenv("PATH", f"{srun.parent}{os.pathsep}{os.environ['PATH']}")
    launcher = registry.launchers().create(
        "slurm:partition=gpu,time=90,gpus_per_node=2,mem_gb=32,array_parallelism=7,"
        "extra=account=lab;qos=high"
    )
    executor = launcher.executor(str(tmp_path))._executor  # the SlurmExecutor inside
    text = executor._make_submission_file_text("python -m x", "uid")
    for line in (
        "--partition=gpu",
        "--time=90",
        "--gpus-per-node=2",
        "--mem=32GB",
        "--account=lab",
        "--qos=high",
        "--signal=USR2@",
    ):
        assert line in text, line
    assert executor.parameters["array_parallelism"] == 7


class _FakeJob:
    def __init__(self, call: Any, index: int) -> None:
        self.call, self.job_id, self.state, self.polls = call, f"100_{index}", "RUNNING", 0

    def done(self) -> bool:
        self.polls += 1
        return self.polls > 1

    def exception(self) -> BaseException:
        return RuntimeError("node failure")


class _FakeExecutor:
    """Records batch sizes; jobs 'run' nothing, except that even ones write a record."""

    def __init__(self, results: str) -> None:
        self.results, self.batches, self.count = results, [], 0

    def batch(self):  # noqa: ANN201 - a context manager
        executor = self

        class _Batch:
            def __enter__(self) -> None:
                executor.batches.append(0)

            def __exit__(self, *exc: object) -> None:
                return None

        return _Batch()

    def submit(self, call: Any) -> _FakeJob:
        self.batches[-1] += 1
        self.count += 1
        if self.count % 2 == 0:
            cell = call.cell
            write_record(self.results, {**cell, "status": "ok", "metrics": {}, "timings": {}})
        return _FakeJob(call, self.count)


def test_arrays_are_chunked_and_lost_jobs_recorded(tmp_path, monkeypatch):
    cells = [
        {
            "run_id": f"cell{i}",
            "source": {},
            "method": {"params": {}},
            "dataset": {},
            "shots": 10,
            "seed": i,
            "eval": {},
            "train": {},
        }
        for i in range(5)
    ]
    launcher = registry.launchers().create("slurm:max_array_size=2,poll_s=0")
    fake = _FakeExecutor(str(tmp_path))
    monkeypatch.setattr(type(launcher), "executor", lambda self, results: fake)
    done: list[str] = []
    launcher.launch(LaunchRequest(cells, str(tmp_path)), done.append)
    assert fake.batches == [2, 2, 1]
    assert sorted(done) == [c["run_id"] for c in cells]
    statuses = [load_record(tmp_path, c["run_id"])["status"] for c in cells]
    assert statuses == ["failed", "ok", "failed", "ok", "failed"]
    error = load_record(tmp_path, "cell0")["error"]
    assert "wrote no record" in error and "node failure" in error


def test_debug_cluster_sweep_with_a_failing_cell(tmp_path):
    plan = debug_plan()
    bad = failing(plan.cells[1])
    sweep = Plan(cells=[*plan.cells, bad])
    spec = "slurm:cluster=debug,gpus_per_node=0,poll_s=0,max_array_size=2"
    summary = run_sweep(sweep, tmp_path, launcher=spec)
    assert summary.statuses == {"ok": 3, "failed": 1}
    assert "channels" in load_record(tmp_path, bad["run_id"])["error"]
    assert not list(tmp_path.glob(f"runs/*/{RUNNING}"))


def test_no_wait_returns_after_submitting(tmp_path, capsys):
    plan = debug_plan()
    spec = "slurm:cluster=debug,gpus_per_node=0,wait=false"
    summary = run_sweep(Plan(cells=plan.cells[:1]), tmp_path, launcher=spec)
    assert not summary.statuses  # nothing waited for
    assert "gtbench status" in capsys.readouterr().err


# --------------------------------------------------------------------------- slow


def _wait_for_marker(results: Path, run_id: str, thread: threading.Thread) -> int:
    marker = results / "runs" / run_id / RUNNING
    deadline = time.time() + 120
    while not marker.exists():
        assert thread.is_alive() and time.time() < deadline, "cell never started"
        time.sleep(0.1)
    time.sleep(1.0)  # well into training
    return json.loads(marker.read_text())["pid"]


@pytest.mark.slow
def test_local_executor_sweep_failure_requeue_and_kill(tmp_path, monkeypatch):
    """Real subprocesses: a raising cell is recorded as failed, a pre-empted one (USR2,
    as SLURM sends before a time limit or pre-emption) is requeued and finishes, a
    SIGKILLed one gets a failed record from the parent; the others finish."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    plan = debug_plan()
    bad = failing(plan.cells[2])
    preempted = variant(plan.cells[2], train__iters=1500)
    killed = variant(plan.cells[2], train__iters=1500, seed=1)
    sweep = Plan(cells=[preempted, killed, *plan.cells, bad])
    spec = "slurm:cluster=local,gpus_per_node=0,time=30,poll_s=0.2,array_parallelism=3"
    summary: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: summary.update(result=run_sweep(sweep, tmp_path, launcher=spec))
    )
    thread.start()
    try:
        os.kill(_wait_for_marker(tmp_path, preempted["run_id"], thread), signal.SIGUSR2)
        os.kill(_wait_for_marker(tmp_path, killed["run_id"], thread), signal.SIGKILL)
    finally:
        thread.join(timeout=300)
    assert not thread.is_alive()
    result = summary["result"]
    assert result.statuses == {"ok": 4, "failed": 2}, result.problems
    assert load_record(tmp_path, preempted["run_id"])["status"] == "ok"
    logs = "".join(p.read_text() for p in (tmp_path / "slurm-logs").glob("*_log.err"))
    assert f"cell {preempted['run_id']} attempt 2" in logs
    assert "channels" in load_record(tmp_path, bad["run_id"])["error"]
    assert "wrote no record" in load_record(tmp_path, killed["run_id"])["error"]
    assert not list(tmp_path.glob(f"runs/*/{RUNNING}"))
    assert len(board(tmp_path)) == 4  # 3 debug methods + finetune at 1500 iters


def test_no_wait_option_of_run_sweep(tmp_path, capsys):
    plan = debug_plan()
    spec = "slurm:cluster=debug,gpus_per_node=0"
    summary = run_sweep(Plan(cells=plan.cells[:1]), tmp_path, launcher=spec, wait=False)
    assert not summary.statuses
    assert "gtbench status" in capsys.readouterr().err


def test_a_failed_force_rerun_keeps_the_jobs_own_error(tmp_path):
    """A ``--force`` rerun that fails writes ``record.failed.json`` beside the kept ok
    record; the parent must not replace the job's error with "ended without a record"."""
    from gtbench.api import FAILED_RECORD, run_dir, write_record
    from gtbench_plugins.launchers._common import record_lost_cell, record_stamp

    cell = {
        "run_id": "cell",
        "source": {},
        "method": {"params": {}},
        "dataset": {},
        "shots": 10,
        "seed": 0,
        "eval": {},
        "train": {},
    }
    base = {k: cell[k] for k in ("run_id", "source", "method", "dataset", "shots", "seed")}
    write_record(tmp_path, {**base, "status": "ok", "metrics": {"fid": 1.0}})
    before = record_stamp(tmp_path, "cell")
    write_record(tmp_path, {**base, "status": "failed", "error": "CUDA out of memory"})
    failed = run_dir(tmp_path, "cell") / FAILED_RECORD
    record_lost_cell(cell, tmp_path, "job ended without a record", before)
    assert json.loads(failed.read_text())["error"] == "CUDA out of memory"
    assert load_record(tmp_path, "cell")["status"] == "ok"
    # a job that wrote nothing at all still gets the parent's record
    before = record_stamp(tmp_path, "cell")
    record_lost_cell(cell, tmp_path, "node failure", before)
    assert json.loads(failed.read_text())["error"] == "node failure"
