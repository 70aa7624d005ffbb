"""`gtbench compare A B`: the paired table of two methods, seed by seed."""

import io

import pandas as pd

from gtbench.results.records import write_record
from tests.helpers import gtbench
from tests.results.test_leaderboard import _record, _write


def test_compare_prints_seeds_delta_ci_p_and_verdict(tmp_path):
    _write(tmp_path, "finetune", [10.0, 12.0, 14.0])
    _write(tmp_path, "cdc", [11.0, 14.0, 17.0])  # differences 1, 2, 3
    result = gtbench("compare", "finetune", "cdc", results=tmp_path)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "FID, lower is better; Δ = cdc − finetune" in lines
    rows = [line.split() for line in lines if line[:1].isdigit() or line.startswith("mean ")]
    assert rows[:4] == [
        ["0", "10", "11", "+1"],
        ["1", "12", "14", "+2"],
        ["2", "14", "17", "+3"],
        ["mean", "12", "14", "+2"],
    ]
    summary = lines[-1]
    assert "mean Δ +2, 95% CI (paired t) [-0.484, 4.48]" in summary
    assert "paired t-test: p = 0.074" in summary and "tie" in summary


def test_compare_says_worse_and_too_few_seeds(tmp_path):
    _write(tmp_path, "finetune", [10.0, 12.0, 14.0])
    _write(tmp_path, "scratch", [20.0, 23.0, 26.0])
    worse = gtbench("compare", "finetune", "scratch", results=tmp_path)
    assert "scratch is worse than finetune" in worse.output
    other = tmp_path / "two"
    _write(other, "finetune", [10.0, 12.0])
    _write(other, "scratch", [20.0, 23.0])
    few = gtbench("compare", "finetune", "scratch", results=other)
    assert few.exit_code == 0 and "too few seeds for a test (2 shared, 3 needed)" in few.output
    assert "worse" not in few.output


def test_compare_uses_kid_where_fid_is_not_valid(tmp_path):
    _write(tmp_path, "finetune", [10.0, 12.0, 14.0], kids=[1.0, 2.0, 3.0], metrics__fid_valid=False)
    _write(tmp_path, "cdc", [5.0, 6.0, 7.0], kids=[2.0, 3.1, 4.0], metrics__fid_valid=False)
    result = gtbench("compare", "finetune", "cdc", results=tmp_path)
    assert "KID (FID not valid here)" in result.output and "cdc is worse" in result.output


def test_compare_filters_by_dataset_and_names_bad_input(tmp_path):
    _write(tmp_path, "finetune", [10.0, 12.0, 14.0])
    _write(tmp_path, "cdc", [11.0, 14.0, 17.0])
    for seed, fid in enumerate([1.0, 2.0, 3.0]):
        other = _record(f"o{seed}", "cdc", seed, fid, dataset={"name": "animals-cat", "params": {}})
        write_record(tmp_path, other)
    only = gtbench("compare", "finetune", "cdc", "--dataset", "debug", results=tmp_path)
    assert only.exit_code == 0 and only.output.count("Δ = cdc − finetune") == 1
    bad = gtbench("compare", "finetune", "cdcx", results=tmp_path)
    assert bad.exit_code == 2 and "no finished runs of method 'cdcx'" in bad.output
    assert "Traceback" not in bad.output
    none = gtbench("compare", "finetune", "cdc", "--dataset", "animals-cat", results=tmp_path)
    assert none.exit_code == 2 and "never ran on the same target" in none.output
    missing = gtbench("compare", "finetune", "cdc", "--dataset", "faces", results=tmp_path)
    assert missing.exit_code == 2 and "no finished runs on dataset 'faces'" in missing.output


def test_compare_accepts_the_plugin_name_of_a_parameterised_method(tmp_path):
    _write(tmp_path, "finetune", [10.0, 12.0, 14.0])
    for seed, fid in enumerate([9.0, 11.0, 13.0]):
        record = _record(f"ada{seed}", "ada", seed, fid, method__params={"kimg": 1.5})
        write_record(tmp_path, record)
    result = gtbench("compare", "finetune", "ada", results=tmp_path)
    assert result.exit_code == 0, result.output
    assert "ada:kimg=1.5 is better than finetune" in result.output


def test_leaderboard_and_report_take_a_reference_by_name(tmp_path):
    _write(tmp_path, "finetune", [10.0, 12.0, 14.0])
    _write(tmp_path, "cdc", [11.0, 14.0, 17.0])
    bad = gtbench("leaderboard", "--reference", "nope", results=tmp_path)
    assert bad.exit_code == 2 and "no finished runs of method 'nope'" in bad.output
    assert gtbench("report", "--reference", "nope", results=tmp_path).exit_code == 2
    good = gtbench("leaderboard", "--reference", "cdc", "--format", "csv", results=tmp_path)
    assert good.exit_code == 0 and "Δ" not in good.output
    board = pd.read_csv(io.StringIO(good.output)).set_index("method")
    assert (
        board.loc["finetune", "delta_fid_mean"] == -2.0 and board.loc["cdc", "reference"] == "cdc"
    )


def test_compare_pairs_within_each_budget_and_names_it(tmp_path):
    from gtbench.results.leaderboard import compare, run_rows

    for budget, ft, cdc in (("adapted", [10.0, 12.0, 14.0], [11.0, 14.0, 17.0]),
                            ("long", [30.0, 32.0, 34.0], [20.0, 21.0, 22.0])):  # fmt: skip
        for method, fids in (("finetune", ft), ("cdc", cdc)):
            for seed, fid in enumerate(fids):
                record = _record(f"{budget}-{method}-{seed}", method, seed, fid, budget=budget)
                record["hparams"]["train"]["iters"] = 5 if budget == "adapted" else 20
                write_record(tmp_path, record)
    comparisons = {c.budget: c for c in compare(run_rows(tmp_path), "finetune", "cdc")}
    assert set(comparisons) == {"adapted", "long"}
    assert comparisons["adapted"].result.delta_mean == 2.0  # never pooled with "long"
    assert comparisons["long"].result.delta_mean == -11.0
    assert "· budget long ·" in comparisons["long"].title
    result = gtbench("compare", "finetune", "cdc", results=tmp_path)
    assert "budget adapted" in result.output and "budget long" in result.output
    long = gtbench("compare", "finetune", "cdc", "--budget", "long", results=tmp_path)
    assert "budget long" in long.output and "budget adapted" not in long.output
    none = gtbench("compare", "finetune", "cdc", "--budget", "short", results=tmp_path)
    assert none.exit_code == 2 and "never ran on the same target at budget 'short'" in none.output
