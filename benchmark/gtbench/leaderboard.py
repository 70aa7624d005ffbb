"""``runs.csv`` (one row per run) and ``leaderboard.csv`` (mean and spread over seeds, one
row per source × method × dataset × shots × extractor), rebuilt from the records alone.

Both files are written atomically, so any number of processes may regenerate them at
once on a shared filesystem: each leaves a complete, valid CSV.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pandas as pd

from gtbench.records import atomic_write_text, iter_records

KEY = ["source", "method", "dataset", "shots", "extractor"]
LEAD_METRICS = ["fid", "kid_mean"]
RUNS_CSV = "runs.csv"
LEADERBOARD_CSV = "leaderboard.csv"
PLAN_JSON = "sweep.json"


def _described(ref: dict[str, Any], kind: str) -> str:
    """``name`` or ``name:k=v`` with the parameters that differ from the plugin's defaults."""
    from gtbench.cells import describe

    try:
        return describe(ref, kind)
    except Exception:  # noqa: BLE001 - plugin no longer installed: show every parameter
        params = ",".join(f"{k}={v}" for k, v in sorted(ref["params"].items()))
        return ref["name"] + (":" + params if params else "")


def _protocol(record: dict[str, Any]) -> str:
    """``<eval hash>-<train hash>``: rows that differ in evaluation settings or training
    budget are never averaged together. Methods that do not train (``source-only``) have
    train hash ``none`` and are ranked against every budget of the same evaluation."""
    evaluation = {k: v for k, v in record.get("eval", {}).items() if k in _EVAL_IDENTITY}
    train = record.get("hparams", {}).get("train", {})
    return f"{_short_hash(evaluation)}-{_short_hash(train) if train else 'none'}"


def _short_hash(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:6]


_EVAL_IDENTITY = {"n_samples", "kid_subset_size", "kid_subsets", "batch_size"}


def run_rows(results_dir: str | Path) -> pd.DataFrame:
    """One row per record: identity, status, metrics, timings."""
    rows = []
    for record in iter_records(results_dir):
        row: dict[str, Any] = {
            "run_id": record["run_id"],
            "status": record["status"],
            "source": _described(record["source"], "source"),
            "method": _described(record["method"], "method"),
            "dataset": _described(record["dataset"], "dataset"),
            "shots": record["shots"],
            "seed": record["seed"],
            "extractor": _described(record["eval"]["extractor"], "extractor"),
            "protocol": _protocol(record),
        }
        for name, value in sorted(record.get("metrics", {}).items()):
            row[name] = value
        for name, value in sorted(record.get("timings", {}).items()):
            row[name] = value
        row["error"] = record.get("error") or ""
        rows.append(row)
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame = frame.sort_values(KEY + ["seed", "run_id"], kind="stable").reset_index(drop=True)
    return frame


def leaderboard(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and sample std over seeds of every metric of the ``ok`` runs."""
    if runs.empty or "status" not in runs:
        return pd.DataFrame(columns=KEY + ["n_seeds", "fid_mean", "fid_std", "kid_mean", "kid_std"])
    ok = runs[runs["status"] == "ok"]
    if ok.empty:
        return pd.DataFrame(columns=KEY + ["n_seeds", "fid_mean", "fid_std", "kid_mean", "kid_std"])
    # kid_std of one run is the spread over KID subsets; the leaderboard's kid_std is the
    # spread over seeds, so the per-run value stays in runs.csv only.
    skip = set(KEY) | {"run_id", "status", "seed", "protocol", "error", "kid_std"}
    metrics = [c for c in ok.columns if c not in skip and pd.api.types.is_numeric_dtype(ok[c])]
    ordered = [m for m in LEAD_METRICS if m in metrics] + sorted(
        m for m in metrics if m not in LEAD_METRICS
    )
    rows = []
    for key, group in ok.groupby(KEY + ["protocol"], sort=True, dropna=False):
        row = dict(zip(KEY + ["protocol"], key, strict=True))
        row["n_seeds"] = int(group["seed"].nunique())
        for metric in ordered:
            values = group[metric].dropna()
            base = "kid" if metric == "kid_mean" else metric
            row[f"{base}_mean"] = values.mean() if len(values) else float("nan")
            row[f"{base}_std"] = values.std(ddof=1) if len(values) > 1 else float("nan")
        rows.append(row)
    table = pd.DataFrame(rows)
    front = KEY + ["n_seeds", "fid_mean", "fid_std", "kid_mean", "kid_std"]
    front = [c for c in front if c in table.columns]
    rest = [c for c in table.columns if c not in front and c != "protocol"]
    table = table[front + rest + ["protocol"]]
    return table.sort_values(["source", "dataset", "shots", "extractor", "fid_mean"]).reset_index(
        drop=True
    )


def write_tables(results_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rebuild and atomically write ``runs.csv`` and ``leaderboard.csv``."""
    results_dir = Path(results_dir)
    runs = run_rows(results_dir)
    board = leaderboard(runs)
    atomic_write_text(results_dir / RUNS_CSV, runs.to_csv(index=False))
    atomic_write_text(results_dir / LEADERBOARD_CSV, board.to_csv(index=False, float_format="%.6g"))
    return runs, board


def best_rows(board: pd.DataFrame) -> set[int]:
    """Index of the lowest mean FID per source × dataset × shots × extractor × evaluation."""
    if board.empty or "fid_mean" not in board:
        return set()
    rated = board.dropna(subset=["fid_mean"]).assign(
        evaluation=lambda t: t["protocol"].str.split("-").str[0]
    )
    groups = rated.groupby(["source", "dataset", "shots", "extractor", "evaluation"])
    return {int(index) for index in groups["fid_mean"].idxmin().tolist()}


def export_grids(results_dir: str | Path, out_dir: str | Path) -> list[Path]:
    """Copy one sample grid per leaderboard row (its first seed's ``samples.png``) to
    ``out_dir``, named ``<source>__<dataset>__<shots>shot__<method>__<protocol>.png``."""
    import re
    import shutil

    runs = run_rows(results_dir)
    board = leaderboard(runs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for _, row in board.iterrows():
        key = KEY + ["protocol"]
        match = runs[runs["status"] == "ok"]
        for column in key:
            match = match[match[column] == row[column]]
        first = match.sort_values("seed").iloc[0]
        grid = Path(results_dir) / "runs" / first["run_id"] / "samples.png"
        if not grid.exists():
            continue
        parts = [
            row["source"],
            row["dataset"],
            f"{row['shots']}shot",
            row["method"],
            row["protocol"],
        ]
        name = "__".join(re.sub(r"[^A-Za-z0-9.=-]+", "-", str(p)) for p in parts) + ".png"
        shutil.copyfile(grid, out / name)
        written.append(out / name)
    return written
