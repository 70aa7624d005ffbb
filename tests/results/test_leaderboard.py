import json
import math
import multiprocessing

import pandas as pd
import pytest

from gtbench.results.leaderboard import (
    LEADERBOARD_CSV,
    RANKS_CSV,
    best_rows,
    leaderboard,
    row_seeds,
    run_rows,
    write_tables,
)
from gtbench.results.records import write_record


def _record(run_id, method, seed, fid, status="ok", kid=None, **changes):
    ref = {"params": {}}
    record = {
        "run_id": run_id,
        "status": status,
        "error": None if status == "ok" else "boom",
        "source": {**ref, "name": "debug"},
        "method": {**ref, "name": method},
        "dataset": {**ref, "name": "debug"},
        "shots": 10,
        "seed": seed,
        "eval": {
            "extractor": {**ref, "name": "debug"},
            "is_metric": True,
            "n_samples": 50,
            "batch_size": 64,
            "reference_key": "r1",
            "extractor_identity": "x1",
            "kid_subset_size": 40,
            "kid_subsets": 100,
        },
        "hparams": {"train": {"iters": 5}},
        "metrics": {"fid": fid, "kid_mean": fid / 100 if kid is None else kid},
        "timings": {"train_s": 1.0},
        "finished_at": f"2026-01-01T00:00:{seed:02d}+0000",
    }
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = record
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return record


def _write(folder, method, fids, kids=None, prefix=None, **changes):
    for seed, fid in enumerate(fids):
        kid = None if kids is None else kids[seed]
        run_id = f"{prefix or method}-{seed}"
        write_record(folder, _record(run_id, method, seed, fid, kid=kid, **changes))


@pytest.fixture(autouse=True)
def _current(monkeypatch):
    """Synthetic records carry no plugin versions: count them as current, not stale."""
    monkeypatch.setattr("gtbench.results.leaderboard.stale_reasons", lambda *args, **kwargs: {})


def _board(folder, **kwargs):
    return leaderboard(run_rows(folder), **kwargs)


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


def test_column_names_are_fixed(tmp_path):
    _write(tmp_path, "finetune", [10.0, 12.0, 14.0], method_metrics={"ada_p": 0.2}, g_steps=5)
    _write(tmp_path, "cdc", [11.0, 14.0, 17.0])
    write_tables(tmp_path)
    columns = list(pd.read_csv(tmp_path / LEADERBOARD_CSV).columns)
    assert columns[:19] == [
        "source", "method", "dataset", "shots", "extractor", "n_seeds",
        "fid_mean", "fid_std", "kid_mean", "kid_std",
        "fid_ci95_low", "fid_ci95_high", "delta_fid_mean", "delta_fid_ci95_low",
        "delta_fid_ci95_high", "delta_p", "verdict", "reference", "selection",
    ]  # fmt: skip
    assert columns[-1] == "protocol"
    assert {"ranked_by", "test", "best", "g_steps", "ada_p_mean", "delta_kid_mean"} <= set(columns)
    ranks = pd.read_csv(tmp_path / RANKS_CSV)
    assert list(ranks.columns) == [
        "method",
        "mean_rank",
        "rank_ci95_low",
        "rank_ci95_high",
        "n_targets",
        "selection",
        "ci_method",
    ]
    assert list(ranks["method"]) == ["finetune", "cdc"] and set(ranks["n_targets"]) == {1}
    assert set(ranks["selection"]) == {"default"}


def test_paired_statistics_against_the_reference(tmp_path):
    _write(tmp_path, "finetune", [10.0, 12.0, 14.0])
    _write(tmp_path, "cdc", [11.0, 14.0, 17.0])  # paired differences 1, 2, 3
    _write(tmp_path, "scratch", [20.0, 23.0, 26.0], prefix="scr")  # 10, 11, 12
    board = _board(tmp_path).set_index("method")
    cdc = board.loc["cdc"]
    assert cdc["delta_fid_mean"] == 2.0
    t = math.sqrt(2 * 0.95**2 / (1 - 0.95**2))  # t_{2, 0.975}, closed form at 2 df
    half = t / math.sqrt(3)
    assert (cdc["delta_fid_ci95_low"], cdc["delta_fid_ci95_high"]) == pytest.approx(
        (2 - half, 2 + half)
    )  # the t-test's own interval: contains 0 beside the tie
    assert cdc["delta_p"] == pytest.approx(1 - (2 * math.sqrt(3)) / math.sqrt(14))  # 0.0742
    assert cdc["verdict"] == "tie" and cdc["test"] == "paired t-test" and cdc["n_paired"] == 3
    assert cdc["reference"] == "finetune" and cdc["ranked_by"] == "fid"
    assert board.loc["scratch", "verdict"] == "worse" and board.loc["scratch", "delta_p"] < 0.01
    # family-wise over the target's 2 comparisons: scratch's p 0.0027 < 0.05 / 2 stands,
    # cdc's tie too; scratch's interval is the Bonferroni one of Holm's first step
    assert board.loc["scratch", "verdict_holm"] == "worse" and cdc["verdict_holm"] == "tie"
    assert board.loc["scratch", "delta_p_holm"] == pytest.approx(
        2 * board.loc["scratch", "delta_p"]
    )
    assert board.loc["scratch", "fw_confidence"] == pytest.approx(0.975)
    assert board.loc["scratch", "delta_fw_ci_low"] > 0
    assert cdc["fw_confidence"] == pytest.approx(0.95) and cdc["delta_fw_ci_low"] < 0
    assert board.loc["finetune", "verdict_holm"] == "reference"
    assert board.loc["finetune", "verdict"] == "reference"
    assert (board.loc["finetune", "fid_ci95_low"], board.loc["finetune", "fid_ci95_high"]) == (
        10,
        14,
    )
    other = _board(tmp_path, reference="cdc").set_index("method")
    assert (
        other.loc["finetune", "delta_fid_mean"] == -2.0
        and other.loc["cdc", "verdict"] == "reference"
    )
    assert set(_board(tmp_path, reference="nope")["verdict"]) == {"no reference"}


def test_two_seeds_are_too_few_for_a_verdict(tmp_path):
    _write(tmp_path, "finetune", [10.0, 12.0])
    _write(tmp_path, "scratch", [1000.0, 2000.0])
    row = _board(tmp_path).set_index("method").loc["scratch"]
    assert row["verdict"] == "too few seeds" and math.isnan(row["delta_p"])
    assert row["delta_fid_mean"] == 1489.0
    assert not best_rows(_board(tmp_path))


def test_eval_batch_size_never_splits_a_row(tmp_path):
    write_record(tmp_path, _record("a0", "finetune", 0, 10.0, eval__batch_size=32))
    write_record(tmp_path, _record("a1", "finetune", 1, 12.0, eval__batch_size=64))
    write_record(tmp_path, _record("a2", "finetune", 2, 14.0, eval__device="cuda"))
    board = _board(tmp_path)
    assert len(board) == 1 and board.loc[0, "n_seeds"] == 3


@pytest.mark.parametrize(
    "change",
    [
        {"eval__reference_key": "r2"},
        {"eval__extractor_identity": "x2"},
        {"eval__n_samples": 100},
        {"eval__kid_subset_size": 20},
        {"eval__kid_subsets": 10},
        {"hparams__train": {"iters": 10}},
        {"selection": "tuned-validation"},
    ],
)
def test_evaluation_identity_training_protocol_and_selection_split_rows(tmp_path, change):
    _write(tmp_path, "finetune", [10.0, 12.0, 14.0])
    _write(tmp_path, "finetune", [20.0, 22.0, 24.0], prefix="other", **change)
    board = _board(tmp_path)
    assert len(board) == 2 and sorted(board["fid_mean"]) == [12.0, 22.0]
    assert board["protocol"].nunique() + board["selection"].nunique() == 3


def test_rows_without_training_join_every_budget_of_their_evaluation(tmp_path):
    _write(tmp_path, "finetune", [10.0, 12.0, 14.0])
    _write(tmp_path, "finetune", [5.0, 6.0, 7.0], prefix="long", hparams__train={"iters": 50})
    _write(tmp_path, "source-only", [30.0, 31.0, 33.0], hparams__train={})
    board = _board(tmp_path)
    only = board[board["method"] == "source-only"]
    assert len(only) == 1 and only.iloc[0]["protocol"].endswith("-none")
    assert only.iloc[0]["verdict"] == "worse" and not math.isnan(only.iloc[0]["delta_fid_mean"])
    assert set(board[board["method"] == "finetune"]["verdict"]) == {"reference"}


def test_best_is_marked_only_when_the_paired_test_beats_every_other_method(tmp_path):
    # "ewc" has the lowest mean FID but ties with finetune: the old rule (lowest mean) bolded it.
    _write(tmp_path, "finetune", [100.0, 200.0, 300.0])
    _write(tmp_path, "ewc", [60.0, 230.0, 290.0])
    _write(tmp_path, "scratch", [400.0, 500.0, 601.0], prefix="scr")
    board = _board(tmp_path)
    assert board.loc[0, "method"] == "ewc"  # sorted by mean
    assert best_rows(board) == set() and not board["best"].any()


def test_a_method_better_than_every_other_is_best(tmp_path):
    _write(tmp_path, "finetune", [100.0, 200.0, 300.0])
    _write(tmp_path, "ewc", [90.0, 189.0, 291.0])
    _write(tmp_path, "scratch", [400.0, 500.0, 601.0], prefix="scr")
    board = _board(tmp_path)
    assert board.set_index("method").loc["ewc", "verdict"] == "better"
    assert best_rows(board) == {int(board.index[board["method"] == "ewc"][0])}


def test_invalid_fid_is_not_used_and_the_target_is_ranked_by_kid(tmp_path):
    # FID says cdc is better, KID says it is worse: the verdict must follow KID.
    _write(tmp_path, "finetune", [10.0, 12.0, 14.0], kids=[1.0, 2.0, 3.0], metrics__fid_valid=False)
    _write(tmp_path, "cdc", [5.0, 6.0, 7.0], kids=[2.0, 3.1, 4.0], metrics__fid_valid=False)
    row = _board(tmp_path).set_index("method").loc["cdc"]
    assert row["ranked_by"] == "kid" and row["verdict"] == "worse" and not row["fid_valid"]
    assert math.isnan(row["delta_fid_mean"]) and math.isnan(row["fid_ci95_low"])
    assert row["delta_kid_mean"] == pytest.approx(1.0333333)


def test_old_records_without_the_flag_infer_validity_from_the_feature_dimension(tmp_path):
    _write(tmp_path, "finetune", [10.0, 12.0, 14.0], eval__n_reference=70, eval__feature_dim=256)
    _write(tmp_path, "cdc", [11.0, 12.0, 13.0], eval__n_reference=70, eval__feature_dim=256)
    assert set(_board(tmp_path)["ranked_by"]) == {"kid"}


@pytest.mark.parametrize("flag", [False, "absent"])
def test_debug_extractor_rows_are_not_a_metric(tmp_path, flag):
    for method, fids in (("finetune", [100.0, 200.0, 300.0]), ("scratch", [400.0, 500.0, 601.0])):
        for seed, fid in enumerate(fids):
            record = _record(f"{method}{seed}", method, seed, fid, eval__is_metric=flag)
            if flag == "absent":  # a record from before the flag: the debug extractor by name
                del record["eval"]["is_metric"]
            write_record(tmp_path, record)
    board, ranks = leaderboard(run_rows(tmp_path), with_ranks=True)
    assert set(board["verdict"]) == {"not a metric"}
    assert not best_rows(board) and ranks.empty


def test_fid_validity_of_old_records_counts_the_generated_side():
    from gtbench.results.leaderboard import fid_valid

    record = {"metrics": {"fid_valid": True}, "eval": {"n_reference": 700, "feature_dim": 256}}
    assert fid_valid({**record, "eval": {**record["eval"], "n_samples": 1000}})
    assert not fid_valid({**record, "eval": {**record["eval"], "n_samples": 250}})
    assert not fid_valid({"eval": {"n_reference": 200, "feature_dim": 256, "n_samples": 1000}})
    assert fid_valid({"eval": {"n_reference": 300, "feature_dim": 256, "n_samples": 1000}})


def test_the_latest_record_of_a_seed_counts_once(tmp_path):
    _write(tmp_path, "finetune", [10.0, 12.0, 14.0])
    newer = _record("new0", "finetune", 0, 40.0)
    newer["finished_at"] = "2027-01-01T00:00:00+0000"
    write_record(tmp_path, newer)
    row = _board(tmp_path).iloc[0]
    assert row["n_seeds"] == 3 and row["fid_mean"] == pytest.approx(22.0)


def test_the_latest_record_is_the_latest_instant_across_time_zones(tmp_path):
    """Tokyo's 10:00 (+0900) is 01:00 UTC; Los Angeles' 20:00 the evening before (-0800)
    is 04:00 UTC: later, although its string sorts first."""
    _write(tmp_path, "finetune", [10.0, 12.0, 14.0])
    for run_id, fid, stamp in (
        ("tokyo0", 40.0, "2027-01-02T10:00:00+0900"),
        ("la0", 70.0, "2027-01-01T20:00:00-0800"),
    ):
        record = _record(run_id, "finetune", 0, fid)
        record["finished_at"] = stamp
        write_record(tmp_path, record)
    row = _board(tmp_path).iloc[0]
    assert row["fid_mean"] == pytest.approx((70.0 + 12.0 + 14.0) / 3)
    runs = run_rows(tmp_path)
    assert row_seeds(runs, row, "fid")[0] == 70.0


def test_budget_and_method_terms_are_columns(tmp_path):
    _write(tmp_path, "ada", [1.0, 2.0], g_steps=5, d_steps=5, warmup_steps=0,
           method_metrics={"ada_p": 0.5, "reg_grad_ratio": 2.0})  # fmt: skip
    row = _board(tmp_path).iloc[0]
    assert row["g_steps"] == 5 and row["d_steps"] == 5 and row["warmup_steps"] == 0
    assert row["ada_p_mean"] == 0.5 and row["reg_grad_ratio_mean"] == 2.0


def _writer(folder, rounds):
    for _ in range(rounds):
        write_tables(folder)


def test_concurrent_writers_leave_complete_csvs(tmp_path):
    for index in range(30):
        write_record(tmp_path, _record(f"r{index:02d}", f"m{index % 5}", index // 5, float(index)))
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(tmp_path, 6)) for _ in range(4)]
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


def test_stale_records_are_set_apart_and_not_ranked(tmp_path, monkeypatch):
    _write(tmp_path, "finetune", [10.0, 12.0, 14.0])
    _write(tmp_path, "cdc", [11.0, 14.0, 17.0])
    _write(tmp_path, "finetune", [90.0, 92.0, 94.0], prefix="old")
    _write(tmp_path, "cdc", [1.0, 2.0, 3.0], prefix="oldcdc")
    stale = {f"{p}-{s}": "method version 1 → 2" for p in ("old", "oldcdc") for s in range(3)}
    monkeypatch.setattr("gtbench.results.leaderboard.stale_reasons", lambda *args, **kwargs: stale)
    board, ranks = leaderboard(run_rows(tmp_path), with_ranks=True)
    assert len(board) == 4
    current = board[~board["stale"]].set_index("method")
    assert current.loc["finetune", "fid_mean"] == 12.0 and current.loc["cdc", "delta_fid_mean"] == 2
    old = board[board["stale"]].set_index("method")
    assert old.loc["cdc", "delta_fid_mean"] == -90.0  # compared with the stale finetune only
    assert list(ranks["method"]) == ["finetune", "cdc"]  # from the current target alone
    assert set(ranks["n_targets"]) == {1}
    assert run_rows(tmp_path).set_index("run_id").loc["old-0", "stale_reason"].startswith("method")


def test_user_results_beside_the_reference_results(tmp_path):
    """A user's method joins the committed reference results: paired with their finetune,
    ranked beside them, while the user's own tables stay the user's."""
    reference, mine = tmp_path / "reference", tmp_path / "mine"
    _write(reference, "finetune", [10.0, 12.0, 14.0])
    _write(reference, "cdc", [30.0, 33.0, 35.0])
    _write(mine, "my-method", [5.0, 6.0, 8.0])
    _write(mine, "finetune", [10.0, 12.0, 14.0])  # same run_ids as the reference: counted once
    runs = run_rows(mine, beside=[reference])
    assert sorted(runs["run_id"]) == sorted(
        [f"{m}-{s}" for m in ("finetune", "cdc", "my-method") for s in range(3)]
    )
    assert set(runs.loc[runs["method"] == "cdc", "origin"]) == {str(reference)}
    assert set(runs.loc[runs["method"] == "finetune", "origin"]) == {str(mine)}
    board = leaderboard(runs).set_index("method")
    assert board.loc["my-method", "verdict"] == "better"
    assert board.loc["cdc", "verdict"] == "worse"
    _, own = write_tables(mine)
    assert set(own["method"]) == {"finetune", "my-method"}


def test_leaderboard_command_prints_the_mean_rank_only_over_several_targets(tmp_path):
    from tests.helpers import gtbench

    _write(tmp_path, "finetune", [10.0, 12.0, 14.0], prefix="f-cat")
    _write(tmp_path, "cdc", [11.0, 14.0, 17.0], prefix="c-cat")
    one_target = gtbench("leaderboard", results=tmp_path)
    assert one_target.exit_code == 0, one_target.output
    assert "mean rank" not in one_target.output  # one target: the rank adds nothing

    _write(tmp_path, "finetune", [30.0, 31.0, 32.0], prefix="f-dig", dataset__name="digits")
    _write(tmp_path, "cdc", [20.0, 22.0, 24.0], prefix="c-dig", dataset__name="digits")
    both = gtbench("leaderboard", results=tmp_path)
    assert both.exit_code == 0, both.output
    lines = both.output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("mean rank over targets"))
    assert lines[start + 1].split() == ["method", "mean", "rank", "95%", "CI", "targets"]
    ranked = {line.split()[0]: line.split() for line in lines[start + 2 : start + 4]}
    # every seed keeps each target's order (cdc worse on one, better on the other)
    assert ranked["finetune"][1:] == ranked["cdc"][1:] == ["1.50", "[1.50,", "1.50]", "2"]


def test_named_budgets_are_ranked_apart_never_pooled(tmp_path):
    from tests.helpers import gtbench

    suite = tmp_path / "budgets.toml"
    suite.write_text(
        'sources = ["debug"]\nmethods = ["finetune", "scratch"]\ndatasets = ["debug"]\n'
        'seeds = [0, 1]\nextractor = "debug"\n[train]\nbatch_size = 4\n[eval]\n'
        "n_samples = 40\n"
        '[[sweeps]]\nbudget = "adapted"\n[sweeps.train]\niters = 2\n'
        '[[sweeps]]\nbudget = "long"\n[sweeps.train]\niters = 4\n'
    )
    result = gtbench("run", "--suite", str(suite), results=tmp_path / "out")
    assert result.exit_code == 0, result.output
    board = pd.read_csv(tmp_path / "out" / "leaderboard.csv")
    assert sorted(set(board["budget"])) == ["adapted", "long"]
    assert (board.groupby(["method", "budget"])["n_seeds"].max() == 2).all()  # never pooled
    records = [json.loads(p.read_text()) for p in (tmp_path / "out").glob("runs/*/record.json")]
    assert {r["budget"] for r in records} == {"adapted", "long"}
    assert len({r["run_id"] for r in records}) == 8
    shown = gtbench("leaderboard", "--grids", str(tmp_path / "grids"), results=tmp_path / "out")
    assert "budget" in shown.output and "adapted" in shown.output and "long" in shown.output
    grids = sorted(g.name for g in (tmp_path / "grids").glob("*.png"))  # one per row
    assert len(grids) == 4 and {g.rsplit("__", 1)[1] for g in grids} == {"adapted.png", "long.png"}
    assert gtbench("report", results=tmp_path / "out").exit_code == 0
    html = (tmp_path / "out" / "report.html").read_text()  # plots titled by budget name
    assert "budget adapted" in html and "budget long" in html
