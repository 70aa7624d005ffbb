"""``gtbench tune``: equal tuning of every method, selected on the validation split.

Three ordinary sweeps, each resumable: the trials (N per method, evaluated on the
validation split with the ``[tune.eval]`` settings), then the selected configuration of
every method on the evaluation set with the suite's seeds (``selection:
tuned-validation``) next to the defaults (``selection: default``)."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Any

import click

from gtbench.errors import UsageError

__all__ = ["tune_command"]


@click.command("tune")
@click.option("--sources", help="comma-separated source specs, or 'all'")
@click.option("--methods", help="comma-separated method specs, or 'all'")
@click.option("--datasets", help="comma-separated dataset specs, or 'all'")
@click.option("--shots", help="e.g. 10,100")
@click.option("--seeds", help="seeds of the final (evaluation) cells, e.g. 0,1,2")
@click.option("--iters", type=int, help="training iterations per cell (trials too)")
@click.option("--batch-size", type=int, help="training batch size")
@click.option("--n-samples", type=int, help="generated images for the final FID/KID")
@click.option("--extractor", help="feature extractor spec for FID/KID")
@click.option("--trials", type=int, help="random trials per method, defaults included [4]")
@click.option(
    "--trial-seeds", help="seeds of the trial cells, never evaluation seeds, e.g. 1000 [1000]"
)
@click.option("--trial-n-samples", type=int, help="generated images per trial evaluation")
@click.option(
    "--metric",
    type=click.Choice(["auto", "fid", "kid"]),
    help="selection metric [auto: FID, or KID where FID is not valid]",
)
@click.option(
    "--select-on",
    type=click.Choice(["validation", "evaluation"]),
    help="split trials are measured on; 'evaluation' is labelled tuned-evaluation [validation]",
)
@click.option("--defaults/--no-defaults", default=True, help="also run every method's defaults")
@click.option("--dry-run", is_flag=True, help="print the search spaces and trial counts only")
@click.option("--launcher", help="launcher spec (local, process, ...)")
@click.option("--workers", type=int, help="parallel workers")
@click.option("--results", default="results", show_default=True, help="results folder")
@click.option("--force", is_flag=True, help="run cells again even when already done")
@click.option("--suite", "suite_file", help="suite file (TOML/YAML) or built-in suite name")
@click.option("--keep-weights/--no-keep-weights", default=None, help="keep adapted generators")
def tune_command(**options: Any) -> None:
    """Tune every method equally (N seeded random trials, selection on validation), then
    run the selected configurations on the evaluation set."""
    from gtbench.cli.main import (
        _print_run_board,
        _print_summary,
        _raise_interrupt,
        _run_with_progress,
        err,
    )
    from gtbench.plan.cells import plan_suite
    from gtbench.tune.tuning import final_plan, plan_trials, select, tune_settings

    started = time.perf_counter()
    signal.signal(signal.SIGTERM, _raise_interrupt)
    suite = _suite(options)
    settings = tune_settings(suite.tune, f"suite {suite.name!r} [tune]")
    for key, option in (("trials", "trials"), ("metric", "metric"), ("select_on", "select_on")):
        if options[option] is not None:
            setattr(settings, key, options[option])
    if options["trial_seeds"] is not None:
        settings.seeds = _ints("trial-seeds", options["trial_seeds"])
    if options["trial_n_samples"] is not None:
        settings.eval["n_samples"] = options["trial_n_samples"]
    settings = tune_settings(dataclass_dict(settings))  # re-check what the flags changed

    trials = plan_trials(suite, settings)
    for label, space in trials.spaces.items():
        shown = ", ".join(f"{k} ~ {v}" for k, v in space.items()) or "nothing to tune: 1 trial"
        err.print(f"[bold]{label}[/]: {shown}", highlight=False)
    err.print(
        f"{len(trials.cells.cells)} trial cells ({settings.trials} trials per method, trial 0 "
        f"= defaults; seeds {settings.seeds}; measured on the {settings.select_on} split)",
        highlight=False,
    )
    for skipped in trials.cells.skipped:
        err.print(
            f"[yellow]skipped[/] {skipped.source} → {skipped.dataset} · {skipped.method}: "
            f"{skipped.reason}",
            highlight=False,
        )
    if options["dry_run"]:
        return
    launcher = options["launcher"] or str(suite.launcher)
    workers = options["workers"] if options["workers"] is not None else suite.workers
    results, force = options["results"], options["force"]
    first = _run_with_progress(trials.cells, results, launcher, workers, force, True)
    _print_summary(first, results, time.perf_counter() - started)

    selections = select(trials, results)
    for key, selection in selections.items():
        _print_selection(err, key, selection)
    final = final_plan(trials, selections)
    if options["defaults"]:
        final.cells = plan_suite(suite).cells + final.cells
    second = _run_with_progress(final, results, launcher, workers, force, True)
    _print_summary(second, results, time.perf_counter() - started)
    _print_run_board(results, {cell["run_id"] for cell in final.cells})
    if options["defaults"]:
        from gtbench.tune.tuning_table import TUNING_CSV, write_tuning_table

        _print_default_vs_tuned(write_tuning_table(results))
        err.print(f"default vs tuned: {Path(results) / TUNING_CSV}", highlight=False)
    sys.exit(max(first.exit_code, second.exit_code))


def _print_default_vs_tuned(table: Any) -> None:
    """Per target and method: the defaults' and the tuned configuration's evaluation
    mean, the paired tuned − default difference, each one's verdict against finetune in
    its own selection, and the values tuning chose (``tuning.csv``). A rich table on a
    terminal, plain lines (one per row, never wrapped) in logs."""
    from gtbench.cli.main import print_table
    from gtbench.results.leaderboard import number, p_text

    if table.empty:
        return
    headers = ["target", "method", "metric", "default", "tuned", "tuned − default", "p"]
    headers += ["verdict", "vs finetune: default → tuned", "chosen values"]
    rows = []
    for _, r in table.iterrows():
        chosen = r["selected_values"] or "{}"
        rows.append(
            [
                f"{r['dataset']} · {r['shots']}-shot",
                str(r["method"]),
                str(r["metric"]),
                number(r["default_mean"]),
                number(r["tuned_mean"]),
                number(r["tuned_minus_default_mean"]),
                p_text(r["tuned_minus_default_p"]),
                str(r["tuned_minus_default_verdict"]),
                f"{r['default_verdict']} → {r['tuned_verdict']}",
                "defaults" if r["selected_trial"] == 0 else chosen,
            ]
        )
    title = "default vs tuned: evaluation set, mean over seeds (tuning.csv)"
    print_table(title, headers, rows)


def dataclass_dict(value: Any) -> dict[str, Any]:
    import dataclasses

    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}


def _ints(name: str, text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"--{name} expects comma-separated integers, got {text!r}") from None


def _suite(options: dict[str, Any]) -> Any:
    """The suite with the command line's overrides (the same as ``gtbench run``'s)."""
    from gtbench.cli.main import _expand, _int_list, err
    from gtbench.plan.suite import DEFAULT_SUITE, load_suite

    suite = load_suite(options["suite_file"] or DEFAULT_SUITE)
    notes: list[str] = []
    chosen = {
        "sources": _expand("source", options["sources"], notes),
        "methods": _expand("method", options["methods"], notes),
        "datasets": _expand("dataset", options["datasets"], notes),
        "shots": _int_list("shots", options["shots"]),
        "seeds": _int_list("seeds", options["seeds"]),
        "extractor": options["extractor"],
        "keep_weights": options["keep_weights"],
    }
    suite.override(**{k: v for k, v in chosen.items() if v is not None})
    train = {"iters": options["iters"], "batch_size": options["batch_size"]}
    suite.override("train", **{k: v for k, v in train.items() if v is not None})
    if options["n_samples"] is not None:
        suite.override("eval", n_samples=options["n_samples"])
    for note in notes:
        err.print(f"[yellow]{note}[/]", highlight=False)
    return suite


def _print_selection(console: Any, key: tuple[Any, ...], selection: Any) -> None:
    import json

    source = json.loads(key[2])["name"]
    dataset = json.loads(key[3])["name"]
    where = f"{key[1]} on {source} → {dataset} · {key[4]}-shot"
    if selection.trial is None:
        console.print(f"[red]not tuned[/] {where}: {selection.reason}", highlight=False)
        return
    chosen = selection.history[[h["trial"] for h in selection.history].index(selection.trial.index)]
    values = selection.trial.values
    shown = ", ".join(f"{k}={v}" for k, v in sorted(values.items())) or "defaults"
    console.print(
        f"[green]selected[/] {where}: trial {selection.trial.index} ({shown}); validation "
        f"{selection.metric} {chosen['score']:.4g}",
        highlight=False,
    )
