"""The ``ray`` launcher: a missing extra is one line; a local Ray instance runs the debug
sweep (a raising cell included) to the same leaderboard as the ``local`` launcher (about
20 s, most of it starting Ray)."""

from __future__ import annotations

import sys

import pytest

from gtbench.errors import GtbenchError
from gtbench.launch.sweep import run_sweep
from gtbench.plan.cells import Plan
from gtbench.plugin import registry
from gtbench.results.records import load_record
from tests.plugins.launchers.common import board, debug_plan, failing


def test_missing_extra_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # find_spec then reports it missing
    with pytest.raises(GtbenchError, match=r"pip install 'gtbench\[ray\]'"):
        registry.launchers().create("ray:num_gpus=1")


def test_local_ray_matches_local_launcher(tmp_path, monkeypatch):
    pytest.importorskip("ray", reason="ray not installed (gtbench[ray])")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    plan = debug_plan(seeds=(0, 1))
    bad = failing(plan.cells[0])
    summary = run_sweep(Plan(cells=[*plan.cells, bad]), tmp_path / "ray", launcher="ray")
    assert summary.statuses == {"ok": 6, "failed": 1}, summary.problems
    assert "channels" in load_record(tmp_path / "ray", bad["run_id"])["error"]
    run_sweep(plan, tmp_path / "local", launcher="local")
    pd = pytest.importorskip("pandas")
    pd.testing.assert_frame_equal(board(tmp_path / "ray"), board(tmp_path / "local"))
