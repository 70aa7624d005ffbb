import multiprocessing

import pandas as pd

from gtbench.leaderboard import leaderboard, run_rows, write_tables
from gtbench.records import write_record


def _record(run_id, method, seed, fid, status="ok"):
    ref = {"params": {}}
    return {
        "run_id": run_id,
        "status": status,
        "error": None if status == "ok" else "boom",
        "source": {**ref, "name": "debug"},
        "method": {**ref, "name": method},
        "dataset": {**ref, "name": "debug"},
        "shots": 10,
        "seed": seed,
        "eval": {"extractor": {**ref, "name": "debug"}, "n_samples": 50},
        "hparams": {"train": {"iters": 5}},
        "metrics": {"fid": fid, "kid_mean": fid / 100},
        "timings": {"train_s": 1.0},
    }


def test_mean_and_sample_std_over_seeds(tmp_path):
    for seed, fid in enumerate([10.0, 12.0, 14.0]):
        write_record(tmp_path, _record(f"a{seed}", "finetune", seed, fid))
    write_record(tmp_path, _record("b0", "scratch", 0, 50.0))
    write_record(tmp_path, _record("c0", "scratch", 1, float("nan"), status="failed"))
    board = leaderboard(run_rows(tmp_path)).set_index("method")
    assert board.loc["finetune", "n_seeds"] == 3
    assert board.loc["finetune", "fid_mean"] == 12.0
    assert board.loc["finetune", "fid_std"] == 2.0  # sample std (ddof=1)
    assert board.loc["scratch", "n_seeds"] == 1 and pd.isna(board.loc["scratch", "fid_std"])


def _writer(folder, rounds):
    for _ in range(rounds):
        write_tables(folder)


def test_concurrent_writers_leave_complete_csvs(tmp_path):
    for index in range(30):
        write_record(tmp_path, _record(f"r{index:02d}", f"m{index % 5}", index // 5, float(index)))
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(tmp_path, 15)) for _ in range(4)]
    for worker in workers:
        worker.start()
    reads = 0
    while any(w.is_alive() for w in workers):
        if (tmp_path / "leaderboard.csv").exists():
            assert len(pd.read_csv(tmp_path / "leaderboard.csv")) == 5
            assert len(pd.read_csv(tmp_path / "runs.csv")) == 30
            reads += 1
    for worker in workers:
        worker.join()
        assert worker.exitcode == 0
    assert len(pd.read_csv(tmp_path / "leaderboard.csv")) == 5
    assert not list(tmp_path.glob(".*.tmp"))
    assert reads > 0
