"""Print the result tables of docs/leaderboard.md and docs/tuning.md (Markdown) from the
committed CSVs, so every number in them can be regenerated rather than typed:

    python docs/make_tables.py leaderboard results/reference/leaderboard.csv
    python docs/make_tables.py tuning results/tuned/tuning.csv
    python docs/make_tables.py ranks results/reference/ranks.csv
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable

import pandas as pd


def _num(value: float, digits: int = 0) -> str:
    return "–" if pd.isna(value) else f"{value:.{digits}f}"


def _signed(value: float, digits: int = 0) -> str:
    return "–" if pd.isna(value) else f"{value:+.{digits}f}"


def _p(value: float) -> str:
    return "–" if pd.isna(value) else format(value, ".2g")


def _groups(frame: pd.DataFrame) -> list[str]:
    """A table's row groups: per target, and per named budget where the CSV has them."""
    return ["dataset", "budget"] if "budget" in frame.columns else ["dataset"]


def _markdown(
    headers: list[str],
    frame: pd.DataFrame,
    sort_by: str | Callable[[pd.DataFrame], pd.Series],
    cells: Callable[[pd.Series], list[str]],
) -> list[str]:
    """A Markdown table: per target (and budget), in file order, the rows sorted by
    ``sort_by`` (a column, or a key computed from the group)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for _, group in frame.groupby(_groups(frame), sort=False):
        key = group[sort_by] if isinstance(sort_by, str) else sort_by(group)
        for index in key.sort_values(kind="stable").index:
            lines.append("| " + " | ".join(cells(group.loc[index])) + " |")
    return lines


def _ranked(row: pd.Series) -> str:
    """The metric a row is ranked by: FID where valid, else KID (``ranked_by``)."""
    return "kid" if row.get("ranked_by") == "kid" else "fid"


def leaderboard_table(path: str) -> list[str]:
    board = pd.read_csv(path)
    board = board[~board["stale"].astype(bool)]
    budgets = "budget" in board.columns
    headers = ["target", *(["budget"] if budgets else []), "method", "seeds", "ranked by"]
    headers += ["mean [95% CI]", "Δ vs finetune [95% CI]", "p", "verdict", "Holm p", "Holm"]
    headers += ["FID", "KID", "adapted", "diversity", "memorised"]

    def cells(r: pd.Series) -> list[str]:
        name = f"**{r['method']}**" if str(r.get("best")).lower() == "true" else r["method"]
        m = _ranked(r)
        return [
            r["dataset"],
            *([r["budget"]] if budgets else []),
            name,
            str(r["n_seeds"]),
            m.upper(),
            f"{_num(r[f'{m}_mean'])} [{_num(r[f'{m}_ci95_low'])}, {_num(r[f'{m}_ci95_high'])}]",
            f"{_signed(r[f'delta_{m}_mean'])} [{_signed(r[f'delta_{m}_ci95_low'])}, "
            f"{_signed(r[f'delta_{m}_ci95_high'])}]",
            _p(r["delta_p"]),
            r["verdict"],
            _p(r["delta_p_holm"]),
            r["verdict_holm"],
            _num(r["fid_mean"]) + ("" if r.get("fid_valid", True) else " (not valid)"),
            _num(r["kid_mean"]),
            _num(r.get("adaptation_mean", math.nan), 2),
            _num(r["intra_cluster_diversity_mean"], 3),
            _num(r["mem_closer_to_train_mean"], 3),
        ]

    def ranked_mean(group: pd.DataFrame) -> pd.Series:
        return group.apply(lambda r: r[f"{_ranked(r)}_mean"], axis=1)

    return _markdown(headers, board, ranked_mean, cells)


def _values(text: object) -> dict[str, object]:
    if not isinstance(text, str) or not text:
        return {}
    return json.loads(text)


def _short(value: object) -> str:
    if isinstance(value, float) and not math.isnan(value):
        return f"{value:.3g}"
    return str(value)


def tuning_table(path: str) -> list[str]:
    headers = ["target", "method", "default FID (vs finetune)", "tuned FID (vs tuned finetune)"]
    headers += ["tuned − default [95% CI]", "p", "tuned vs default", "Holm", "chosen (default)"]

    def cells(r: pd.Series) -> list[str]:
        chosen, default = _values(r["selected_values"]), _values(r["default_values"])
        values = ", ".join(
            f"{key.removeprefix('train.')} {_short(chosen[key])} ({_short(default.get(key))})"
            for key in sorted(chosen)
        )
        trial = int(r["selected_trial"]) if not pd.isna(r["selected_trial"]) else None
        return [
            r["dataset"],
            r["method"],
            f"{_num(r['default_mean'])} ({r['default_verdict']})",
            f"{_num(r['tuned_mean'])} ({r['tuned_verdict']})",
            f"{_signed(r['tuned_minus_default_mean'])} "
            f"[{_signed(r['tuned_minus_default_ci95_low'])}, "
            f"{_signed(r['tuned_minus_default_ci95_high'])}]",
            _p(r["tuned_minus_default_p"]),
            r["tuned_minus_default_verdict"],
            r["tuned_minus_default_verdict_holm"],
            "defaults (trial 0)" if trial == 0 else values or "–",
        ]

    return _markdown(headers, pd.read_csv(path), "tuned_mean", cells)


def ranks_table(path: str) -> list[str]:
    """The mean rank over targets, one row per method, selection and budget, best first
    within each budget (a budget column as soon as the file holds two)."""
    ranks = pd.read_csv(path)
    several = ranks["selection"].nunique() > 1
    budgets = "budget" in ranks and ranks["budget"].nunique() > 1
    first = [*(["selection"] if several else []), *(["budget"] if budgets else [])]
    headers = [*first, "method", "mean rank [95% CI]", "targets"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for _, r in ranks.iterrows():
        cells = [*(str(r[c]) for c in first), r["method"]]
        cells += [f"{r['mean_rank']:.1f} [{r['rank_ci95_low']:.1f}, {r['rank_ci95_high']:.1f}]"]
        lines.append("| " + " | ".join([*cells, str(r["n_targets"])]) + " |")
    return lines


def main(argv: list[str]) -> int:
    kinds = {"leaderboard": leaderboard_table, "tuning": tuning_table, "ranks": ranks_table}
    if len(argv) != 2 or argv[0] not in kinds:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    print("\n".join(kinds[argv[0]](argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
