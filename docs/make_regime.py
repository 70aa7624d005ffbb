"""The regime study's tables and figure (docs/regime.md) from its records, so every number
there is regenerated rather than typed:

    python docs/make_regime.py results/regime            # Markdown tables and budgets
    python docs/make_regime.py results/regime --plot docs/regime.png

Each record's ``curve`` holds, every 100 steps, the EMA's KID/FID, memorisation,
diversity and adaptation on the target's validation split. Per target and method the
seeds are averaged at each step. The budgets follow one written rule on fine-tuning's
validation KID: **adapted** is the first step whose seed-mean KID has closed 90 % of the
gap between its start and its minimum (where the curve levels off), raised 100 steps at a
time while full-length fine-tuning runs of that budget (``RESULTS/adaptation-check``:
the protocol's own EMA, 5 seeds) put fewer than 90 % of their samples in the target by
the adaptation measure (it reads the shot pool and validation images, never the
evaluation set); **long** is the first step at or after 4× adapted whose memorisation
and KID are both above their values at the adapted budget (the few-shot failure), or
the end of the curve if none is.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

COLUMNS = {
    "kid_mean": "KID",
    "fid": "FID",
    "mem_closer_to_train": "memorised",
    "intra_cluster_diversity": "diversity",
    "adaptation": "adapted",
}
SHOWN_STEPS = (100, 200, 300, 400, 500, 600, 800, 1000, 1500, 1600, 2000, 2400, 3000, 4000, 5000)
LEVELLED = 0.9  # share of the start-to-minimum KID gap closed where the curve levels off
ADAPTED_SHARE = 0.9  # fine-tuning's seed-mean adaptation the adapted budget must reach
LONG_FACTOR = 4
CHECKS = "adaptation-check"  # full-length fine-tuning runs at candidate budgets


def curves(results: Path) -> pd.DataFrame:
    """One row per (dataset, method, seed, step) of every finished record's curve."""
    rows = []
    for path in sorted(results.glob("runs/*/record.json")):
        record = json.loads(path.read_text())
        if record.get("status") != "ok" or not record.get("curve"):
            continue
        for point in record["curve"]:
            rows.append(
                {
                    "dataset": record["dataset"]["name"],
                    "method": record["method"]["name"],
                    "seed": record["seed"],
                    **{k: point.get(k) for k in ("step", *COLUMNS)},
                }
            )
    return pd.DataFrame(rows)


def adaptation_checks(folder: Path) -> pd.DataFrame:
    """Fine-tuning's seed-mean adaptation per dataset and budget (steps), from full-length
    runs (not curve points: a run's EMA half-life is its own share of the run)."""
    rows = []
    for path in sorted(folder.glob("runs/*/record.json")):
        record = json.loads(path.read_text())
        if record.get("status") != "ok" or record["method"]["name"] != "finetune":
            continue
        rows.append(
            {
                "dataset": record["dataset"]["name"],
                "steps": record["hparams"]["train"]["iters"],
                "seed": record["seed"],
                "adaptation": record["metrics"]["adaptation"],
            }
        )
    if not rows:
        return pd.DataFrame(columns=["dataset", "steps", "seeds", "adaptation"])
    grouped = pd.DataFrame(rows).groupby(["dataset", "steps"])
    out = grouped.agg(seeds=("seed", "nunique"), adaptation=("adaptation", "mean"))
    return out.reset_index()


def means(frame: pd.DataFrame) -> pd.DataFrame:
    """Seed means (and the number of seeds) per dataset, method and step."""
    grouped = frame.groupby(["dataset", "method", "step"])
    out = grouped[list(COLUMNS)].mean()
    out["seeds"] = grouped["seed"].nunique()
    return out.reset_index()


def budgets(
    finetune: pd.DataFrame, checked: dict[int, float] | None = None
) -> tuple[int, int, bool]:
    """(adapted, long, failure shown) from fine-tuning's seed-mean curve on one target;
    ``checked``: steps → fine-tuning's adaptation in full-length runs of that budget."""
    curve = finetune.sort_values("step").reset_index(drop=True)
    kid = curve["kid_mean"]
    start, low = kid.iloc[0], kid.min()
    adapted = int(curve[kid <= low + (1 - LEVELLED) * (start - low)].iloc[0]["step"])
    while (checked or {}).get(adapted, 1.0) < ADAPTED_SHARE:
        adapted += 100
    adapted_row = curve[curve["step"] == adapted].iloc[0]
    later = curve[curve["step"] >= LONG_FACTOR * adapted]
    failing = later[
        (later["mem_closer_to_train"] > adapted_row["mem_closer_to_train"])
        & (later["kid_mean"] > adapted_row["kid_mean"])
    ]
    if not failing.empty:
        return adapted, int(failing.iloc[0]["step"]), True
    return adapted, int(curve["step"].iloc[-1]), False


def _fmt(column: str, value: float) -> str:
    if pd.isna(value):
        return "–"
    if column == "kid_mean":
        return f"{value:.3f}"
    if column == "fid":
        return f"{value:.0f}"
    return f"{value:.2f}"


def checked_for(checks: pd.DataFrame, dataset: str) -> dict[int, float]:
    own = checks[checks["dataset"] == dataset]
    return {int(s): float(a) for s, a in zip(own["steps"], own["adaptation"], strict=True)}


def check_table(checks: pd.DataFrame) -> list[str]:
    """Fine-tuning's adaptation in the full-length runs that confirm the adapted budgets."""
    lines = ["| target | steps | seeds | adapted |", "|---|---|---|---|"]
    for row in checks.sort_values(["dataset", "steps"]).itertuples():
        lines.append(f"| {row.dataset} | {row.steps} | {row.seeds} | {row.adaptation:.3f} |")
    return lines


def tables(
    table: pd.DataFrame, checks: pd.DataFrame | None = None, frame: pd.DataFrame | None = None
) -> list[str]:
    """The page's Markdown: the adaptation checks, then per target its budgets, every method
    at both budgets paired by seed (``frame``: the per-seed curves), and each method's curve."""
    lines: list[str] = []
    if checks is not None and not checks.empty:
        lines += ["### Fine-tuning's adaptation at candidate budgets", "", *check_table(checks), ""]
    for dataset, part in table.groupby("dataset", sort=False):
        finetune = part[part["method"] == "finetune"]
        lines += [f"### {dataset}", ""]
        if not finetune.empty:
            checked = None if checks is None else checked_for(checks, str(dataset))
            adapted, long, failed = budgets(finetune, checked)
            lines += [
                f"Budgets by the rule: adapted {adapted} steps, long {long} steps"
                + ("" if failed else " (no failure by the end of the curve)"),
                "",
            ]
            if frame is not None:
                steps = {"adapted": adapted, "long": long}
                lines += [
                    "**At the two budgets** (seed means; Δ paired by seed = shots)",
                    "",
                    *at_budgets(frame, str(dataset), steps),
                    "",
                ]
        methods = sorted(part["method"].unique(), key=lambda m: (m != "finetune", m))
        for method in methods:
            rows = part[(part["method"] == method) & part["step"].isin(SHOWN_STEPS)]
            if rows.empty:
                continue
            seeds = int(rows["seeds"].min())
            lines += [
                f"**{method}** ({seeds} seed{'s' if seeds != 1 else ''}, validation split)",
                "",
                "| step | " + " | ".join(COLUMNS.values()) + " |",
                "|---|" + "---|" * len(COLUMNS),
            ]
            for _, row in rows.sort_values("step").iterrows():
                cells = [_fmt(c, row[c]) for c in COLUMNS]
                lines.append(f"| {int(row['step'])} | " + " | ".join(cells) + " |")
            lines.append("")
    return lines


def at_budgets(frame: pd.DataFrame, dataset: str, steps: dict[str, int]) -> list[str]:
    """Every method against fine-tuning at the named budgets (``{"adapted": 400, ...}``),
    paired by seed (the seed fixes the shots): seed-mean KID, memorisation and diversity,
    and the mean paired KID difference with the number of seeds on which it is lower.
    Three seeds give no significance; the count says how consistent a difference is."""
    own = frame[frame["dataset"] == dataset]
    lines = [
        "| budget | method | seeds | KID | Δ KID vs finetune | lower on | memorised | diversity |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, step in steps.items():
        at = own[own["step"] == step]
        kid = at.pivot_table(index="seed", columns="method", values="kid_mean")
        if "finetune" not in kid:
            continue
        methods = sorted(kid.columns, key=lambda m: (m != "finetune", m))
        for method in methods:
            rows = at[at["method"] == method]
            paired = (kid[method] - kid["finetune"]).dropna()
            if method == "finetune":
                delta, lower = "–", "–"
            else:
                delta = f"{paired.mean():+.0f}"
                lower = f"{int((paired < 0).sum())} of {len(paired)}"
            lines.append(
                f"| {name} {step} | {method} | {rows['seed'].nunique()} "
                f"| {rows['kid_mean'].mean():.0f} | {delta} | {lower} "
                f"| {rows['mem_closer_to_train'].mean():.2f} "
                f"| {rows['intra_cluster_diversity'].mean():.2f} |"
            )
    return lines


def plot(table: pd.DataFrame, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(table["dataset"].unique())
    panels = ["kid_mean", "mem_closer_to_train", "intra_cluster_diversity", "adaptation"]
    figure, axes = plt.subplots(
        len(datasets), len(panels), figsize=(4 * len(panels), 3.2 * len(datasets)), squeeze=False
    )
    for row, dataset in enumerate(datasets):
        part = table[table["dataset"] == dataset]
        for col, column in enumerate(panels):
            axis = axes[row][col]
            for method, curve in part.groupby("method"):
                curve = curve.sort_values("step")
                width = 2.2 if method == "finetune" else 1.0
                axis.plot(curve["step"], curve[column], label=method, linewidth=width)
            axis.set_title(f"{dataset}: {COLUMNS[column]}", fontsize=9)
            axis.set_xlabel("step")
            if column == "kid_mean":
                axis.set_yscale("log")
    axes[0][0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(out, dpi=90)


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit(__doc__)
    frame = curves(Path(argv[0]))
    table = means(frame) if not frame.empty else frame
    if table.empty:
        raise SystemExit(f"no finished curves in {argv[0]}")
    if "--plot" in argv:
        plot(table, Path(argv[argv.index("--plot") + 1]))
    print("\n".join(tables(table, adaptation_checks(Path(argv[0]) / CHECKS), frame)))


if __name__ == "__main__":
    main(sys.argv[1:])
