"""What docs/leaderboard.md, docs/tuning.md, docs/methods.md and docs/performance.md say
about the committed results, proved from the committed files: each table equals what
``docs/make_tables.py`` prints from the CSVs, and each claim in the prose (verdicts, p
bounds, ranks, CI widths, paired differences, costs) is recomputed from the records."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import docs_script

ROOT = Path(__file__).resolve().parents[1]


def _make_tables():
    return docs_script("make_tables")


@pytest.mark.parametrize(
    ("kind", "csv", "page"),
    [
        ("leaderboard", "results/reference/leaderboard.csv", "docs/leaderboard.md"),
        ("ranks", "results/reference/ranks.csv", "docs/leaderboard.md"),
        ("tuning", "results/tuned/tuning.csv", "docs/tuning.md"),
    ],
)
def test_docs_table_equals_the_committed_csv(kind, csv, page):
    table = "\n".join(getattr(_make_tables(), f"{kind}_table")(str(ROOT / csv)))
    assert table.count("\n") >= 3
    assert table in (ROOT / page).read_text(), f"{page}'s {kind} table is not {csv}"


def _as_committed(runs):
    """The committed records as they were tabulated: a later version bump (of a plugin,
    the trainer or the protocol) makes them stale, but the claims are about them."""
    runs = runs.copy()
    runs["stale"] = False
    # a default run is labelled by the parameters that differ from today's defaults
    # (minegan v3's stage1_iters, adam v3's uv_lr); they were the defaults then
    default = runs["selection"] == "default"
    runs.loc[default, "method"] = runs.loc[default, "method"].str.split(":").str[0]
    return runs


def _csv(path: str):
    import pandas as pd

    return pd.read_csv(ROOT / path)


def test_leaderboard_page_claims_about_the_committed_leaderboard():
    """docs/leaderboard.md, "What the statistics support", at the adapted budget."""
    board = _csv("results/reference/leaderboard.csv")
    board = board[board["budget"] == "adapted"]
    assert not board["stale"].any() and set(board["n_seeds"]) == {5}
    assert not board["best"].any()
    rows = board.set_index(["dataset", "method"])
    adapted = rows["adaptation_mean"].round(3)
    assert (adapted["animals-cat", "finetune"], adapted["digits", "finetune"]) == (0.903, 0.919)
    assert adapted["animals-cat", "dcl"] < adapted["animals-cat", "source-only"] < 0.15
    assert round(adapted["animals-cat", "bsa"], 2) == 0.17
    assert round(adapted["animals-cat", "cdc"], 2) == 0.31
    for method in ("ewc", "adafm", "freeze-g", "bsa", "dcl"):
        assert adapted["digits", method] <= 0.01
    assert [round(adapted["digits", m], 2) for m in ("l2-sp", "rick", "adam", "cdc")] == [
        0.29, 0.25, 0.13, 0.12,
    ]  # fmt: skip
    verdicts = {}
    for target in ("animals-cat", "digits"):
        others = board[(board["dataset"] == target) & (board["method"] != "finetune")]
        assert len(others) == 15  # "the target's 15 comparisons"
        verdicts[target] = {
            v: set(others.loc[others["verdict_holm"] == v, "method"]) for v in ("better", "worse")
        }
        verdicts[target]["ties"] = len(others[others["verdict_holm"] == "tie"])
    assert verdicts["animals-cat"] == {
        "better": set(),
        "worse": {"dcl", "source-only", "cdc", "freeze-g", "bsa"},
        "ties": 10,
    }
    assert verdicts["digits"]["better"] == {"ada", "diffaugment"}
    assert verdicts["digits"]["ties"] == 1 and len(verdicts["digits"]["worse"]) == 12
    assert "scratch" in verdicts["digits"]["worse"]
    worse = board[board["verdict_holm"] == "worse"].groupby("dataset")["delta_p_holm"].max()
    assert worse["animals-cat"] <= 0.021 and worse["digits"] <= 0.0022
    ada, adam = rows.loc[("animals-cat", "ada")], rows.loc[("animals-cat", "adam")]
    assert (round(ada["fid_mean"]), round(rows.loc[("animals-cat", "finetune"), "fid_mean"])) == (
        386, 473,
    )  # fmt: skip
    assert round(ada["delta_fid_mean"]) == -87 and round(ada["delta_p"], 3) == 0.030
    assert round(ada["delta_p_holm"], 2) == 0.30
    assert (adam["verdict"], round(adam["delta_p"], 3), round(adam["delta_p_holm"], 2)) == (
        "worse", 0.049, 0.44,
    )  # fmt: skip
    digits = rows.loc["digits"]
    assert round(digits.loc["ada", "delta_fid_mean"]) == -396
    assert round(digits.loc["ada", "delta_p_holm"], 3) == 0.004
    assert round(digits.loc["diffaugment", "delta_fid_mean"]) == -332
    assert round(digits.loc["diffaugment", "delta_p_holm"], 3) == 0.008
    assert round(digits.loc["minegan", "delta_fid_mean"]) == -41
    assert round(digits.loc["minegan", "delta_p"], 2) == 0.13
    assert min(digits.loc[["ada", "diffaugment"], "adaptation_mean"]) >= 0.985
    memorised = board.groupby("dataset")["mem_closer_to_train_mean"].max()
    assert memorised["animals-cat"] <= 0.135 and memorised["digits"] <= 0.06
    cats = rows.loc["animals-cat"]
    assert cats["mem_closer_to_train_mean"].idxmax() == "minegan"
    assert round(cats.loc["minegan", "intra_cluster_diversity_mean"], 3) == 0.053
    ranks = _csv("results/reference/ranks.csv")
    ranks = ranks[ranks["budget"] == "adapted"].set_index("method")
    shown = ranks[["mean_rank", "rank_ci95_low", "rank_ci95_high"]].round(1)
    assert tuple(shown.loc["ada"]) == (1, 1, 1.3)
    assert tuple(shown.loc["finetune"]) == (3.3, 2.7, 4.3)
    assert shown.loc["minegan", "mean_rank"] == shown.loc["l2-sp", "mean_rank"] == 4.3
    assert set(ranks.loc[["freeze-d", "ewc", "adafm"], "n_targets"]) == {2}
    assert set(ranks.drop(["freeze-d", "ewc", "adafm"])["n_targets"]) == {3}


@pytest.mark.parametrize("folder", ["reference", "tuned"])
def test_no_committed_verdict_disagrees_with_its_interval(folder):
    """Both verdicts and the intervals printed beside them come from one procedure."""
    from gtbench.measure.stats import disagrees

    board = _csv(f"results/{folder}/leaderboard.csv")
    for verdict, low, high in (
        ("verdict", "delta_fid_ci95_low", "delta_fid_ci95_high"),
        ("verdict_holm", "delta_fw_ci_low", "delta_fw_ci_high"),
    ):
        rows = zip(board[verdict], board[low], board[high], strict=True)
        assert not [r for r in rows if disagrees(str(r[0]), float(r[1]), float(r[2]))]
    assert (board["verdict_holm"].isin(["better", "worse"]) == (board["delta_p_holm"] < 0.05)).all()


def test_tuning_page_claims_about_the_study():
    """docs/tuning.md, "What it supports, with 3 seeds and 4 trials"."""
    import json
    from collections import Counter

    table = _csv("results/tuned/tuning.csv")
    trains = table["method"] != "source-only"  # nothing to tune: its one trial is itself
    assert set(table.loc[trains, "trials"]) == {4} and set(table["tuned_seeds"]) == {3}
    records = [
        json.loads(path.read_text())
        for path in (ROOT / "results" / "tuned" / "runs").glob("*/record.json")
    ]
    assert Counter(r.get("selection") for r in records) == {
        "trial": 122, "default": 96, "tuned-validation": 96,
    }  # fmt: skip
    assert {(r["dataset"]["name"], r["budget"]) for r in records} == {
        ("animals-cat", "adapted"),
        ("digits", "adapted"),
    }
    # no method beats fine-tuning in either selection; lowest tuned means tie
    assert "better" not in set(table["default_verdict"]) | set(table["tuned_verdict"])
    lowest = table.loc[table.groupby("dataset")["tuned_mean"].idxmin()].set_index("dataset")
    assert lowest["method"].to_dict() == {"animals-cat": "ada", "digits": "diffaugment"}
    assert set(lowest["tuned_verdict"]) == {"tie"}
    assert round(lowest.loc["animals-cat", "tuned_mean"]) == 321
    assert round(lowest.loc["digits", "tuned_mean"]) == 693
    finetune = table[table["method"] == "finetune"].set_index("dataset")
    assert finetune.loc["animals-cat", "selected_trial"] == 0
    assert round(finetune.loc["digits", "tuned_minus_default_mean"]) == -33
    assert round(finetune.loc["digits", "tuned_minus_default_p"], 2) == 0.58
    assert (
        round(finetune.loc["animals-cat", "tuned_mean"]),
        round(finetune.loc["digits", "tuned_mean"]),
    ) == (449, 1361)
    changed = {
        (r.dataset, r.method): (r.default_verdict, r.tuned_verdict)
        for r in table.itertuples()
        if r.default_verdict != r.tuned_verdict
    }
    assert changed == {
        ("digits", m): ("worse", "tie") for m in ("cdc", "l2-sp", "ewc", "freeze-g", "adafm", "bsa")
    }
    kept = {(r.dataset, r.method): r.tuned_verdict for r in table.itertuples()}
    assert kept[("digits", "dcl")] == kept[("digits", "source-only")] == "worse"
    assert set(table.loc[table["dataset"] == "animals-cat", "tuned_verdict"]) == {
        "tie",
        "reference",
    }
    assert set(table.loc[table["dataset"] == "animals-cat", "default_verdict"]) == {
        "tie",
        "reference",
    }
    # tuning's own gains: per comparison only, none family-wise
    assert set(table["tuned_minus_default_verdict_holm"]) == {"tie"}
    gains = table[table["tuned_minus_default_verdict"] == "better"]
    assert {
        (r.dataset, r.method): round(r.tuned_minus_default_mean) for r in gains.itertuples()
    } == {
        ("digits", "freeze-g"): -686, ("digits", "rick"): -679, ("digits", "adafm"): -616,
        ("digits", "bsa"): -556, ("digits", "diffaugment"): -360, ("digits", "adam"): -281,
        ("digits", "ewc"): -168, ("animals-cat", "freeze-g"): -160, ("animals-cat", "bsa"): -160,
    }  # fmt: skip
    losses = table[table["tuned_minus_default_verdict"] == "worse"]
    assert [
        (r.dataset, r.method, round(r.tuned_minus_default_mean)) for r in losses.itertuples()
    ] == [("animals-cat", "ewc", 149)]
    defaults_kept = table[trains & (table["selected_trial"] == 0)]
    assert set(zip(defaults_kept["dataset"], defaults_kept["method"], strict=True)) == {
        ("animals-cat", "cdc"), ("animals-cat", "dcl"), ("animals-cat", "finetune"),
        ("digits", "dcl"), ("digits", "scratch"),
    }  # fmt: skip
    board = _csv("results/tuned/leaderboard.csv")  # 50 family-wise ties: 21 read worse alone
    ties = board[board["verdict_holm"] == "tie"]
    assert (len(ties), int((ties["verdict"] == "worse").sum())) == (50, 21)
    assert int((ties["verdict"] == "better").sum()) == 4
    tuned = board[board["selection"] == "tuned-validation"].set_index(["dataset", "method"])
    diffaugment = tuned.loc[("digits", "diffaugment:policy=color,translation")]
    assert round(diffaugment["delta_fid_mean"]) == -668
    assert (round(diffaugment["delta_p"], 3), round(diffaugment["delta_p_holm"], 2)) == (
        0.035,
        0.21,
    )


def test_leaderboard_page_claims_about_seeds():
    """ "Seeds matter": the CIs and family-wise ties at 3 and 5 seeds (adapted budget)."""
    from gtbench.results.leaderboard import leaderboard, run_rows

    runs = _as_committed(run_rows(ROOT / "results" / "reference"))
    runs = runs[(runs["budget"] == "adapted") & runs["dataset"].isin(["animals-cat", "digits"])]
    widths, ties = {}, {}
    for seeds, subset in ((3, runs[runs["seed"] < 3]), (5, runs)):
        board = leaderboard(subset)
        board = board[~board["method"].isin(["finetune", "scratch"])]
        width = board["delta_fid_ci95_high"] - board["delta_fid_ci95_low"]
        widths[seeds] = width.groupby(board["dataset"]).mean().round().to_dict()
        assert set(board.groupby("dataset").size()) == {14}  # "of the 14"
        ties[seeds] = (board["verdict_holm"] == "tie").groupby(board["dataset"]).sum().to_dict()
    assert widths == {
        3: {"animals-cat": 421, "digits": 452},
        5: {"animals-cat": 215, "digits": 233},
    }
    assert ties == {3: {"animals-cat": 14, "digits": 6}, 5: {"animals-cat": 9, "digits": 1}}
    finetune = runs[(runs["dataset"] == "animals-cat") & (runs["method"] == "finetune")]
    assert (round(finetune["fid"].min()), round(finetune["fid"].max())) == (311, 561)


@pytest.fixture(scope="module")
def reference_runs():
    from gtbench.results.leaderboard import run_rows

    return _as_committed(run_rows(ROOT / "results" / "reference"))


ADAPTED_CLAIMS = [  # docs/methods.md, "Rankings against the papers": Δ = b − a on the same shots
    ("finetune", "scratch", "animals-cat", 112, "tie", None),
    ("finetune", "scratch", "digits", 486, "worse", 1e-3),
    ("finetune", "source-only", "animals-cat", 501, "worse", 1e-3),
    ("finetune", "source-only", "digits", 2139, "worse", 1e-3),
    ("finetune", "freeze-d", "animals-cat", 52, "tie", None),
    ("finetune", "freeze-d", "digits", 308, "worse", 1e-3),
    ("finetune", "ewc", "animals-cat", 30, "tie", None),
    ("finetune", "ewc", "digits", 1177, "worse", 1e-3),
    ("finetune", "cdc", "animals-cat", 214, "worse", 1e-3),
    ("finetune", "cdc", "digits", 667, "worse", 1e-3),
    ("ewc", "cdc", "animals-cat", 185, "worse", 0.0034),
    ("ewc", "cdc", "digits", -510, "better", 0.0023),
    ("cdc", "dcl", "animals-cat", 367, "worse", 1e-3),
    ("cdc", "dcl", "digits", 774, "worse", 1e-3),
    ("finetune", "dcl", "animals-cat", 582, "worse", 1e-3),
    ("finetune", "dcl", "digits", 1441, "worse", 1e-3),
    ("cdc", "adam", "animals-cat", -121, "better", 0.017),
    ("cdc", "adam", "digits", 278, "worse", 0.031),
    ("dcl", "adam", "animals-cat", -489, "better", 1e-3),
    ("dcl", "adam", "digits", -496, "better", 0.0012),
    ("finetune", "adam", "animals-cat", 93, "worse", 0.05),
    ("finetune", "adam", "digits", 945, "worse", 1e-3),
    ("adam", "rick", "animals-cat", -79, "better", 0.022),
    ("adam", "rick", "digits", -179, "better", 0.05),
    ("finetune", "rick", "animals-cat", 13, "tie", None),
    ("finetune", "rick", "digits", 766, "worse", 1e-3),
    ("finetune", "ada", "animals-cat", -87, "better", 0.031),
    ("finetune", "ada", "digits", -396, "better", 0.0014),
    ("finetune", "diffaugment", "animals-cat", 42, "tie", None),
    ("finetune", "diffaugment", "digits", -332, "better", 0.0043),
    ("finetune", "minegan", "animals-cat", -11, "tie", None),
    ("finetune", "minegan", "digits", -41, "tie", None),
    ("finetune", "adafm", "animals-cat", 153, "tie", None),
    ("finetune", "adafm", "digits", 1360, "worse", 1e-3),
    ("finetune", "bsa", "animals-cat", 342, "worse", 0.002),
    ("finetune", "bsa", "digits", 2004, "worse", 1e-3),
    ("finetune", "freeze-g", "animals-cat", 312, "worse", 0.002),
    ("finetune", "freeze-g", "digits", 1353, "worse", 1e-3),
]

LONG_CLAIMS = [  # docs/methods.md, "At the long budget": Δ = b − a on the same shots; p below
    # the bound that the page's rounded p allows
    ("finetune", "scratch", "animals-cat", 226, "worse", 1e-3),
    ("finetune", "source-only", "animals-cat", 450, "worse", 1e-3),
    ("finetune", "freeze-d", "animals-cat", 63, "tie", None),
    ("finetune", "ewc", "animals-cat", -9, "tie", None),
    ("finetune", "cdc", "animals-cat", 139, "worse", 0.0235),
    ("ewc", "cdc", "animals-cat", 148, "worse", 0.0435),
    ("cdc", "dcl", "animals-cat", 205, "worse", 0.00955),
    ("finetune", "dcl", "animals-cat", 344, "worse", 1e-3),
    ("dcl", "adam", "animals-cat", -169, "better", 0.0285),
    ("cdc", "adam", "animals-cat", 36, "tie", None),
    ("finetune", "adam", "animals-cat", 175, "worse", 0.00565),
    ("adam", "rick", "animals-cat", -198, "better", 0.00375),
    ("finetune", "rick", "animals-cat", -23, "tie", None),
    ("finetune", "ada", "animals-cat", -204, "better", 1e-3),
    ("finetune", "diffaugment", "animals-cat", -159, "better", 0.0125),
    ("finetune", "minegan", "animals-cat", -16, "tie", None),
    ("finetune", "adafm", "animals-cat", -6, "tie", None),
    ("finetune", "bsa", "animals-cat", 96, "tie", None),
    ("finetune", "freeze-g", "animals-cat", 431, "worse", 0.00245),
    ("finetune", "l2-sp", "animals-cat", -105, "better", 0.00325),
    ("finetune", "scratch", "digits", 528, "worse", 1e-3),
    ("finetune", "source-only", "digits", 2122, "worse", 1e-3),
    ("finetune", "freeze-d", "digits", 424, "worse", 0.0185),
    ("finetune", "ewc", "digits", 1073, "worse", 1e-3),
    ("finetune", "cdc", "digits", -588, "better", 1e-3),
    ("ewc", "cdc", "digits", -1661, "better", 1e-3),
    ("cdc", "dcl", "digits", 557, "worse", 1e-3),
    ("finetune", "dcl", "digits", -31, "tie", None),
    ("dcl", "adam", "digits", 431, "worse", 0.0235),
    ("cdc", "adam", "digits", 988, "worse", 1e-3),
    ("finetune", "adam", "digits", 400, "worse", 0.0195),
    ("adam", "rick", "digits", 149, "tie", None),
    ("finetune", "rick", "digits", 549, "worse", 1e-3),
    ("finetune", "ada", "digits", -830, "better", 1e-3),
    ("finetune", "diffaugment", "digits", -928, "better", 1e-3),
    ("finetune", "minegan", "digits", -286, "better", 1e-3),
    ("finetune", "adafm", "digits", 826, "worse", 1e-3),
    ("finetune", "bsa", "digits", 1600, "worse", 1e-3),
    ("finetune", "freeze-g", "digits", 1364, "worse", 1e-3),
    ("finetune", "l2-sp", "digits", 802, "worse", 1e-3),
]


@pytest.mark.parametrize(
    ("a", "b", "dataset", "delta", "verdict", "p_below", "budget"),
    [(*claim, "adapted") for claim in ADAPTED_CLAIMS] + [(*c, "long") for c in LONG_CLAIMS],
)
def test_docs_claims_against_the_papers(
    reference_runs, a, b, dataset, delta, verdict, p_below, budget
):
    from gtbench.results.leaderboard import compare

    (comparison,) = compare(reference_runs, a, b, dataset, budget)
    result = comparison.result
    assert (result.n, round(result.delta_mean), result.verdict) == (5, delta, verdict)
    if p_below is not None:
        assert result.p < p_below


def test_methods_page_regulariser_strengths_from_the_committed_records(reference_runs):
    """docs/methods.md, "Rankings against the papers" and the CDC / DCL paragraphs: the
    committed records' reg_grad_ratio (median, and CDC's / DCL's ranges) per target, at
    the adapted budget."""
    runs = reference_runs[reference_runs["reg_grad_ratio"].notna()]
    runs = runs[(runs["budget"] == "adapted") & runs["dataset"].isin(["animals-cat", "digits"])]
    ratio = runs.groupby(["method", "dataset"])["reg_grad_ratio"]
    median = ratio.median().round(2).to_dict()
    assert {k: v for k, v in median.items() if k[0] in ("l2-sp", "ewc", "cdc", "dcl")} == {
        ("l2-sp", "animals-cat"): 0.10, ("l2-sp", "digits"): 0.11,
        ("ewc", "animals-cat"): 0.25, ("ewc", "digits"): 0.30,
        ("cdc", "animals-cat"): 0.99, ("cdc", "digits"): 0.55,
        ("dcl", "animals-cat"): 2.92, ("dcl", "digits"): 1.70,
    }  # fmt: skip
    low, high = ratio.min().round(2).to_dict(), ratio.max().round(2).to_dict()
    assert (low[("cdc", "animals-cat")], high[("cdc", "animals-cat")]) == (0.81, 1.01)
    assert (low[("cdc", "digits")], high[("cdc", "digits")]) == (0.52, 0.61)
    assert (low[("dcl", "animals-cat")], high[("dcl", "animals-cat")]) == (2.77, 3.12)
    assert (low[("dcl", "digits")], high[("dcl", "digits")]) == (1.26, 2.72)


def test_methods_page_regulariser_strengths_at_the_long_budget(reference_runs):
    """docs/methods.md, "At the long budget": reg_grad_ratio medians (CDC's and DCL's
    ranges) on cats at 1600 steps and on digits at 2400."""
    runs = reference_runs[reference_runs["reg_grad_ratio"].notna()]
    runs = runs[runs["budget"] == "long"]
    ratio = runs.groupby(["method", "dataset"])["reg_grad_ratio"]
    median = ratio.median().round(2).to_dict()
    assert median == {
        ("cdc", "animals-cat"): 1.61, ("cdc", "digits"): 0.50,
        ("dcl", "animals-cat"): 2.82, ("dcl", "digits"): 1.26,
        ("ewc", "animals-cat"): 0.19, ("ewc", "digits"): 0.24,
        ("l2-sp", "animals-cat"): 0.08, ("l2-sp", "digits"): 0.09,
    }  # fmt: skip
    low, high = ratio.min().round(2).to_dict(), ratio.max().round(2).to_dict()
    ranges = {k: (low[k], high[k]) for k in low if k[0] in ("cdc", "dcl")}
    assert ranges == {
        ("cdc", "animals-cat"): (1.41, 1.99), ("cdc", "digits"): (0.39, 0.60),
        ("dcl", "animals-cat"): (1.97, 3.97), ("dcl", "digits"): (1.08, 1.31),
    }  # fmt: skip


def _paired_budgets(runs, method, column, dataset="animals-cat"):
    """(adapted, long) per seed for one method on a target, and the paired t-test's p."""
    from scipy import stats

    rows = runs[(runs["dataset"] == dataset) & (runs["method"] == method)]
    table = rows.pivot_table(index="seed", columns="budget", values=column)
    return table, stats.ttest_rel(table["long"], table["adapted"]).pvalue


def test_leaderboard_page_claims_at_the_long_budget(reference_runs):
    """docs/leaderboard.md and docs/methods.md: fine-tuning's few-shot failure from the
    adapted to the long budget on the same shots, and who beats it at 1600 steps."""
    fid, p_fid = _paired_budgets(reference_runs, "finetune", "fid")
    memorised, p_mem = _paired_budgets(reference_runs, "finetune", "mem_closer_to_train")
    assert len(fid) == 5 and round((fid["long"] - fid["adapted"]).mean()) == 52
    assert p_fid < 0.05 and p_mem < 0.02
    assert (fid["long"] > fid["adapted"]).sum() >= 4  # the FID comes back up
    assert round(memorised["adapted"].mean(), 3) == 0.082
    assert round(memorised["long"].mean(), 3) == 0.153
    board = _csv("results/reference/leaderboard.csv")
    long = board[(board["budget"] == "long") & (board["dataset"] == "animals-cat")]
    assert set(long["n_seeds"]) == {5} and len(long) == 16
    rows = long.set_index("method")
    finetune = rows.loc["finetune"]
    assert round(finetune["intra_cluster_diversity_mean"], 3) == 0.062
    assert round(finetune["adaptation_mean"], 3) == 0.928
    verdicts = {v: set(long.loc[long["verdict_holm"] == v, "method"]) for v in ("better", "worse")}
    assert verdicts == {
        "better": {"ada", "l2-sp"},
        "worse": {"adam", "freeze-g", "dcl", "scratch", "source-only"},
    }
    assert round(rows.loc["ada", "delta_p_holm"], 3) == 0.008
    assert round(rows.loc["l2-sp", "delta_p_holm"], 3) == 0.032
    assert round(rows.loc["diffaugment", "delta_p_holm"], 3) == 0.093
    assert long.loc[long["verdict_holm"] == "worse", "delta_p_holm"].max() <= 0.05
    memorised = rows["mem_closer_to_train_mean"].round(3)
    assert (memorised["ewc"], memorised["minegan"]) == (0.057, 0.260)
    assert memorised.idxmax() == "minegan"
    assert round(rows.loc["minegan", "intra_cluster_diversity_mean"], 3) == 0.044
    adapted = rows["adaptation_mean"].round(2)
    assert (adapted["dcl"], adapted["cdc"], adapted["bsa"]) == (0.14, 0.45, 0.31)
    on_cats = long.sort_values("fid_mean")["method"].tolist()
    assert on_cats[:3] == ["ada", "diffaugment", "l2-sp"] and on_cats.index("finetune") == 7


def test_leaderboard_page_claims_at_the_long_budget_on_digits(reference_runs):
    """docs/leaderboard.md and docs/methods.md: on digits at 2400 steps fine-tuning's
    memorisation rises and its diversity falls on the same shots while its FID levels;
    who beats it; the mean ranks over both long targets."""
    fid, p_fid = _paired_budgets(reference_runs, "finetune", "fid", "digits")
    memorised, p_mem = _paired_budgets(reference_runs, "finetune", "mem_closer_to_train", "digits")
    diversity, p_div = _paired_budgets(
        reference_runs, "finetune", "intra_cluster_diversity", "digits"
    )
    assert len(fid) == 5 and round((fid["long"] - fid["adapted"]).mean()) == 17
    assert (round(fid["adapted"].mean()), round(fid["long"].mean())) == (1364, 1381)
    assert round(p_fid, 2) == 0.68 and round(p_mem, 3) == 0.013 and round(p_div, 4) == 0.0014
    assert (memorised["long"] > memorised["adapted"]).all()
    assert (diversity["long"] < diversity["adapted"]).all()
    assert (round(memorised["adapted"].mean(), 3), round(memorised["long"].mean(), 3)) == (
        0.024,
        0.083,
    )
    assert (round(diversity["adapted"].mean(), 3), round(diversity["long"].mean(), 3)) == (
        0.075,
        0.064,
    )
    board = _csv("results/reference/leaderboard.csv")
    long = board[(board["budget"] == "long") & (board["dataset"] == "digits")]
    assert set(long["n_seeds"]) == {5} and len(long) == 16
    rows = long.set_index("method")
    assert round(rows.loc["finetune", "adaptation_mean"], 3) == 0.948
    assert board.loc[board["best"], ["dataset", "budget", "method"]].values.tolist() == [
        ["digits", "long", "diffaugment"]
    ]
    verdicts = {v: set(long.loc[long["verdict_holm"] == v, "method"]) for v in ("better", "tie")}
    assert verdicts == {
        "better": {"diffaugment", "ada", "cdc", "minegan"},
        "tie": {"dcl", "adam", "freeze-d"},
    }
    assert rows.loc[["diffaugment", "ada", "cdc", "minegan"], "delta_p_holm"].max() <= 0.002
    assert (
        round(rows.loc["adam", "delta_p_holm"], 3)
        == round(rows.loc["freeze-d", "delta_p_holm"], 3)
        == 0.054
    )
    worse = long[long["verdict_holm"] == "worse"]
    assert len(worse) == 8 and worse["delta_p_holm"].max() <= 0.003
    memorised = rows["mem_closer_to_train_mean"].round(3)
    assert memorised.idxmax() == "minegan" and memorised["minegan"] == 0.150
    assert round(rows.loc["minegan", "intra_cluster_diversity_mean"], 3) == 0.057
    assert (memorised["cdc"], round(rows.loc["cdc", "intra_cluster_diversity_mean"], 3)) == (
        0.009,
        0.100,
    )
    adapted = rows["adaptation_mean"].round(3)
    assert (adapted["cdc"], adapted["dcl"], adapted["ewc"]) == (0.992, 0.697, 0.019)
    ranks = _csv("results/reference/ranks.csv")
    ranks = ranks[ranks["budget"] == "long"].set_index("method")
    assert set(ranks["n_targets"]) == {2}
    rank = ranks["mean_rank"]
    assert (rank["ada"], rank["diffaugment"], rank["minegan"]) == (1.5, 1.5, 4.5)
    assert {m for m, r in rank.items() if r == 7} == {"cdc", "finetune", "l2-sp", "rick"}


def test_leaderboard_page_claims_about_the_shots_sweep():
    """docs/leaderboard.md, "Data efficiency": the committed shots sweep."""
    board = _csv("results/shots/leaderboard.csv")
    assert set(board["n_seeds"]) == {5} and set(board["shots"]) == {5, 10, 50}
    assert not board["stale"].any() and set(board["budget"]) == {"adapted"}
    rows = board.set_index(["method", "shots"])
    fid = rows["fid_mean"].round().astype(int).unstack("shots")
    assert fid.to_dict("index") == {
        "finetune": {5: 732, 10: 473, 50: 337},
        "diffaugment": {5: 653, 10: 515, 50: 483},
        "ewc": {5: 683, 10: 503, 50: 428},
        "freeze-d": {5: 887, 10: 525, 50: 396},
        "cdc": {5: 806, 10: 687, 50: 489},
        "source-only": {5: 974, 10: 974, 50: 974},
    }
    holm = rows["verdict_holm"].unstack("shots")
    others = holm.drop("finetune")
    assert set(others[5]) == {"tie"} and set(others[50]) == {"worse"}
    assert {m for m, v in others[10].items() if v == "worse"} == {"cdc", "source-only"}
    assert list(board.loc[board["best"], ["method", "shots"]].itertuples(index=False)) == [
        ("finetune", 50)
    ]
    five = board[board["shots"] == 5].set_index("method")
    assert round(five.loc["diffaugment", "delta_fid_mean"]) == -79
    assert round(five.loc["diffaugment", "delta_p"], 3) == 0.029
    assert round(five.loc["ewc", "delta_fid_mean"]) == -49
    assert five["delta_p_holm"].min() >= 0.077
    assert round(five.loc["finetune", "fid_std"]) == 150
    cdc = rows.loc["cdc", "adaptation_mean"].round(2).to_dict()
    assert cdc == {5: 0.25, 10: 0.31, 50: 0.60}
    # its 10-shot cells are the reference's, run id for run id
    reference = ROOT / "results" / "reference" / "runs"
    import json

    ten = [
        path.parent.name
        for path in (ROOT / "results" / "shots" / "runs").glob("*/record.json")
        if json.loads(path.read_text())["shots"] == 10
    ]
    assert len(ten) == 30 and all((reference / run_id).is_dir() for run_id in ten)


def test_leaderboard_page_claims_about_the_face_pair():
    """docs/leaderboard.md, "The face pair", at its adapted budget (100 steps, by KID)."""
    board = _csv("results/reference/leaderboard.csv")
    faces = board[board["dataset"] == "lfw-faces"]
    assert set(faces["budget"]) == {"adapted"} and set(faces["n_seeds"]) == {5}
    assert len(faces) == 13 and set(faces["ranked_by"]) == {"kid"} and not faces["fid_valid"].any()
    rows = faces.set_index("method")
    assert round(rows.loc["finetune", "kid_mean"]) == 562
    assert round(rows.loc["finetune", "adaptation_mean"], 3) == 0.974
    verdicts = {
        v: set(faces.loc[faces["verdict_holm"] == v, "method"]) for v in ("better", "worse")
    }
    assert verdicts == {
        "better": set(),
        "worse": {"adam", "cdc", "freeze-g", "dcl", "bsa", "source-only", "scratch"},
    }
    ada = rows.loc["ada"]
    assert (round(ada["kid_mean"]), round(ada["delta_kid_mean"]), round(ada["delta_p"], 2)) == (
        469, -92, 0.14,
    )  # fmt: skip
    assert rows["kid_mean"].idxmin() == "ada"
    for method, delta, p, holm in (
        ("diffaugment", 425, 0.018, 0.071),
        ("minegan", 568, 0.011, 0.055),
    ):
        row = rows.loc[method]
        assert (round(row["delta_kid_mean"]), round(row["delta_p"], 3)) == (delta, p)
        assert (row["verdict"], round(row["delta_p_holm"], 3)) == ("worse", holm)
    assert round(rows.loc["adam", "delta_p_holm"], 3) == 0.040
    memorised = rows["mem_closer_to_train_mean"].round(3)
    assert (memorised["finetune"], memorised["minegan"], memorised["source-only"]) == (
        0.222, 0.347, 0.023,
    )  # fmt: skip
    assert round(rows.loc["minegan", "intra_cluster_diversity_mean"], 3) == 0.050
    assert rows["intra_cluster_diversity_mean"].drop("scratch").idxmin() == "minegan"
    adapted = rows["adaptation_mean"].round(2)
    assert (adapted["dcl"], adapted["cdc"], adapted["scratch"]) == (0.25, 0.80, 0.79)
    assert (round(rows.loc["cdc", "kid_mean"]), round(rows.loc["scratch", "kid_mean"])) == (
        1258, 4125,
    )  # fmt: skip
    assert rows["kid_mean"].idxmax() == "scratch"


def test_check_adaptation_script_reads_edges_and_refuses_an_empty_folder(tmp_path, capsys):
    """docs/check_adaptation.py: HOG descriptors tell a vertical stroke from a horizontal
    one (the pixel-space second opinion reads shape, not the extractor's features), and a
    folder without finished runs of the target gets one line, not a traceback."""
    import numpy as np
    import torch

    script = docs_script("check_adaptation")
    images = torch.zeros(2, 1, 32, 32, dtype=torch.uint8)
    images[0, :, 4:28, 14:18] = 255
    images[1, :, 14:18, 4:28] = 255
    features = script.hog_features(images)
    assert features.shape[0] == 2 and np.isfinite(features).all()
    assert np.abs(features[0] - features[1]).sum() > 1.0
    (tmp_path / "runs").mkdir()
    assert script.main([str(tmp_path), "--dataset", "digits"]) == 1
    assert "no finished runs of digits" in capsys.readouterr().err


def test_the_main_jobs_cost_per_method_is_what_the_records_say():
    """docs/performance.md's per-method table and total come from the committed reference's
    records of the default suite, as printed by the perf script it names."""
    out = subprocess.run(
        [sys.executable, "perf/reference_envelope.py", "results/reference"]
        + ["--suite", "default", "--per-method"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    measured = {}
    for line in out.splitlines():
        if " · " in line:
            method, numbers = line.split(" · ", 1)[1].split(None, 1)
            measured[method] = float(numbers.split()[-2])  # cpu s (before peak MB)
    assert len(measured) == 16
    page = (ROOT / "docs" / "performance.md").read_text()
    section = page.split("## The main job's cost, per method", 1)[1]
    names = {"the unadapted source": "source-only", "FreezeG": "freeze-g", "FreezeD": "freeze-d"}
    shown = set()
    for row in re.findall(r"^\| (.+?) \| ([\d.,– ]+) \|", section, re.M):
        methods = [names.get(m, m.lower()) for m in row[0].split(", ")]
        values = [float(v) for v in re.split(r"[,–] ?", row[1].strip())]
        cpus = sorted(measured[m] for m in methods)
        if len(values) == 2 and "–" in row[1]:
            assert (cpus[0], cpus[-1]) == pytest.approx(tuple(values), abs=0.051), row
        else:
            assert [measured[m] for m in methods] == pytest.approx(values, abs=0.051), row
        shown.update(methods)
    assert shown == set(measured)
    assert f"sum to {round(sum(measured.values()) * 3)} CPU s" in " ".join(section.split())
