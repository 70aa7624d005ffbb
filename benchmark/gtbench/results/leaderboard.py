"""``runs.csv`` (one row per run), ``leaderboard.csv`` (one row per source × method ×
dataset × shots × evaluation identity × training protocol × selection, with paired
statistics against a reference method) and ``ranks.csv`` (mean rank over targets),
rebuilt from the records alone.

Rows are grouped by everything that can change a number and by nothing else: the
evaluation identity (:func:`gtbench.plan.identity.evaluation_identity`: reference set
``reference_key``, extractor weights ``extractor_identity``, ``n_samples``, KID subset
size and count) and the training hyper-parameters (``protocol``:
:func:`gtbench.plan.identity.protocol_of`), never the evaluation batch size. A *target*
is one source × dataset × shots × extractor × evaluation identity × selection × training
protocol; methods that do not train (``source-only``) join every training protocol of
their evaluation.

Within a target, every method is compared with the reference method (default
``finetune``) seed by seed (the seed fixes the shots): see :mod:`gtbench.measure.stats`. The
statistics use FID, or KID where FID is not valid (``n_reference <= feature_dim``), as
column ``ranked_by`` says. Rows from an extractor that is not a metric (the random
``debug`` network) get the verdict ``not a metric`` and no rank.

Rows of stale records (made by older plugin, trainer or protocol versions, or
superseded: :func:`gtbench.results.records.stale_reasons`) are set apart (column ``stale``):
compared only with each other and left out of the ranks.

Per row, ``verdict`` is the one comparison with the reference at α = 0.05 and
``delta_*_ci95_*`` is the paired t-test's own interval (never in disagreement);
``verdict_holm`` is the family-wise verdict, Holm over the target's comparisons with the
reference, with ``delta_fw_ci_*`` the interval of the Holm step that decided it
(``fw_confidence``): claims rest on it. A row is marked ``best`` only when it is better
than every other method of its target, Holm over those comparisons, and its family-wise
verdict against the reference does not contradict it. When the top methods tie, no row
is best. The mean's interval is scipy's BCa bootstrap (``fid_ci_method`` says when the
percentile interval replaced a degenerate BCa).

All files are written atomically, so any number of processes may regenerate them at
once on a shared filesystem: each leaves a complete, valid CSV.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from gtbench.measure.eval_settings import DEFAULT_REFERENCE
from gtbench.plan import identity
from gtbench.plan.identity import DEFAULT_SELECTION
from gtbench.results import provenance
from gtbench.results.records import atomic_write_text, iter_records, stale_reasons
from gtbench.results.timestamps import timestamp_key

KEY = ["source", "method", "dataset", "shots", "extractor"]
LEAD_METRICS = ["fid", "kid_mean"]
RUNS_CSV = "runs.csv"
LEADERBOARD_CSV = "leaderboard.csv"
RANKS_CSV = "ranks.csv"
NOT_A_METRIC = "not a metric"
NO_REFERENCE = "no reference"
REFERENCE = "reference"

FRONT = [*KEY, "n_seeds", "fid_mean", "fid_std", "kid_mean", "kid_std"]
PAIRED = [
    "fid_ci95_low",
    "fid_ci95_high",
    "delta_fid_mean",
    "delta_fid_ci95_low",
    "delta_fid_ci95_high",
    "delta_p",
    "verdict",
    "reference",
]
DETAILS = [
    "selection",
    "stale",
    "ranked_by",
    "n_paired",
    "test",
    "delta_p_holm",
    "verdict_holm",
    "delta_fw_ci_low",
    "delta_fw_ci_high",
    "fw_confidence",
    "best",
    "kid_ci95_low",
    "kid_ci95_high",
    "delta_kid_mean",
    "delta_kid_ci95_low",
    "delta_kid_ci95_high",
    "fid_valid",
    "is_metric",
    "fid_ci_method",
    "kid_ci_method",
]
BUDGET = ["g_steps", "d_steps", "warmup_steps"]
# what a run cost (record["memory"]; wall times are the record's "timings"): runs.csv has
# them per run, the leaderboard the timings' means and the largest peak over the seeds
MEMORY = ["peak_rss_mb", "cuda_peak_mb", "cuda_reserved_peak_mb"]
# one rank table per selection (default, tuned-validation, ...): never ranked together
RANK_COLUMNS = [
    "method",
    "mean_rank",
    "rank_ci95_low",
    "rank_ci95_high",
    "n_targets",
    "selection",
    "ci_method",
]
# A suite's named horizon (`budget = "adapted"`, `"long"`): rows and rank tables of
# different budgets are never pooled. The column appears once any record names one.
BUDGET_LABEL = "budget"
_FLAGS = ["fid_valid", "is_metric"]


def _described(ref: dict[str, Any], kind: str) -> str:
    """``name`` or ``name:k=v`` with the parameters that differ from the plugin's defaults."""
    from gtbench.plan.cells import describe

    try:
        return describe(ref, kind)
    except Exception:  # noqa: BLE001 - plugin no longer installed: show every parameter
        params = ",".join(f"{k}={v}" for k, v in sorted(ref["params"].items()))
        return ref["name"] + (":" + params if params else "")


def fid_valid(record: dict[str, Any]) -> bool:
    """Whether the record's FID is valid: both its evaluation and its generated set exceed
    the feature dimension (a covariance from fewer images than dimensions is singular).

    Reads the recorded ``fid_valid`` (``metrics`` or ``eval``); records from before the
    generated side counted are also held to ``n_samples > feature_dim``, and records with
    no flag to ``n_reference > feature_dim`` as well."""
    metrics, evaluation = record.get("metrics", {}), record.get("eval", {})
    dim = evaluation.get("feature_dim")
    if not isinstance(dim, int):
        dim = None
    for recorded in (metrics, evaluation):
        if "fid_valid" in recorded:
            valid = bool(recorded["fid_valid"])
            break
    else:
        n = evaluation.get("n_reference")
        valid = not (isinstance(n, int) and dim is not None and n <= dim)
    generated = evaluation.get("n_samples")
    if isinstance(generated, int) and dim is not None and generated <= dim:
        return False
    return valid


def is_metric(record: dict[str, Any]) -> bool:
    """``eval.is_metric``; older records: every extractor but the random ``debug`` one."""
    evaluation = record.get("eval", {})
    if "is_metric" in evaluation:
        return bool(evaluation["is_metric"])
    return evaluation.get("extractor", {}).get("name") != "debug"


def run_rows(results_dir: str | Path, beside: Sequence[str | Path] = ()) -> pd.DataFrame:
    """One row per record: identity, status, metrics, method terms, budget, timings.

    ``beside``: other results folders (e.g. the committed reference results) whose records
    join the table, so a user's cells are paired with and ranked beside them. Column
    ``origin`` names each row's folder; a run_id present in several folders counts once
    (the first folder wins: the same run_id is the same configuration). Column
    ``machine`` names the hardware class that computed each record; with ``beside``,
    ``other_hardware`` is true for a record from another folder whose machine is not
    one of the user's (their records' or this machine's): its last digits differ."""
    frames = [_folder_rows(folder) for folder in (results_dir, *beside)]
    if beside:
        _mark_other_hardware(frames)
    frames = [frame for frame in frames if not frame.empty]
    if not frames:
        return pd.DataFrame()
    frame = pd.concat(frames, ignore_index=True).drop_duplicates("run_id", keep="first")
    return frame.sort_values(KEY + ["seed", "run_id"], kind="stable").reset_index(drop=True)


def _mark_other_hardware(frames: list[pd.DataFrame]) -> None:
    """Set ``other_hardware`` in every frame: the first is the user's own folder (never
    marked); a record of the others is marked when its machine is unknown or is none of
    the user's records' machines nor this machine's."""
    own = frames[0]
    yours = {provenance.current_machine()}
    if not own.empty:
        yours |= set(own["machine"])
    yours.discard("unknown")
    for position, frame in enumerate(frames):
        if not frame.empty:
            frame["other_hardware"] = position > 0 and ~frame["machine"].isin(yours)


def run_folder(runs: pd.DataFrame, results_dir: str | Path, run_id: str) -> Path:
    """The run folder of ``run_id`` (in whichever results folder its record came from)."""
    if "origin" in runs and not runs.empty:
        match = runs.loc[runs["run_id"] == run_id, "origin"]
        if len(match):
            return Path(match.iloc[0]) / "runs" / run_id
    return Path(results_dir) / "runs" / run_id


def _folder_rows(results_dir: str | Path) -> pd.DataFrame:
    records = list(iter_records(results_dir))
    stale = _stale_reasons(results_dir, records)
    rows = []
    for record in records:
        row: dict[str, Any] = {
            "run_id": record["run_id"],
            "status": record["status"],
            "source": _described(record["source"], "source"),
            "method": _described(record["method"], "method"),
            "dataset": _described(record["dataset"], "dataset"),
            "shots": record["shots"],
            "seed": record["seed"],
            "extractor": _described(record["eval"]["extractor"], "extractor"),
            "selection": identity.selection_of(record),
            BUDGET_LABEL: identity.budget_of(record),
            "protocol": identity.protocol_of(record),
            "fid_valid": fid_valid(record),
            "is_metric": is_metric(record),
            "stale": record["run_id"] in stale,
            "stale_reason": stale.get(record["run_id"], ""),
            "origin": str(results_dir),
            "machine": provenance.machine(record.get("environment")),
        }
        metrics = record.get("metrics", {})
        for name, value in sorted(metrics.items()):
            if name not in _FLAGS:
                row[name] = value
        for name, value in sorted((record.get("method_metrics") or {}).items()):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                row[name if name not in metrics else f"method_{name}"] = value
        for name in BUDGET:
            if isinstance(record.get(name), (int, float)):
                row[name] = record[name]
        for name, value in sorted(record.get("timings", {}).items()):
            row[name] = value
        memory = record.get("memory") or {}  # older records have none: NaN columns
        for name in MEMORY:
            if isinstance(memory.get(name), (int, float)):
                row[name] = memory[name]
        row["finished_at"] = record.get("finished_at", "")
        row["error"] = record.get("error") or ""
        rows.append(row)
    return pd.DataFrame(rows)


def _stale_reasons(results_dir: str | Path, records: list[dict[str, Any]]) -> dict[str, str]:
    """``{run_id: why}`` of the stale records (older plugin/trainer/protocol versions,
    superseded): their rows are set apart, never averaged with current ones."""
    try:
        return stale_reasons(results_dir, records)
    except Exception:  # noqa: BLE001 - a table must still be written; treat all as current
        return {}


_NOT_AVERAGED = {
    *KEY,
    "stale",
    "stale_reason",
    "origin",
    "machine",
    "other_hardware",
    "run_id",
    "status",
    "seed",
    "selection",
    "protocol",
    "error",
    "finished_at",
    "kid_std",
    *_FLAGS,
    *MEMORY,  # the largest over the seeds instead (``*_max``)
}
_ROW = [*KEY, BUDGET_LABEL, "selection", "stale", "protocol"]


def _empty_board() -> pd.DataFrame:
    return pd.DataFrame(columns=FRONT + PAIRED + DETAILS + ["protocol"])


def _per_seed(group: pd.DataFrame, column: str) -> dict[int, float]:
    """seed → value of one row's records (one per seed)."""
    return {
        int(seed): float(value)
        for seed, value in zip(group["seed"], group[column], strict=True)
        if value is not None and not (isinstance(value, float) and math.isnan(value))
    }


def targets(board: pd.DataFrame) -> dict[tuple[Any, ...], list[int]]:
    """Target key → board indices. Rows that do not train (train hash ``none``) join
    every training protocol of their evaluation."""
    evaluation = board["protocol"].str.split("-").str[0]
    train = board["protocol"].str.split("-").str[1]
    base = list(
        zip(
            board["source"],
            board["dataset"],
            board["shots"],
            board["extractor"],
            board["selection"],
            board[BUDGET_LABEL] if BUDGET_LABEL in board else [""] * len(board),
            board["stale"],
            evaluation,
            strict=True,
        )
    )
    trained: dict[tuple[Any, ...], set[str]] = {}
    for key, hash_ in zip(base, train, strict=True):
        trained.setdefault(key, set())
        if hash_ != "none":
            trained[key].add(hash_)
    targets: dict[tuple[Any, ...], list[int]] = {}
    for index, key, hash_ in zip(board.index, base, train, strict=True):
        hashes = [hash_] if hash_ != "none" else sorted(trained[key]) or ["none"]
        for h in hashes:
            targets.setdefault((*key, h), []).append(index)
    return targets


def leaderboard(
    runs: pd.DataFrame, reference: str = DEFAULT_REFERENCE, *, with_ranks: bool = False
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Mean, sample std and paired statistics over seeds of the ``ok`` runs.

    With ``with_ranks``, also returns the rank table (``ranks.csv``)."""
    board, ranks = _board_and_ranks(runs, reference)
    return (board, ranks) if with_ranks else board


def _aggregate(runs: pd.DataFrame) -> tuple[pd.DataFrame, list[dict[str, dict[int, float]]]]:
    """One row per leaderboard row (means and stds over seeds of the ``ok`` runs), and for
    each row its per-seed FID and KID (``{"fid": {seed: value}, "kid_mean": {...}}``)."""
    if runs.empty or "status" not in runs:
        return pd.DataFrame(), []
    ok = runs[runs["status"] == "ok"].copy()
    if ok.empty:
        return pd.DataFrame(), []
    for column, default in (
        ("selection", DEFAULT_SELECTION),
        (BUDGET_LABEL, ""),
        ("fid_valid", True),
        ("is_metric", True),
        ("stale", False),
        ("finished_at", ""),
    ):
        if column not in ok:
            ok[column] = default
    ok = ok[ok["selection"] != "trial"]  # `gtbench tune` trials: in runs.csv, never ranked
    if ok.empty:
        return pd.DataFrame(), []
    metrics = [
        c
        for c in ok.columns
        if c not in _NOT_AVERAGED and c not in BUDGET and pd.api.types.is_numeric_dtype(ok[c])
    ]
    ordered = [m for m in LEAD_METRICS if m in metrics] + sorted(
        m for m in metrics if m not in LEAD_METRICS
    )
    # one record per row and seed: the latest finished one
    latest = by_finish(ok).drop_duplicates([*_ROW, "seed"], keep="last")
    grouped = latest.groupby(_ROW, sort=True, dropna=False)
    board = grouped["seed"].nunique().rename("n_seeds").to_frame()
    board["fid_valid"] = grouped["fid_valid"].agg(lambda v: bool(v.astype(bool).all()))
    board["is_metric"] = grouped["is_metric"].agg(lambda v: bool(v.astype(bool).all()))
    if ordered:  # every metric's mean and std at once (column by column fragments the frame)
        means, stds = grouped[ordered].mean(), grouped[ordered].std(ddof=1)
        columns = {}
        for metric in ordered:
            base = "kid" if metric == "kid_mean" else metric
            columns[f"{base}_mean"], columns[f"{base}_std"] = means[metric], stds[metric]
        board = pd.concat([board, pd.DataFrame(columns, index=board.index)], axis=1)
    for name in BUDGET:
        if name in latest and latest[name].notna().any():
            board[name] = grouped[name].mean()
    for name in MEMORY:
        if name in latest and latest[name].notna().any():
            board[f"{name}_max"] = grouped[name].max()
    if "other_hardware" in latest:  # --beside: a row with any record from other hardware
        board["other_hardware"] = grouped["other_hardware"].agg(lambda v: bool(v.any()))
    board = board.reset_index()
    board["n_seeds"] = board["n_seeds"].astype(int)
    seeds = []
    for _, group in grouped:
        seeds.append({m: _per_seed(group, m) for m in ("fid", "kid_mean") if m in group})
    for column in ("fid_mean", "kid_mean", "fid_std", "kid_std"):
        if column not in board:
            board[column] = math.nan
    return board, seeds


def _board_and_ranks(runs: pd.DataFrame, reference: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    from gtbench.measure import stats

    board, seeds = _aggregate(runs)
    if board.empty:
        return _empty_board(), pd.DataFrame(columns=RANK_COLUMNS)
    values = {column: [math.nan] * len(board) for column in PAIRED + DETAILS if column not in board}
    values["verdict"] = [""] * len(board)
    values["reference"] = [reference] * len(board)
    values["test"] = [""] * len(board)
    values["ranked_by"] = [""] * len(board)
    values["best"] = [False] * len(board)
    values["verdict_holm"] = [""] * len(board)
    values["fid_ci_method"] = [""] * len(board)
    values["kid_ci_method"] = [""] * len(board)
    for i in range(len(board)):
        if bool(board.at[i, "fid_valid"]):
            fid_ci = stats.bootstrap_mean(list(seeds[i].get("fid", {}).values()))
            values["fid_ci95_low"][i], values["fid_ci95_high"][i] = fid_ci.low, fid_ci.high
            values["fid_ci_method"][i] = fid_ci.method
        kid_ci = stats.bootstrap_mean(list(seeds[i].get("kid_mean", {}).values()))
        values["kid_ci95_low"][i], values["kid_ci95_high"][i] = kid_ci.low, kid_ci.high
        values["kid_ci_method"][i] = kid_ci.method

    rank_targets: dict[tuple[str, str], list[dict[str, dict[int, float]]]] = {}
    best_votes: dict[int, list[bool]] = {}
    for _, members in sorted(targets(board).items(), key=lambda item: str(item[0])):
        target = board.loc[members]
        fid_ok = bool(target["fid_valid"].all())
        metric = "fid" if fid_ok else "kid_mean"
        metric_ok = bool(target["is_metric"].all())
        refs = [i for i in members if board.at[i, "method"] == reference]
        tuned = str(target["selection"].iloc[0]) != DEFAULT_SELECTION
        if not refs and tuned:  # a tuned reference carries the parameters tuning chose
            refs = [i for i in members if base_method(board.at[i, "method"]) == reference]
        ref = refs[0] if refs else None
        family: dict[int, stats.PairedResult] = {}  # the target's comparisons with ref
        for i in members:
            if values["ranked_by"][i]:
                continue  # a row without training already compared in another target
            values["ranked_by"][i] = "fid" if metric == "fid" else "kid"
            if i == ref:
                values["verdict"][i] = values["verdict_holm"][i] = REFERENCE
                continue
            if ref is None:
                values["verdict"][i] = values["verdict_holm"][i] = NO_REFERENCE
                continue
            if fid_ok:
                fid = stats.paired_comparison(seeds[ref].get("fid", {}), seeds[i].get("fid", {}))
                values["delta_fid_mean"][i] = fid.delta_mean
                values["delta_fid_ci95_low"][i] = fid.ci_low
                values["delta_fid_ci95_high"][i] = fid.ci_high
            kid = stats.paired_comparison(
                seeds[ref].get("kid_mean", {}), seeds[i].get("kid_mean", {})
            )
            values["delta_kid_mean"][i] = kid.delta_mean
            values["delta_kid_ci95_low"][i] = kid.ci_low
            values["delta_kid_ci95_high"][i] = kid.ci_high
            ranked = fid if fid_ok else kid
            values["n_paired"][i] = ranked.n
            values["delta_p"][i] = ranked.p
            values["test"][i] = ranked.test
            values["verdict"][i] = ranked.verdict if metric_ok else NOT_A_METRIC
            family[i] = ranked
        judged = stats.family_verdicts(list(family.values()))
        for i, result in zip(family, judged, strict=True):
            values["delta_p_holm"][i] = result.p_holm
            values["verdict_holm"][i] = result.verdict if metric_ok else NOT_A_METRIC
            values["delta_fw_ci_low"][i] = result.ci_low
            values["delta_fw_ci_high"][i] = result.ci_high
            values["fw_confidence"][i] = result.confidence
        if not metric_ok:
            for i in members:
                if values["verdict"][i] in (REFERENCE, NO_REFERENCE):
                    values["verdict"][i] = values["verdict_holm"][i] = NOT_A_METRIC
            continue
        # tuned rows: one configuration per method and target, ranked under its name
        name = base_method if tuned else str
        per_method = {name(board.at[i, "method"]): seeds[i].get(metric, {}) for i in members}
        if not target["stale"].any():  # ranks: current records only
            horizon = str(target[BUDGET_LABEL].iloc[0])
            group = (str(target["selection"].iloc[0]), horizon)
            rank_targets.setdefault(group, []).append(per_method)
        for i in members:
            # best: better than every other method of the target, Holm over those
            # comparisons, and not contradicted by the family-wise verdict against ref
            others = [
                stats.paired_comparison(seeds[j].get(metric, {}), seeds[i].get(metric, {}))
                for j in members
                if j != i
            ]
            wins = [r.verdict == stats.BETTER for r in stats.family_verdicts(others)]
            best_votes.setdefault(i, []).append(
                bool(others)
                and all(wins)
                and values["verdict_holm"][i] in (stats.BETTER, REFERENCE)
            )
    values["best"] = [bool(best_votes.get(i)) and all(best_votes[i]) for i in range(len(board))]
    board = pd.concat([board, pd.DataFrame(values, index=board.index)], axis=1)

    budget = [c for c in BUDGET if c in board]
    front = FRONT + PAIRED + DETAILS + budget
    rest = [c for c in board.columns if c not in front and c != "protocol"]
    board = board[front + rest + ["protocol"]].copy()
    board["_order"] = board["fid_mean"].where(board["ranked_by"] != "kid", board["kid_mean"])
    board["_evaluation"] = board["protocol"].str.split("-").str[0]
    board = (
        board.sort_values(
            [
                "source",
                "dataset",
                "shots",
                "extractor",
                BUDGET_LABEL,
                "selection",
                "_evaluation",
                "_order",
            ],
            kind="stable",
        )
        .drop(columns=["_order", "_evaluation"])
        .reset_index(drop=True)
    )
    order = sorted(rank_targets, key=lambda key: (key[0] != DEFAULT_SELECTION, key))
    rows = [
        {**vars(row), "selection": selection, BUDGET_LABEL: horizon}
        for selection, horizon in order
        for row in stats.mean_ranks(rank_targets[(selection, horizon)])
    ]
    named = (board[BUDGET_LABEL] != "").any()
    if not named:  # tables of suites without budgets keep their columns
        board = board.drop(columns=[BUDGET_LABEL])
    columns = [*RANK_COLUMNS, BUDGET_LABEL] if named else RANK_COLUMNS
    return board, pd.DataFrame(rows, columns=columns)


def base_method(described: str) -> str:
    """``ewc`` of ``ewc:weight=2603.0``: a method's name without its parameters."""
    return str(described).partition(":")[0]


def write_tables(
    results_dir: str | Path, reference: str = DEFAULT_REFERENCE
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rebuild and atomically write ``runs.csv``, ``leaderboard.csv`` and ``ranks.csv``."""
    results_dir = Path(results_dir)
    runs = run_rows(results_dir)
    board, ranks = _board_and_ranks(runs, reference)
    atomic_write_text(results_dir / RUNS_CSV, runs.to_csv(index=False))
    atomic_write_text(results_dir / LEADERBOARD_CSV, board.to_csv(index=False, float_format="%.6g"))
    atomic_write_text(results_dir / RANKS_CSV, ranks.to_csv(index=False, float_format="%.6g"))
    return runs, board


def best_rows(board: pd.DataFrame) -> set[int]:
    """Index of the rows whose paired test beats every other method of their target
    (column ``best``); none where the top methods tie."""
    if board.empty or "best" not in board:
        return set()
    return {int(i) for i in board.index[board["best"].astype(bool)]}


def export_grids(results_dir: str | Path, out_dir: str | Path) -> list[Path]:
    """Copy one sample grid per leaderboard row (its first seed's ``samples.png``) to
    ``out_dir``, named ``<source>__<dataset>__<shots>shot__<method>__<protocol>.png``
    (then the budget and the selection where named: rows of two budgets never share a
    file, not even a method that does not train)."""
    import re
    import shutil

    runs = run_rows(results_dir)
    board = leaderboard(runs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for _, row in board.iterrows():
        grid = first_samples(results_dir, runs, row)
        if grid is None:
            continue
        parts = [
            row["source"],
            row["dataset"],
            f"{row['shots']}shot",
            row["method"],
            row["protocol"],
        ]
        if budget := row_budget(row):
            parts.append(budget)
        if row["selection"] != DEFAULT_SELECTION:
            parts.append(row["selection"])
        name = "__".join(re.sub(r"[^A-Za-z0-9.=-]+", "-", str(p)) for p in parts) + ".png"
        shutil.copyfile(grid, out / name)
        written.append(out / name)
    return written


def row_budget(row: pd.Series) -> str:
    """A leaderboard row's named budget; "" when its board names none."""
    value = row.get(BUDGET_LABEL)
    return "" if _missing(value) or not value else str(value)


def by_finish(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` in the order their records finished: by the instant ``finished_at`` names
    (offsets honoured), never by the string, so records from other time zones interleave
    correctly."""
    if runs.empty or "finished_at" not in runs:
        return runs
    order = runs["finished_at"].map(timestamp_key).sort_values(kind="stable").index
    return runs.loc[order]


def row_runs(runs: pd.DataFrame, row: pd.Series) -> pd.DataFrame:
    """The ``ok`` runs of one leaderboard row, by seed."""
    match = runs[runs["status"] == "ok"]
    for column in _ROW:
        if column in match and column in row:  # a board without named budgets has no column
            match = match[match[column] == row[column]]
    return match.sort_values("seed")


def row_seeds(runs: pd.DataFrame, row: pd.Series, column: str) -> dict[int, float]:
    """seed → ``column`` of one leaderboard row: its latest ``ok`` run of each seed, as
    the row's mean was computed."""
    latest = by_finish(row_runs(runs, row))
    return _per_seed(latest.drop_duplicates("seed", keep="last"), column)


def first_samples(results_dir: str | Path, runs: pd.DataFrame, row: pd.Series) -> Path | None:
    """``samples.png`` of the row's first seed that has one."""
    for run_id in row_runs(runs, row)["run_id"]:
        grid = run_folder(runs, results_dir, run_id) / "samples.png"
        if grid.exists():
            return grid
    return None


# --------------------------------------------------------------------------- display

# Besides FID and KID, the columns the terminal table shows (every metric is in the CSV):
# a ranking is read beside how far the samples moved to the target.
HEADLINE_EXTRAS = {
    "adaptation": "adapted",
    "intra_cluster_diversity": "diversity",
    "mem_closer_to_train": "memorised",
}
BOARD_TITLE = (
    "leaderboard (mean ± std over seeds; Δ with its paired-t 95% CI, p and verdict; Holm: "
    "family-wise verdict over the target's methods; ★ better than every other method, Holm)"
)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def number(value: Any) -> str:
    """A readable number: no decimals from 100 on, 3 significant digits below."""
    if _missing(value):
        return "–"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _spread(mean: Any, std: Any) -> str:
    if _missing(mean):
        return "–"
    return number(mean) if _missing(std) else f"{number(mean)} ± {number(std)}"


def _interval(low: Any, high: Any) -> str:
    return "" if _missing(low) else f"[{number(low)}, {number(high)}]"


def p_text(p: Any) -> str:
    if _missing(p):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _signed(value: Any) -> str:
    return "–" if _missing(value) else ("+" if value > 0 else "") + number(value)


OTHER_HARDWARE = (
    "† records from other hardware than yours (CPU model and instruction set, or GPU): "
    "their last digits differ (about 0.2 % of FID after 100 steps; docs/results.md)"
)


def _other_hardware(row: pd.Series) -> bool:
    value = row.get("other_hardware", False)
    return False if _missing(value) else bool(value)


def board_cells(board: pd.DataFrame) -> tuple[str, list[str], list[list[str]], list[bool]]:
    """The terminal leaderboard as text: (title, headers, rows, bold flags). Identity
    columns with one value across all rows go to the title."""
    identity = ["source", "dataset", "shots", "extractor"]
    constant = [c for c in identity if board[c].nunique() == 1]
    shown = [c for c in identity if c not in constant]
    selections = set(board["selection"]) if "selection" in board else {DEFAULT_SELECTION}
    if len(selections) > 1:  # default and tuned rows: say which is which
        shown.append("selection")
    elif selections != {DEFAULT_SELECTION}:
        constant.append("selection")
    if BUDGET_LABEL in board:  # budgets: never pooled, always named
        (shown if board[BUDGET_LABEL].nunique() > 1 else constant).append(BUDGET_LABEL)
    title = BOARD_TITLE
    if any(_other_hardware(row) for _, row in board.iterrows()):
        title += "\n" + OTHER_HARDWARE
    if constant:
        title += "\n" + ", ".join(f"{c} {board[c].iloc[0]}" for c in constant)
    references = sorted(set(board["reference"].dropna())) if "reference" in board else []
    versus = f"Δ vs {references[0]}" if len(references) == 1 else "Δ vs reference"
    extra = [c for c in HEADLINE_EXTRAS if f"{c}_mean" in board.columns]
    headers = [*shown, "method", "seeds", "FID", "95% CI", f"{versus} [95% CI]", "p", "verdict"]
    headers += ["Holm"]
    headers += ["KID", *[HEADLINE_EXTRAS[c] for c in extra]]
    rows, bold = [], []
    best = best_rows(board)
    for index, row in board.iterrows():
        by_kid = row.get("ranked_by") == "kid"
        prefix = "delta_kid" if by_kid else "delta_fid"
        delta = _signed(row.get(f"{prefix}_mean"))
        if delta != "–":
            ci = _interval(row.get(f"{prefix}_ci95_low"), row.get(f"{prefix}_ci95_high"))
            delta = f"{delta} {ci}".strip() + (" KID" if by_kid else "")
        fid = _spread(row.get("fid_mean"), row.get("fid_std"))
        if row.get("fid_valid") is False or row.get("fid_valid") == 0:
            fid += " (not valid)"
        stale = " (stale)" if bool(row.get("stale", False)) else ""
        stale += " †" if _other_hardware(row) else ""
        cells = [str(row[c]) for c in shown] + [
            ("★ " if index in best else "") + str(row["method"]) + stale,
            str(row["n_seeds"]),
            fid,
            _interval(row.get("fid_ci95_low"), row.get("fid_ci95_high")),
            delta,
            p_text(row.get("delta_p")),
            str(row.get("verdict") or ""),
            "" if _missing(row.get("verdict_holm")) else str(row.get("verdict_holm")),
            _spread(row.get("kid_mean"), row.get("kid_std")),
        ]
        cells += [_spread(row.get(f"{c}_mean"), row.get(f"{c}_std")) for c in extra]
        rows.append(cells)
        bold.append(index in best)
    return title, headers, rows, bold


def rank_rows(ranks: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """The rank table as text cells (headers, rows); a selection (budget) column only when
    the table holds several selections (budgets)."""
    groups = [c for c in ("selection", BUDGET_LABEL) if c in ranks and ranks[c].nunique() > 1]
    headers = [*groups, "method", "mean rank", "95% CI", "targets"]
    rows = [
        [*(str(getattr(r, c)) for c in groups), str(r.method), f"{r.mean_rank:.2f}"]
        + [f"[{r.rank_ci95_low:.2f}, {r.rank_ci95_high:.2f}]", str(r.n_targets)]
        for r in ranks.itertuples()
    ]
    return headers, rows


def rank_cells(ranks: pd.DataFrame) -> tuple[str, list[str], list[list[str]]] | None:
    """The mean rank over targets (the "Avg" row of a DomainBed table) as a titled text
    table, or None when no method ran on two targets or more (one target: the rank says
    nothing the leaderboard does not)."""
    if ranks.empty or int(ranks["n_targets"].max()) < 2:
        return None
    title = "mean rank over targets (1 = best; CI: bootstrap over each target's seeds)"
    return (title, *rank_rows(ranks))


def plain_lines(title: str, headers: list[str], rows: list[list[str]]) -> list[str]:
    """A table as padded plain-text lines (for logs: one line per row, never wrapped)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = title.splitlines()
    for cells in [headers, *rows]:
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
    return lines


@dataclass
class Comparison:
    """Two methods on one target, seed by seed (``delta`` = b - a; lower is better)."""

    title: str
    metric: str
    is_metric: bool
    seeds: pd.DataFrame
    result: Any  # gtbench.measure.stats.PairedResult
    # mean share of samples assigned to the target per method (nan: not measured/trusted)
    adaptation: dict[str, float] = field(default_factory=dict)
    budget: str = ""  # the named budget both rows were trained at ("": none named)


def compare(
    runs: pd.DataFrame, a: str, b: str, dataset: str | None = None, budget: str | None = None
) -> list[Comparison]:
    """Paired comparison of methods ``a`` and ``b`` on every target (and named budget)
    both have; ``dataset`` / ``budget`` keep only that target / budget."""
    from gtbench.errors import UsageError
    from gtbench.measure import stats

    board, seeds = _aggregate(runs)
    if board.empty:
        raise UsageError("no finished runs to compare")
    methods = sorted(set(board["method"]))
    a, b = (_method_named(name, methods) for name in (a, b))
    if dataset is not None and dataset not in set(board["dataset"]):
        known = ", ".join(sorted(set(board["dataset"])))
        raise UsageError(f"no finished runs on dataset {dataset!r} (have: {known})")
    comparisons, seen = [], set()
    for _, members in sorted(targets(board).items(), key=lambda item: str(item[0])):
        by_method = {board.at[i, "method"]: i for i in members}
        if a not in by_method or b not in by_method:
            continue
        ia, ib = by_method[a], by_method[b]
        row = board.loc[ia]
        if (ia, ib) in seen or (dataset is not None and row["dataset"] != dataset):
            continue
        if budget is not None and budget != row_budget(row):
            continue
        seen.add((ia, ib))
        fid_ok = bool(board.loc[members, "fid_valid"].all())
        metric = "fid" if fid_ok else "kid_mean"
        first, second = seeds[ia].get(metric, {}), seeds[ib].get(metric, {})
        shared = sorted(set(first) & set(second))
        table = pd.DataFrame(
            {
                "seed": shared,
                a: [first[s] for s in shared],
                b: [second[s] for s in shared],
                "delta": [second[s] - first[s] for s in shared],
            }
        )
        protocol = (
            board.loc[ib, "protocol"] if row["protocol"].endswith("none") else row["protocol"]
        )
        named_budget = row_budget(row)
        title = (
            f"{row['source']} → {row['dataset']} · {row['shots']}-shot · {row['extractor']} "
            f"· {row['selection']}"
            + (f" · budget {named_budget}" if named_budget else "")
            + f" · protocol {protocol}"
            + (" · stale records (older versions)" if bool(row.get("stale", False)) else "")
        )
        comparisons.append(
            Comparison(
                title,
                "fid" if fid_ok else "kid",
                bool(board.loc[members, "is_metric"].all()),
                table,
                stats.paired_comparison(first, second),
                {
                    name: float(board.loc[i].get("adaptation_mean", math.nan))
                    for name, i in ((a, ia), (b, ib))
                },
                named_budget,
            )
        )
    if not comparisons:
        where = "" if budget is None else f" at budget {budget!r}"
        raise UsageError(f"methods {a!r} and {b!r} never ran on the same target{where}")
    return comparisons


def resolve_reference(runs: pd.DataFrame, reference: str) -> str:
    """The reference method as the leaderboard spells it (see :func:`_method_named`); an
    unknown name is a usage error, except the default, whose absence only gives the
    verdict ``no reference``."""
    methods = sorted(set(runs["method"])) if not runs.empty and "method" in runs else []
    if reference == DEFAULT_REFERENCE and reference not in methods:
        return reference
    return _method_named(reference, methods)


def _method_named(name: str, methods: list[str]) -> str:
    """``name`` as the leaderboard spells it: exact, or the one method of that plugin name
    (``ada`` for ``ada:kimg=100.0``)."""
    from gtbench.errors import UsageError

    if name in methods:
        return name
    same = [m for m in methods if m.split(":", 1)[0] == name]
    if len(same) == 1:
        return same[0]
    raise UsageError(f"no finished runs of method {name!r} (have: {', '.join(methods)})")


def comparison_lines(comparison: Comparison, a: str, b: str) -> list[str]:
    """One comparison as plain text: the per-seed table, then mean Δ, CI, p and verdict."""
    from gtbench.measure.stats import ALPHA, MIN_PAIRS

    metric = comparison.metric.upper()
    note = "" if comparison.metric == "fid" else " (FID not valid here)"
    title = f"{comparison.title}\n{metric}{note}, lower is better; Δ = {b} − {a}"
    headers = ["seed", a, b, "Δ"]
    rows = [
        [str(int(r["seed"])), number(r[a]), number(r[b]), _signed(r["delta"])]
        for _, r in comparison.seeds.iterrows()
    ]
    result = comparison.result
    if rows:
        rows.append(
            [
                "mean",
                number(comparison.seeds[a].mean()),
                number(comparison.seeds[b].mean()),
                _signed(result.delta_mean),
            ]
        )
    lines = plain_lines(title, headers, rows)
    ci = _interval(result.ci_low, result.ci_high) or "–"
    if result.n < MIN_PAIRS:
        verdict = f"too few seeds for a test ({result.n} shared, {MIN_PAIRS} needed)"
    else:
        outcome = (
            f"{b} is {result.verdict} than {a}"
            if result.verdict in ("better", "worse")
            else f"{result.verdict}: no difference shown"
        )
        verdict = f"{result.test}: p = {p_text(result.p)} → {outcome} (α = {ALPHA})"
    if not comparison.is_metric:
        verdict += f"; {NOT_A_METRIC} (random extractor)"
    lines.append(f"mean Δ {_signed(result.delta_mean)}, 95% CI (paired t) {ci}; {verdict}")
    adapted = {k: v for k, v in comparison.adaptation.items() if not _missing(v)}
    if adapted:
        shares = ", ".join(f"{name} {value:.0%}" for name, value in adapted.items())
        lines.append(
            f"adapted (share of samples a source-vs-target classifier calls target): {shares}"
        )
    return lines


def compare_command_lines(
    results: str,
    a: str,
    b: str,
    dataset: str | None,
    beside: Sequence[str] = (),
    budget: str | None = None,
) -> list[str]:
    """What ``gtbench compare`` prints."""
    from gtbench.errors import UsageError

    if not (Path(results) / "runs").is_dir():
        raise UsageError(f"no results in {results!r} (run `gtbench run` first)")
    lines: list[str] = []
    runs = run_rows(results, beside)
    methods = sorted(set(runs["method"])) if not runs.empty else []
    a, b = (_method_named(name, methods) for name in (a, b))
    for comparison in compare(runs, a, b, dataset, budget):
        lines += [*comparison_lines(comparison, a, b), ""]
    if "other_hardware" in runs:
        marked = runs.loc[runs["other_hardware"].astype(bool), "method"]
        other = [name for name in (a, b) if (marked == name).any()]
        if other and lines:
            lines += [f"{', '.join(other)}: {OTHER_HARDWARE}", ""]
    return lines[:-1]
