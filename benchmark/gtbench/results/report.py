"""``gtbench report``: one self-contained HTML file (``results/report.html``) that shows a
results folder to a person: the leaderboard with CIs and paired verdicts, the mean
ranks, a paired-Δ forest plot per target, quality vs diversity and memorisation, what each
method cost (wall time, peak memory) beside its quality, training curves, quality vs
shots, the training shots beside every method's samples and the most memorised samples
beside their nearest shot.

Every figure is drawn by matplotlib (object API, Agg canvas: no pyplot state, no display)
and embedded as a base64 PNG, so the file needs no network and no other file to view.
The HTML is the jinja2 template ``report.html.jinja`` beside this module (autoescaped):
each section is a macro this module calls with plain data.
A part whose data the results lack (no ``train_log.csv``, no kept generator, a dataset
plugin that is not installed) is left out with a note saying why.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

from gtbench.results.leaderboard import (
    DEFAULT_REFERENCE,
    board_cells,
    leaderboard,
    p_text,
    rank_rows,
    resolve_reference,
    row_budget,
    row_runs,
    run_folder,
    run_rows,
    targets,
)
from gtbench.results.records import atomic_write_text, iter_records

REPORT_HTML = "report.html"
TEMPLATE = "report.html.jinja"
VERDICT_COLOURS = {
    "better": "#1a9850",
    "worse": "#d73027",
    "tie": "#777777",
    "too few seeds": "#bbbbbb",
    "not a metric": "#bbbbbb",
}
LOG_PANELS = ("loss_g", "loss_d", "d_real", "d_fake", "r1")
MEMORISED_SAMPLES = 64  # drawn per run to find the samples nearest to a shot
MEMORISED_SHOWN = 4


@cache
def _html() -> Any:
    """The template's macros (``page``, ``leaderboard``, ...), each returning safe markup."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    environment = Environment(
        loader=FileSystemLoader(Path(__file__).resolve().parent),
        autoescape=True,
        undefined=StrictUndefined,
    )
    return environment.get_template(TEMPLATE).module


def _png(figure: Any) -> str:
    """A matplotlib figure as base64 PNG text (the template embeds it)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return _base64(buffer.getvalue())


def _base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _target_title(row: pd.Series) -> str:
    """Source, target, shots, extractor, and the selection and named budget where they say
    something: the adapted and long rows of one pair are told apart by name."""
    named_budget = row_budget(row)
    return (
        f"{row['source']} → {row['dataset']} · {row['shots']}-shot · {row['extractor']}"
        + ("" if row["selection"] == "default" else f" · {row['selection']}")
        + (f" · budget {named_budget}" if named_budget else "")
    )


def _metric(rows: pd.DataFrame) -> tuple[str, str]:
    """(column prefix, label) of the measure a target is ranked by."""
    if (rows["ranked_by"] == "kid").any():
        return "kid", "KID (FID not valid)"
    return "fid", "FID"


def _grouped_targets(board: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(title, rows) of every target, titles unique."""
    found = []
    for key, members in sorted(targets(board).items(), key=lambda item: str(item[0])):
        rows = board.loc[members]
        title = _target_title(rows.iloc[0])
        found.append((title + f" · protocol {key[-2]}-{key[-1]}", rows))
    titles = [t for t, _ in found]
    if len(set(t.rsplit(" · protocol", 1)[0] for t in titles)) == len(titles):
        found = [(t.rsplit(" · protocol", 1)[0], rows) for t, rows in found]
    return found


# --------------------------------------------------------------------------- sections


def _leaderboard_section(board: pd.DataFrame, reference: str) -> str:
    title, headers, rows, bold = board_cells(board)
    at = {headers.index("verdict"), headers.index("Holm")}
    coloured = [
        {
            "best": strong,
            "cells": [
                (cell, VERDICT_COLOURS.get(cell) if position in at else None)
                for position, cell in enumerate(cells)
            ],
        }
        for cells, strong in zip(rows, bold, strict=True)
    ]
    return _html().leaderboard(reference, title.split("\n"), headers, coloured)


def _ranks_section(ranks: pd.DataFrame) -> str:
    if ranks.empty:
        return _html().ranks([], [])
    headers, cells = rank_rows(ranks)
    return _html().ranks(headers, cells)


def _forest_section(groups: list[tuple[str, pd.DataFrame]], reference: str) -> str:
    parts: list[tuple[str, str | None]] = []  # (title, figure or None: no shared seeds)
    for title, rows in groups:
        prefix, label = _metric(rows)
        compared = rows[rows[f"delta_{prefix}_mean"].notna()]
        if compared.empty:
            parts.append((title, None))
            continue
        compared = compared.sort_values(f"delta_{prefix}_mean")
        figure = _figure(6.5, 0.35 * len(compared) + 1.2)
        axis = figure.subplots()
        y = list(range(len(compared)))
        for position, (_, row) in zip(y, compared.iterrows(), strict=True):
            mean = row[f"delta_{prefix}_mean"]
            low, high = row[f"delta_{prefix}_ci95_low"], row[f"delta_{prefix}_ci95_high"]
            colour = VERDICT_COLOURS.get(row["verdict"], "#333333")
            if not math.isnan(low):
                axis.plot([low, high], [position, position], color=colour, linewidth=2)
            axis.plot([mean], [position], "o", color=colour)
        axis.axvline(0.0, color="black", linewidth=0.8)
        axis.set_yticks(
            y,
            [
                f"{m} (p {p_text(p)}, {v})"
                for m, p, v in zip(
                    compared["method"], compared["delta_p"], compared["verdict"], strict=True
                )
            ],
        )
        axis.set_xlabel(f"Δ {label} vs {reference} (mean, 95% paired-t CI; < 0 is better)")
        axis.set_title(title, fontsize=9)
        parts.append((title, _png(figure)))
    return _html().forest(parts, reference)


def _scatter_section(groups: list[tuple[str, pd.DataFrame]]) -> str:
    panels = [
        ("adaptation_mean", "adaptation (share of samples in the target domain)"),
        (
            "intra_cluster_diversity_mean",
            "diversity (intra-cluster distance, higher: more diverse)",
        ),
        ("mem_closer_to_train_mean", "memorisation (fraction of samples nearer a shot)"),
    ]
    parts = []
    for title, rows in groups:
        prefix, label = _metric(rows)
        available = [(c, name) for c, name in panels if c in rows and rows[c].notna().any()]
        if not available:
            continue
        figure = _figure(5.0 * len(available), 3.8)
        axes = figure.subplots(1, len(available), squeeze=False)[0]
        for axis, (column, name) in zip(axes, available, strict=True):
            axis.scatter(rows[column], rows[f"{prefix}_mean"], color="#4575b4")
            for _, row in rows.iterrows():
                axis.annotate(
                    str(row["method"]).split(":")[0],
                    (row[column], row[f"{prefix}_mean"]),
                    fontsize=7,
                    xytext=(3, 3),
                    textcoords="offset points",
                )
            axis.set_xlabel(name)
            axis.set_ylabel(f"{label} (lower is better)")
        figure.suptitle(title, fontsize=9)
        parts.append(_png(figure))
    return _html().figures(
        "Quality vs diversity and memorisation",
        parts,
        "The records hold no diversity or memorisation metrics.",
    )


# (board column, header, decimals): a run's wall time by stage and its peak memory
COST_COLUMNS = (
    ("total_s_mean", "total s", 1),
    ("cpu_s_mean", "CPU s", 1),
    ("setup_s_mean", "setup s", 1),
    ("train_s_mean", "train s", 1),
    ("eval_s_mean", "eval s", 1),
    ("adaptation_s_mean", "adaptation s", 1),
    ("curve_s_mean", "curve s", 1),
    ("peak_rss_mb_max", "peak RSS MB", 0),
    ("cuda_peak_mb_max", "CUDA peak MB", 0),
)


def _cost_section(groups: list[tuple[str, pd.DataFrame]]) -> str:
    """Per target, each method's quality beside its mean wall time per run (by stage)
    and its largest peak memory over the seeds; columns no record has are left out."""
    parts = []
    for title, rows in groups:
        prefix, label = _metric(rows)
        columns = [c for c in COST_COLUMNS if c[0] in rows and rows[c[0]].notna().any()]
        if not any(c[0] in ("total_s_mean", "train_s_mean") for c in columns):
            continue
        headers = ["method", label, "seeds"] + [c[1] for c in columns]
        cells = [
            [
                str(row["method"]),
                _number(row.get(f"{prefix}_mean"), 4 if prefix == "kid" else 1),
                str(row["n_seeds"]),
                *(_number(row.get(column), decimals) for column, _, decimals in columns),
            ]
            for _, row in rows.sort_values("method").iterrows()
        ]
        parts.append((title, headers, cells))
    return _html().cost(parts)


def _number(value: Any, decimals: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{float(value):.{decimals}f}"


def _read_log(path: Path) -> pd.DataFrame | None:
    try:
        return pd.read_csv(path)
    except (OSError, ValueError):
        return None


def _curves_section(
    groups: list[tuple[str, pd.DataFrame]],
    runs: pd.DataFrame,
    records: dict[str, dict],
    results: Path,
) -> tuple[str, list[str]]:
    parts: list[str] = []
    notes: list[str] = []
    any_log = any_curve = False
    for title, rows in groups:
        logs: dict[str, pd.DataFrame] = {}
        curves: dict[str, pd.DataFrame] = {}
        for _, row in rows.iterrows():
            for run_id in row_runs(runs, row)["run_id"]:
                record = records.get(run_id, {})
                name = record.get("train_log")
                log = _read_log(run_folder(runs, results, run_id) / (name or "train_log.csv"))
                if log is not None and "step" in log and row["method"] not in logs:
                    logs[row["method"]] = log
                if record.get("curve") and row["method"] not in curves:
                    curves[row["method"]] = pd.DataFrame(record["curve"])
        panels = [p for p in LOG_PANELS if any(p in log for log in logs.values())]
        if logs and panels:
            any_log = True
            columns = min(3, len(panels))
            lines = math.ceil(len(panels) / columns)
            figure = _figure(3.6 * columns, 2.8 * lines)
            axes = figure.subplots(lines, columns, squeeze=False).ravel()
            for axis in axes[len(panels) :]:
                axis.set_visible(False)
            for axis, panel in zip(axes, panels, strict=False):
                for method, log in sorted(logs.items()):
                    if panel in log:
                        axis.plot(
                            log["step"],
                            log[panel],
                            label=method,
                            linewidth=1,
                            marker="o" if len(log) < 20 else None,
                            markersize=3,
                        )
                axis.set_title(panel, fontsize=9)
                axis.set_xlabel("step")
            axes[0].legend(fontsize=6)
            figure.suptitle(f"{title}: train_log.csv of the first seed", fontsize=9)
            parts.append(_png(figure))
        if curves:
            any_curve = True
            figure = _figure(6.0, 3.5)
            axis = figure.subplots()
            for method, curve in sorted(curves.items()):
                axis.plot(curve["step"], curve["fid"], marker="o", markersize=3, label=method)
            n = sorted({int(v) for c in curves.values() for v in c.get("n_samples", [])})
            axis.set_xlabel("step")
            axis.set_ylabel(f"FID ({', '.join(map(str, n))} samples: cheaper than the ranked one)")
            axis.legend(fontsize=6)
            axis.set_title(f"{title}: FID over training (first seed)", fontsize=9)
            parts.append(_png(figure))
    if not any_log:
        notes.append("no train_log.csv in these runs: no training curves")
    return _html().training(parts, any_log, any_curve), notes


def _efficiency_groups(board: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(title, rows) of every source × target × extractor × selection × protocol that was
    run at two shot counts or more; stale rows apart from current ones, as in the
    leaderboard's targets. Rows that do not train (``source-only``) join every training
    protocol of their evaluation."""
    if board.empty:
        return []
    evaluation = board["protocol"].str.split("-").str[0]
    train = board["protocol"].str.split("-").str[1]
    stale = board["stale"].astype(bool)
    keys = ["source", "dataset", "extractor", "selection"]
    groups = []
    for key, members in board.groupby([*(board[k] for k in keys), stale, evaluation], sort=True):
        own_train = train.loc[members.index]
        for hash_ in sorted(set(own_train) - {"none"}) or ["none"]:
            rows = members[own_train.isin([hash_, "none"])]
            if rows["shots"].nunique() < 2:
                continue
            source, dataset, extractor, selection, stale_rows, _ = key
            title = f"{source} → {dataset} · {extractor}"
            title += ("" if selection == "default" else f" · {selection}") + (
                " · (stale)" if stale_rows else ""
            )
            groups.append((title + f" · protocol {key[-1]}-{hash_}", rows))
    titles = [t.rsplit(" · protocol", 1)[0] for t, _ in groups]
    if len(set(titles)) == len(titles):  # the protocol only where two would share a title
        groups = [(t, rows) for t, (_, rows) in zip(titles, groups, strict=True)]
    return groups


def _efficiency_panel(axis: Any, rows: pd.DataFrame, prefix: str, label: str) -> None:
    """One measure against shots, a line per method: the mean over seeds and its 95 %
    bootstrap interval over seeds (the seed fixes the shots)."""
    for method, own in rows.groupby("method", sort=True):
        own = own.sort_values("shots")
        mean = own[f"{prefix}_mean"].astype(float)
        low = (mean - own[f"{prefix}_ci95_low"].astype(float)).clip(lower=0).fillna(0)
        high = (own[f"{prefix}_ci95_high"].astype(float) - mean).clip(lower=0).fillna(0)
        axis.errorbar(
            own["shots"], mean, yerr=[low, high], marker="o", capsize=3, label=str(method)
        )
    shots = sorted({int(k) for k in rows["shots"]})
    axis.set_xscale("log")
    axis.set_xticks(shots, [str(k) for k in shots])
    axis.minorticks_off()
    axis.set_xlabel("shots")
    axis.set_ylabel(f"{label} (lower is better)")


def _shots_section(board: pd.DataFrame) -> str:
    """The data-efficiency plot: quality against the number of shots, per method, where a
    target was run at two shot counts or more (left out otherwise)."""
    parts = []
    for title, rows in _efficiency_groups(board):
        prefix, label = _metric(rows)
        panels = [(prefix, label)] + ([("kid", "KID")] if prefix == "fid" else [])
        figure = _figure(5.2 * len(panels), 3.8)
        axes = figure.subplots(1, len(panels), squeeze=False)[0]
        for axis, (column, name) in zip(axes, panels, strict=True):
            _efficiency_panel(axis, rows, column, name)
        axes[0].legend(fontsize=6)
        counts = ", ".join(f"{k}: {n}" for k, n in rows.groupby("shots")["n_seeds"].max().items())
        figure.suptitle(
            f"{title}\nmean and 95% CI over seeds (seeds per shot count — {counts})", fontsize=9
        )
        parts.append(_png(figure))
    return _html().shots(parts)


def _grid_png(images: Any, columns: int = 5) -> bytes:
    from PIL import Image
    from torchvision.utils import make_grid

    grid = make_grid(images, nrow=columns, padding=1).permute(1, 2, 0).numpy()
    picture = Image.fromarray(grid[..., 0] if grid.shape[2] == 1 else grid)
    if picture.width < 240:  # small images: enlarge without smoothing
        scale = math.ceil(240 / picture.width)
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _shots_of(record: dict[str, Any], cache: dict[str, Any]) -> Any:
    """The training shots of a record (uint8 N×C×H×W, the dataset's own format)."""
    from gtbench.plan.cells import make_plugin

    key = repr(record["dataset"])
    if key not in cache:
        cache[key] = make_plugin("dataset", record["dataset"]).images()
    return cache[key][list(record["train_indices"])]


def _first_shared_seed(rows: pd.DataFrame, runs: pd.DataFrame) -> tuple[int | None, dict]:
    """The smallest seed every method of a target ran, and method → run id for it."""
    per_method = {row["method"]: row_runs(runs, row) for _, row in rows.iterrows()}
    seed_sets = [set(r["seed"]) for r in per_method.values()]
    shared = set.intersection(*seed_sets) if seed_sets else set()
    seed = min(shared) if shared else (min(set.union(*seed_sets)) if seed_sets else None)
    chosen = {}
    for method, method_runs in per_method.items():
        match = method_runs[method_runs["seed"] == seed]
        if not match.empty:
            chosen[method] = str(match.iloc[0]["run_id"])
    return seed, chosen


def _samples_section(
    groups: list[tuple[str, pd.DataFrame]],
    runs: pd.DataFrame,
    records: dict[str, dict],
    results: Path,
    dataset_cache: dict[str, Any],
) -> tuple[str, list[str]]:
    parts: list[tuple[str, list[tuple[str, str, str]]]] = []  # title, (grid, alt, caption)
    notes: list[str] = []
    for title, rows in groups:
        seed, chosen = _first_shared_seed(rows, runs)
        if not chosen:
            continue
        cells = []
        first = records[next(iter(chosen.values()))]
        try:
            shots = _shots_of(first, dataset_cache)
            cells.append(
                (
                    _base64(_grid_png(shots)),
                    "training shots",
                    f"the {len(shots)} shots (seed {seed})",
                )
            )
        except Exception as error:  # noqa: BLE001 - a missing plugin or data: say so, go on
            notes.append(f"{title}: training shots not shown ({type(error).__name__}: {error})")
        order = rows.sort_values("method")["method"]
        missing = []
        for method in order:
            run_id = chosen.get(method)
            grid = run_folder(runs, results, run_id) / "samples.png" if run_id else None
            if grid is None or not grid.exists():
                grid = _exported_grid(results, rows[rows["method"] == method].iloc[0])
            if grid is None:
                missing.append(str(method))
                continue
            cells.append((_base64(grid.read_bytes()), f"samples of {method}", str(method)))
        if missing:
            notes.append(f"{title}: no samples.png for {', '.join(missing)} (not kept)")
        parts.append((title, cells))
    return _html().samples(parts), notes


def _exported_grid(results: Path, row: pd.Series) -> Path | None:
    """The grid ``gtbench leaderboard --grids results/grids`` kept for a row (committed
    results keep those, not the per-run ``samples.png``), if exactly one matches."""
    import glob
    import re

    parts = [row["source"], row["dataset"], f"{row['shots']}shot", row["method"]]
    stem = "__".join(re.sub(r"[^A-Za-z0-9.=-]+", "-", str(p)) for p in parts)
    found = sorted((results / "grids").glob(f"{glob.escape(stem)}__*.png"))
    return found[0] if len(found) == 1 else None


def _memorised_section(
    groups: list[tuple[str, pd.DataFrame]],
    runs: pd.DataFrame,
    records: dict[str, dict],
    results: Path,
    dataset_cache: dict[str, Any],
) -> tuple[str, list[str]]:
    """For every method of a target (first shared seed), the samples nearest to a training
    shot in the extractor's feature space (cosine distance, as ``mem_*`` metrics use),
    drawn anew from the kept generator."""
    parts: list[tuple[str, list[tuple[str, str, str]]]] = []  # title, (grid, method, distances)
    notes: list[str] = []
    shown = 0
    for title, rows in groups:
        _, chosen = _first_shared_seed(rows, runs)
        figures = []
        for method, run_id in sorted(chosen.items()):
            record = records[run_id]
            weights = record.get("weights") or {}
            if not (run_folder(runs, results, run_id) / weights.get("file", "-")).is_file():
                continue
            try:
                folder = run_folder(runs, results, run_id).parent.parent
                figures.append(_memorised_pairs(folder, record, method, dataset_cache))
            except Exception as error:  # noqa: BLE001 - weights or plugins gone: say so
                notes.append(f"{title} · {method}: memorised samples not shown ({error})")
        if figures:
            shown += 1
            parts.append((title, figures))
    if not shown:
        notes.append("no kept generator weights: most memorised samples not shown")
    return _html().memorised(parts, MEMORISED_SAMPLES, shown), notes


def _memorised_pairs(
    results: Path, record: dict[str, Any], method: str, dataset_cache: dict[str, Any]
) -> tuple[str, str, str]:
    """(grid of the nearest samples above their shots as base64 PNG, method, distances)."""
    import torch

    from gtbench.measure.evaluation import (
        extract_features,
        generate_images,
        load_feature_extractor,
        nearest,
    )
    from gtbench.plan.cells import make_plugin
    from gtbench.plugin.images import compared_channels, match_format
    from gtbench.results.generate import load_generator

    device = torch.device("cpu")
    generator = load_generator(record["run_id"], results, device)
    samples = generate_images(
        generator, MEMORISED_SAMPLES, seed=record["seed"] + 20_000, device=device
    )
    own = _shots_of(record, dataset_cache)
    shots = match_format(own, samples.shape[1], samples.shape[-1])
    extractor = make_plugin("extractor", record["eval"]["extractor"])
    module = load_feature_extractor(extractor, device)
    # nearest in the channels the evaluation compares in (grey for a grey target)
    channels = compared_channels(samples.shape[1], own.shape[1])
    size = samples.shape[-1]
    fake = extract_features(module, match_format(samples, channels, size), device=device)
    real = extract_features(module, match_format(shots, channels, size), device=device)
    distance, index = nearest(fake, real)
    top = torch.argsort(distance)[:MEMORISED_SHOWN]
    pairs = torch.cat([samples[top], shots[index[top]]])
    distances = ", ".join(f"{float(distance[i]):.3f}" for i in top)
    return _base64(_grid_png(pairs, columns=len(top))), method, distances


# --------------------------------------------------------------------------- page

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1500px}
table{border-collapse:collapse;font-size:12px;margin:.5em 0}
th,td{border:1px solid #ccc;padding:2px 6px;text-align:left;white-space:nowrap}
thead th{background:#f0f0f0} tr.best td{font-weight:bold}
caption{text-align:left;font-size:12px;color:#555;padding-bottom:3px}
.row{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
figure{margin:0;font-size:11px} img{max-width:100%}
img.grid{image-rendering:pixelated;max-width:320px}
.note{color:#8a5a00} .wide{overflow-x:auto} h2{border-bottom:1px solid #ddd;margin-top:1.6em}
"""


def write_report(
    results: str | Path,
    *,
    reference: str = DEFAULT_REFERENCE,
    out: str | Path | None = None,
    memorised: bool = True,
    beside: Sequence[str | Path] = (),
) -> tuple[Path, list[str]]:
    """Build the report of ``results``; returns its path and notes on what was left out."""
    from markupsafe import Markup

    from gtbench.errors import UsageError

    results = Path(results)
    if not (results / "runs").is_dir():
        raise UsageError(f"no results in {str(results)!r} (run `gtbench run` first)")
    runs = run_rows(results, beside)
    reference = resolve_reference(runs, reference)
    board, ranks = leaderboard(runs, reference, with_ranks=True)
    if board.empty:
        raise UsageError(f"no finished runs in {str(results)!r}")
    records = {
        record["run_id"]: record for folder in (*beside, results) for record in iter_records(folder)
    }
    groups = _grouped_targets(board)
    notes: list[str] = []
    dataset_cache: dict[str, Any] = {}
    sections = [
        _leaderboard_section(board, reference),
        _ranks_section(ranks),
        _forest_section(groups, reference),
        _scatter_section(groups),
        _cost_section(groups),
    ]
    for build in (_curves_section,):
        text, found = build(groups, runs, records, results)
        sections.append(text)
        notes += found
    sections.append(_shots_section(board))
    text, found = _samples_section(groups, runs, records, results, dataset_cache)
    sections.append(text)
    notes += found
    if memorised:
        text, found = _memorised_section(groups, runs, records, results, dataset_cache)
        sections.append(text)
        notes += found
    page = _html().page(
        Markup(_STYLE),
        len(runs),
        int((runs["status"] == "ok").sum()),
        len(board),
        len(groups),
        reference,
        sections,
        notes,
    )
    path = Path(out) if out is not None else results / REPORT_HTML
    atomic_write_text(path, str(page))
    return path, notes
