"""What a cell costs: per-cell peak memory (not the process's peak since it started), wall
time per stage and per trainer phase in every record, the cost columns of runs.csv and
the leaderboard, the report's cost table, and records from before all this still read."""

import json
import time

import numpy as np
import pandas as pd
import pytest
import torch

from gtbench.api import Method, Phase
from gtbench.launch import resources
from gtbench.launch.resources import PeakMemory
from gtbench.results.leaderboard import write_tables
from gtbench.results.report import write_report
from gtbench.train.trainer import train
from tests.helpers import FAST, gtbench
from tests.train.test_trainer import _context

BIG_MB = 300


def _allocate_and_free() -> None:
    block = np.ones(BIG_MB * 2**20 // 8)  # every page written: resident
    time.sleep(0.1)  # longer than the sampler's period
    del block


@pytest.mark.parametrize("how", ["vmhwm", "sampled"])
def test_peak_memory_is_the_cells_own_not_the_process_peak_so_far(how, monkeypatch):
    if how == "vmhwm" and not resources._reset_high_water_mark():
        pytest.skip("this kernel cannot reset the resident high-water mark")
    if how == "sampled":
        monkeypatch.setattr(resources, "_reset_high_water_mark", lambda: False)
    big = PeakMemory().start()
    _allocate_and_free()
    big = big.stop()
    small = PeakMemory().start().stop()  # a later cell of the same worker process
    assert big["peak_rss_measure"] == small["peak_rss_measure"] == how
    assert big["peak_rss_mb"] - small["peak_rss_mb"] > 0.8 * BIG_MB
    assert small["peak_rss_mb"] > 0 and "cuda_peak_mb" not in small


def test_process_max_is_the_last_resort(monkeypatch):
    monkeypatch.setattr(resources, "_reset_high_water_mark", lambda: False)
    monkeypatch.setattr(resources, "_resident_reader", lambda: None)
    memory = PeakMemory().start().stop()
    assert memory["peak_rss_measure"] == "process-max" and memory["peak_rss_mb"] > 0


class _TwoPhases(Method):
    name = "two-phases"

    def phases(self, ctx):  # noqa: ANN001, ANN201
        return [Phase("probe", 2), Phase("main")]

    def setup(self, ctx):  # noqa: ANN001
        time.sleep(0.05)

    def on_phase_start(self, ctx, phase):  # noqa: ANN001
        time.sleep(0.2 if phase.name == "probe" else 0.0)


def test_the_trainer_times_setup_each_phase_and_hooks_without_the_curve():
    ctx = _context(iters=4)
    ctx.curve_steps, ctx.on_curve = (1, 3), lambda step, g_ema: time.sleep(0.3)
    started = time.perf_counter()
    train(ctx, _TwoPhases())
    wall = time.perf_counter() - started
    seconds = ctx.seconds
    assert set(seconds) == {"setup", "probe", "main", "phase_hooks"}
    assert seconds["setup"] >= 0.05
    assert seconds["probe"] >= seconds["phase_hooks"] >= 0.2
    # the two curve evaluations (0.3 s each) are in no part: the parts sum to less
    assert sum(v for k, v in seconds.items() if k != "phase_hooks") <= wall - 0.6


def test_records_tables_and_report_carry_the_cost(tmp_path):
    result = gtbench("run", *FAST, "--methods", "finetune", "--seeds", "0", results=tmp_path)
    assert result.exit_code == 0, result.output
    ok = pd.read_csv(tmp_path / "runs.csv").query("status == 'ok'")
    record = json.loads((tmp_path / "runs" / ok["run_id"].iloc[0] / "record.json").read_text())
    timings = record["timings"]
    stages = {"setup_s", "train_s", "batchnorm_s", "eval_s", "save_s", "total_s"}
    assert timings["cpu_s"] > 0
    assert stages | {"train_setup_s", "train_main_s", "train_phase_hooks_s"} <= set(timings)
    assert sum(timings[k] for k in stages - {"total_s"}) <= timings["total_s"]
    assert record["memory"]["peak_rss_mb"] > 0
    assert record["memory"]["peak_rss_measure"] in {"vmhwm", "sampled", "process-max"}
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert {"peak_rss_mb", "total_s", "train_main_s"} <= set(runs.columns)
    board = pd.read_csv(tmp_path / "leaderboard.csv")
    row = board[board["method"] == "finetune"].iloc[0]
    assert row["peak_rss_mb_max"] == runs.loc[runs["method"] == "finetune", "peak_rss_mb"].max()
    assert row["total_s_mean"] > 0
    path, _ = write_report(tmp_path, memorised=False)
    html = path.read_text()
    assert 'id="cost"' in html and "peak RSS MB" in html and "total s" in html


def test_records_without_the_cost_fields_still_read(tmp_path):
    result = gtbench("run", *FAST, "--methods", "finetune", "--seeds", "0", results=tmp_path)
    assert result.exit_code == 0, result.output
    for path in (tmp_path / "runs").glob("*/record.json"):  # as records were written before
        record = json.loads(path.read_text())
        record.pop("memory", None)
        old = ("train_s", "eval_s")
        record["timings"] = {k: v for k, v in record["timings"].items() if k in old}
        path.write_text(json.dumps(record))
    write_tables(tmp_path)
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert "peak_rss_mb" not in runs and "train_s" in runs
    board = pd.read_csv(tmp_path / "leaderboard.csv")
    assert "peak_rss_mb_max" not in board and "train_s_mean" in board
    html = write_report(tmp_path, memorised=False)[0].read_text()
    assert 'id="cost"' in html and "train s" in html and "peak RSS MB" not in html


def test_cuda_peak_is_reset_per_cell():
    if not torch.cuda.is_available():
        pytest.skip("no GPU")
    big = PeakMemory(cuda=True).start()
    block = torch.ones(64 * 2**20 // 4, device="cuda")
    del block
    big = big.stop()
    small = PeakMemory(cuda=True).start().stop()
    assert big["cuda_peak_mb"] >= 64 > small["cuda_peak_mb"]
