"""The default-vs-tuned table of a results folder (``tuning.csv``, written by
``gtbench tune``).

The leaderboard already ranks each selection apart (``default`` rows against default
finetune, ``tuned-validation`` rows against tuned finetune). What a reader of a tuning
study asks next is per method: did tuning help it, and does its verdict against finetune
change once everything is tuned equally? One row per target and method answers both,
with the values tuning chose next to the defaults they replaced.

``default_verdict`` / ``tuned_verdict`` are the leaderboard's family-wise verdicts
(``verdict_holm``: Holm over the target's comparisons with finetune). The tuned − default
difference has its paired t interval and per-comparison verdict, and a family-wise verdict
(Holm over the target's methods) with the interval of the Holm step that decided it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from gtbench.measure.eval_settings import DEFAULT_REFERENCE
from gtbench.results.records import atomic_write_text, load_record

__all__ = ["TUNING_CSV", "TUNING_COLUMNS", "tuning_table", "write_tuning_table"]

TUNING_CSV = "tuning.csv"
TARGET = ["source", "dataset", "shots", "extractor"]
TUNING_COLUMNS = [
    *TARGET,
    "method",
    "metric",
    "trials",
    "selected_trial",
    "selected_values",
    "default_values",
    "default_seeds",
    "default_mean",
    "default_verdict",
    "tuned_seeds",
    "tuned_mean",
    "tuned_verdict",
    "reference",
    "tuned_minus_default_mean",
    "tuned_minus_default_ci95_low",
    "tuned_minus_default_ci95_high",
    "tuned_minus_default_p",
    "tuned_minus_default_verdict",
    "tuned_minus_default_p_holm",
    "tuned_minus_default_verdict_holm",
    "tuned_minus_default_fw_ci_low",
    "tuned_minus_default_fw_ci_high",
]
_METRIC_COLUMN = {"fid": "fid", "kid": "kid_mean"}


def _default_values(record: dict[str, Any], searched: list[str]) -> dict[str, Any]:
    """The default record's value of every searched key (``train.<x>`` or a parameter)."""
    train = (record.get("hparams") or {}).get("train") or {}
    params = (record.get("method") or {}).get("params") or {}
    values = {}
    for key in searched:
        if key.startswith("train."):
            values[key] = train.get(key.removeprefix("train."))
        else:
            values[key] = params.get(key)
    return values


def _first_record(runs: pd.DataFrame) -> dict[str, Any] | None:
    """The record of the first run of a leaderboard row (all hold the same settings)."""
    return load_record(runs["origin"].iloc[0], runs["run_id"].iloc[0])


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True) if value is not None else ""


def tuning_table(results_dir: str | Path, reference: str = DEFAULT_REFERENCE) -> pd.DataFrame:
    """One row per target and method that has both a ``default`` and a tuned row."""
    from gtbench.measure import stats
    from gtbench.results.leaderboard import base_method, leaderboard, row_runs, row_seeds, run_rows

    runs = run_rows(results_dir)
    if runs.empty:
        return pd.DataFrame(columns=TUNING_COLUMNS)
    board = leaderboard(runs, reference=reference)
    if board.empty:
        return pd.DataFrame(columns=TUNING_COLUMNS)
    board = board[~board["stale"].astype(bool)].copy()
    board["base"] = board["method"].map(base_method)
    rows, paired_results = [], []
    for key, group in board.groupby([*TARGET, "base"], sort=False):
        default = group[group["selection"] == "default"]
        tuned = group[group["selection"].astype(str).str.startswith("tuned-")]
        if default.empty or tuned.empty:
            continue
        d, t = default.iloc[0], tuned.iloc[0]
        metric = "fid" if d.get("ranked_by", "fid") != "kid" else "kid"
        column = _METRIC_COLUMN[metric]
        before, after = row_seeds(runs, d, column), row_seeds(runs, t, column)
        paired = stats.paired_comparison(before, after)
        tuned_record, default_record = (_first_record(row_runs(runs, row)) for row in (t, d))
        tuning = (tuned_record or {}).get("tuning") or {}
        history = {h.get("trial"): h for h in tuning.get("history", [])}
        selected = tuning.get("selected_trial")
        searched = [str(k) for k in tuning.get("searched", [])]
        mean = "fid_mean" if metric == "fid" else "kid_mean"
        rows.append(
            {
                **dict(zip(TARGET, key[:-1], strict=True)),
                "method": key[-1],
                "metric": metric,
                "trials": tuning.get("trials", len(history)),
                "selected_trial": selected,
                "selected_values": _json((history.get(selected) or {}).get("values")),
                "default_values": _json(_default_values(default_record or {}, searched)),
                "default_seeds": len(before),
                "default_mean": d[mean],
                "default_verdict": d.get("verdict_holm", ""),
                "tuned_seeds": len(after),
                "tuned_mean": t[mean],
                "tuned_verdict": t.get("verdict_holm", ""),
                "reference": t.get("reference", reference),
                "tuned_minus_default_mean": paired.delta_mean,
                "tuned_minus_default_ci95_low": paired.ci_low,
                "tuned_minus_default_ci95_high": paired.ci_high,
                "tuned_minus_default_p": paired.p,
                "tuned_minus_default_verdict": paired.verdict,
            }
        )
        paired_results.append(paired)
    # family-wise: Holm over one target's tuned − default comparisons (one per method)
    families: dict[tuple[Any, ...], list[int]] = {}
    for index, row in enumerate(rows):
        families.setdefault(tuple(row[k] for k in TARGET), []).append(index)
    for members in families.values():
        judged = stats.family_verdicts([paired_results[i] for i in members])
        for i, result in zip(members, judged, strict=True):
            rows[i]["tuned_minus_default_p_holm"] = result.p_holm
            rows[i]["tuned_minus_default_verdict_holm"] = result.verdict
            rows[i]["tuned_minus_default_fw_ci_low"] = result.ci_low
            rows[i]["tuned_minus_default_fw_ci_high"] = result.ci_high
    return pd.DataFrame(rows, columns=TUNING_COLUMNS)


def write_tuning_table(results_dir: str | Path, reference: str = DEFAULT_REFERENCE) -> pd.DataFrame:
    """Rebuild and atomically write ``<results_dir>/tuning.csv``."""
    table = tuning_table(results_dir, reference)
    text = table.to_csv(index=False, float_format="%.6g")
    atomic_write_text(Path(results_dir) / TUNING_CSV, text)
    return table
