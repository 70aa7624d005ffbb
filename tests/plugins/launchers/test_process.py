"""The `process` launcher: worker processes give the same leaderboard as `local`."""

import pandas as pd

from tests.helpers import FAST, gtbench

SWEEP = [*FAST, "--methods", "scratch,finetune", "--seeds", "0,1"]


def _board(results):
    board = pd.read_csv(results / "leaderboard.csv")
    return board[[c for c in board.columns if not c.endswith(("_s_mean", "_s_std"))]]


def test_process_launcher_matches_local(tmp_path):
    local, process = tmp_path / "local", tmp_path / "process"
    assert gtbench("run", *SWEEP, results=local).exit_code == 0
    result = gtbench("run", *SWEEP, "--launcher", "process", "--workers", "2", results=process)
    assert result.exit_code == 0, result.output
    assert len(list(process.glob("runs/*/record.json"))) == 4
    pd.testing.assert_frame_equal(_board(local), _board(process))
