"""What docs/leaderboard.md, docs/tuning.md and docs/methods.md say about the committed
results, proved from the committed files: each table equals what ``docs/make_tables.py``
prints from the CSVs, and each claim in the prose (verdicts, p bounds, ranks, CI widths,
paired differences) is recomputed from the records."""

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
    """ "No method beats plain fine-tuning here" and the sentences after it."""
    board = _csv("results/reference/leaderboard.csv")
    assert not board["stale"].any() and set(board["n_seeds"]) == {8}
    assert "better" not in set(board["verdict_holm"]) and not board["best"].any()
    for target, ties in (
        ("animals-cat", {"minegan", "ada", "diffaugment"}),
        ("digits", {"minegan", "diffaugment"}),
    ):
        rows = board[(board["dataset"] == target) & (board["method"] != "finetune")]
        assert set(rows.loc[rows["verdict_holm"] == "tie", "method"]) == ties
        assert set(rows["verdict_holm"]) == {"tie", "worse"}
        assert len(rows) == 15  # "the target's 15 comparisons"
    cats = board[board["dataset"] == "animals-cat"]
    ties = cats[cats["verdict_holm"] == "tie"]
    assert ties["delta_p"].min() >= 0.24 and ties["delta_p_holm"].min() >= 0.74
    assert cats.loc[cats["verdict_holm"] == "worse", "delta_p_holm"].max() < 1e-3
    digits = board[board["dataset"] == "digits"].set_index("method")
    assert (digits.loc["diffaugment", "verdict"], digits.loc["diffaugment", "verdict_holm"]) == (
        "worse",
        "tie",
    )
    assert round(digits.loc["diffaugment", "delta_p"], 3) == 0.040
    assert round(digits.loc["diffaugment", "delta_p_holm"], 3) == 0.080
    ranks = _csv("results/reference/ranks.csv").set_index("method")
    assert tuple(ranks.loc["finetune", ["mean_rank", "rank_ci95_low", "rank_ci95_high"]]) == (
        1.5,
        1,
        2.5,
    )
    assert list(ranks.index[:4]) == ["finetune", "ada", "diffaugment", "minegan"]
    assert tuple(ranks.loc["minegan", ["mean_rank", "rank_ci95_low", "rank_ci95_high"]]) == (
        4,
        1.5,
        7.5,
    )


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
    """ "What it supports, with 3 seeds and 4 trials"."""
    table = _csv("results/tuned/tuning.csv")
    trains = table["method"] != "source-only"  # nothing to tune: its one trial is itself
    assert set(table.loc[trains, "trials"]) == {4} and set(table["tuned_seeds"]) == {3}
    changed = {
        (r.dataset, r.method): (r.default_verdict, r.tuned_verdict)
        for r in table.itertuples()
        if r.default_verdict != r.tuned_verdict
    }
    worse = {
        m: ("tie", "worse")
        for m in ("l2-sp", "freeze-d", "minegan", "bsa", "adafm", "ewc", "adam", "cdc")
    }
    assert changed == {
        ("animals-cat", "dcl"): ("worse", "tie"),
        ("digits", "freeze-g"): ("worse", "tie"),
        ("digits", "source-only"): ("tie", "worse"),
        **{("digits", m): v for m, v in worse.items()},
    }
    kept = {(r.dataset, r.method): r.tuned_verdict for r in table.itertuples()}
    for method in ("cdc", "scratch"):
        assert kept[("animals-cat", method)] == "worse"
    for method in ("rick", "dcl", "scratch"):
        assert kept[("digits", method)] == "worse"
    assert {kept[("digits", m)] for m in ("ada", "diffaugment")} == {"tie"}
    board = _csv("results/tuned/leaderboard.csv")  # "most of these ties read worse": 27 of 39
    ties = board[board["verdict_holm"] == "tie"]
    assert (len(ties), int((ties["verdict"] == "worse").sum())) == (39, 27)
    cats_other = table[(table["dataset"] == "animals-cat")]
    cats_other = cats_other[~cats_other["method"].isin(["cdc", "scratch", "dcl", "finetune"])]
    assert set(cats_other["default_verdict"]) | set(cats_other["tuned_verdict"]) == {"tie"}
    helped = table[table["tuned_minus_default_verdict_holm"] == "better"]
    assert set(zip(helped["dataset"], helped["method"], strict=True)) == {
        ("animals-cat", "ada"),
        ("animals-cat", "rick"),
        ("animals-cat", "dcl"),
        ("digits", "finetune"),
        ("digits", "rick"),
    }
    assert "better" not in set(table["tuned_verdict"])  # no method beats tuned finetune
    finetune = table[table["method"] == "finetune"].set_index("dataset")
    assert round(finetune.loc["animals-cat", "tuned_minus_default_mean"]) == -96
    assert round(finetune.loc["digits", "tuned_minus_default_mean"]) == -276
    lowest = table.loc[table.groupby("dataset")["tuned_mean"].idxmin()]
    assert set(lowest["method"]) == {"ada"} and set(lowest["tuned_verdict"]) == {"tie"}
    import json
    from collections import Counter

    records = (ROOT / "results" / "tuned" / "runs").glob("*/record.json")
    cells = Counter(json.loads(path.read_text()).get("selection") for path in records)
    assert cells == {"trial": 122, "default": 96, "tuned-validation": 96}  # 314 cells
    kept = table[trains & (table["selected_trial"] == 0)]
    assert set(zip(kept["dataset"], kept["method"], strict=True)) == {
        ("animals-cat", "ewc"),
        ("digits", "ewc"),
        ("digits", "freeze-d"),
        ("digits", "minegan"),
    }


def test_leaderboard_page_claims_about_seeds():
    """ "Seeds matter": the CIs at 3 and 8 seeds, and the extrapolated seed counts."""
    import numpy as np
    from scipy import stats

    from gtbench.results.leaderboard import leaderboard, run_rows

    runs = _as_committed(run_rows(ROOT / "results" / "reference"))
    widths, ties = {}, {}
    for seeds, subset in ((3, runs[runs["seed"] < 3]), (8, runs)):
        board = leaderboard(subset)
        board = board[~board["method"].isin(["finetune", "scratch"])]
        width = board["delta_fid_ci95_high"] - board["delta_fid_ci95_low"]
        widths[seeds] = width.groupby(board["dataset"]).mean().round().to_dict()
        assert set(board.groupby("dataset").size()) == {14}  # "of the 14"
        ties[seeds] = (board["verdict_holm"] == "tie").groupby(board["dataset"]).sum().to_dict()
    assert widths == {
        3: {"animals-cat": 151, "digits": 195},
        8: {"animals-cat": 53, "digits": 68},
    }
    assert ties == {3: {"animals-cat": 12, "digits": 11}, 8: {"animals-cat": 3, "digits": 2}}

    fid = runs[runs["dataset"] == "animals-cat"].pivot_table("fid", "seed", "method")
    needed = {}
    for method in ("ada", "diffaugment", "minegan"):
        delta = (fid[method] - fid["finetune"]).to_numpy()
        mean, sd = abs(delta.mean()), delta.std(ddof=1)
        needed[method] = next(
            n for n in range(2, 1000) if mean / (sd / np.sqrt(n)) > stats.t.ppf(0.975, n - 1)
        )
    assert needed == {"ada": 22, "diffaugment": 25, "minegan": 97}


@pytest.fixture(scope="module")
def reference_runs():
    from gtbench.results.leaderboard import run_rows

    return _as_committed(run_rows(ROOT / "results" / "reference"))


@pytest.mark.parametrize(
    ("a", "b", "dataset", "delta", "verdict", "p_below"),
    [  # docs/methods.md, "Rankings against the papers": Δ = b − a on the same shots
        ("finetune", "scratch", "animals-cat", 3308, "worse", 1e-5),
        ("finetune", "scratch", "digits", 1812, "worse", 1e-5),
        ("finetune", "source-only", "animals-cat", 219, "worse", 1e-5),
        ("finetune", "source-only", "digits", 430, "worse", 1e-5),
        ("finetune", "freeze-d", "animals-cat", 44, "worse", 1e-4),
        ("finetune", "freeze-d", "digits", 80, "worse", 1e-4),
        ("ewc", "cdc", "animals-cat", 89, "worse", 1e-3),
        ("cdc", "dcl", "animals-cat", -164, "better", 1e-3),
        ("cdc", "adam", "animals-cat", -56, "better", 1e-3),
        ("dcl", "adam", "animals-cat", 108, "worse", 1e-3),
        ("adam", "rick", "animals-cat", -15, "tie", None),
        ("finetune", "minegan", "animals-cat", -22, "tie", None),
        ("finetune", "minegan", "digits", 119, "tie", None),
    ],
)
def test_docs_claims_against_the_papers(reference_runs, a, b, dataset, delta, verdict, p_below):
    from gtbench.results.leaderboard import compare

    (comparison,) = compare(reference_runs, a, b, dataset)
    result = comparison.result
    assert (result.n, round(result.delta_mean), result.verdict) == (8, delta, verdict)
    if p_below is not None:
        assert result.p < p_below


def test_methods_page_regulariser_strengths_from_the_committed_records(reference_runs):
    """docs/methods.md, "Rankings against the papers" and the CDC / DCL paragraphs: the
    committed records' reg_grad_ratio (median, and CDC's / DCL's ranges) per target."""
    runs = reference_runs[reference_runs["reg_grad_ratio"].notna()]
    ratio = runs.groupby(["method", "dataset"])["reg_grad_ratio"]
    median = ratio.median().round(2).to_dict()
    assert {k: v for k, v in median.items() if k[0] in ("l2-sp", "ewc", "dcl")} == {
        ("l2-sp", "animals-cat"): 0.10, ("l2-sp", "digits"): 0.13,
        ("ewc", "animals-cat"): 0.31, ("ewc", "digits"): 0.36,
        ("dcl", "animals-cat"): 0.63, ("dcl", "digits"): 0.89,
    }  # fmt: skip
    assert round(median[("cdc", "animals-cat")], 1) == 2.1
    assert round(median[("cdc", "digits")], 1) == 3.9
    low, high = ratio.min().to_dict(), ratio.max().to_dict()
    assert (round(low[("cdc", "animals-cat")], 2), round(high[("cdc", "animals-cat")], 1)) == (
        0.81, 5.6,
    )  # fmt: skip
    assert (round(low[("cdc", "digits")], 1), round(high[("cdc", "digits")], 1)) == (1.1, 13.6)
    assert (round(low[("dcl", "animals-cat")], 2), round(high[("dcl", "animals-cat")], 2)) == (
        0.45, 0.85,
    )  # fmt: skip
    assert (round(low[("dcl", "digits")], 2), round(high[("dcl", "digits")], 2)) == (0.77, 0.96)
