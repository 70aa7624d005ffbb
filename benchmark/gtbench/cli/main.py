"""The ``gtbench`` command line (its public contract: docs/usage.md).

Every error the user can cause prints as one line; exit status 0 when every cell
succeeded or was already done, 1 when any cell failed, 2 for a usage error."""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from gtbench.errors import GtbenchError, PluginError, UsageError
from gtbench.measure.eval_settings import DEFAULT_REFERENCE
from gtbench.plugin import registry

# Answering `--help` or a usage error must not wait for torch, torch-fidelity or pandas
# (seconds): this module imports them only inside the commands that need them, and the
# commands defined in other modules are imported when invoked (`LAZY_COMMANDS`).

out = Console(soft_wrap=not sys.stdout.isatty())  # logs: long lines are never wrapped
err = Console(stderr=True, soft_wrap=not sys.stderr.isatty())
DEFAULT_RESULTS = "results"


def _fail(error: Exception) -> None:
    code = 2 if isinstance(error, (UsageError, PluginError)) else 1
    from rich.markup import escape

    err.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
    sys.exit(code)


# name -> ("module:command", its one-line help, shown by `gtbench --help` without importing)
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "fetch": (
        "gtbench.cli.fetch:fetch_command",
        "Download and verify the weights and data of the named plugins (default: all).",
    ),
    "generate": (
        "gtbench.results.generate:generate_command",
        "Write N PNG images from a run's adapted generator (deterministic for a seed).",
    ),
    "pretrain": (
        "gtbench.train.pretrain:pretrain_command",
        "Pretrain a source's architecture from scratch on a dataset; write checkpoint, JSON "
        "provenance and a sample grid next to OUT.",
    ),
    "status": (
        "gtbench.cli.status:status_command",
        "Show pending, running, interrupted, done and failed cells of a results folder.",
    ),
    "tune": (
        "gtbench.cli.tune:tune_command",
        "Tune every method equally (N seeded random trials, selection on validation), then "
        "run the selected configurations on the evaluation set.",
    ),
}


class _Group(click.Group):
    """Turns gtbench's one-line errors into messages and exit codes, never tracebacks, and
    imports the commands of ``LAZY_COMMANDS`` only when one is invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in LAZY_COMMANDS:
            import importlib

            module, _, attr = LAZY_COMMANDS[cmd_name][0].partition(":")
            self.add_command(getattr(importlib.import_module(module), attr), cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        limit = formatter.width - 6 - max(len(name) for name in self.list_commands(ctx))
        rows = []
        for name in self.list_commands(ctx):
            if name in self.commands:
                rows.append((name, self.commands[name].get_short_help_str(limit)))
            else:
                rows.append(
                    (name, click.utils.make_default_short_help(LAZY_COMMANDS[name][1], limit))
                )
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GtbenchError as error:
            _fail(error)
        except KeyboardInterrupt:
            err.print("interrupted: finished cells are saved; rerun the same command to resume")
            sys.exit(130)


@click.group(cls=_Group, context_settings={"show_default": True})
@click.version_option(package_name="gtbench")
def main() -> None:
    """Benchmark transfer methods for few-shot image generation."""


# --------------------------------------------------------------------------- list


@main.command("list")
@click.argument("kind", required=False, type=click.Choice(sorted(registry.KINDS)))
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def list_plugins(kind: str | None, as_json: bool) -> None:
    """List installed plugins (broken ones with their error)."""
    from rich.table import Table

    kinds = [kind] if kind else list(registry.KINDS)
    listing: dict[str, list[dict[str, Any]]] = {}
    collisions: list[str] = []
    for name in kinds:
        reg = registry.registry(name)
        collisions += reg.collisions
        listing[name] = [_describe_plugin(reg, plugin) for plugin in reg.names()]
    if as_json:
        out.print_json(json.dumps({"plugins": listing, "collisions": collisions}))
        return
    for name, plugins in listing.items():
        if not interactive():  # a log: lines never wrapped, one plugin per paragraph
            click.echo(f"{name}s")
            for plugin in plugins:
                status = "ok" if plugin["error"] is None else f"broken: {plugin['error']}"
                version = f"version {plugin['version']}, " if plugin["version"] else ""
                click.echo(f"  {plugin['name']} ({plugin['distribution']}, {version}{status})")
                for text in (plugin["description"], _parameter_text(plugin)):
                    if text:
                        click.echo(f"      {text}")
            continue
        table = Table(title=f"{name}s", title_justify="left", expand=False)
        for column in ("name", "version", "from", "status", "description", "parameters"):
            table.add_column(column, overflow="fold")
        for plugin in plugins:
            status = (
                "[green]ok[/]" if plugin["error"] is None else f"[red]broken[/]: {plugin['error']}"
            )
            table.add_row(
                plugin["name"],
                plugin["version"] or "",
                plugin["distribution"],
                status,
                plugin["description"],
                _parameter_text(plugin),
            )
        out.print(table)
    for line in collisions:
        err.print(f"[yellow]name collision:[/] {line}")


def _parameter_text(plugin: dict[str, Any]) -> str:
    """``key=default`` for every parameter, with its search distribution after ``~``."""
    return ", ".join(
        f"{k}={v['default']}" + (f" ~ {v['search']}" if v.get("search") else "")
        for k, v in plugin["parameters"].items()
    )


def _search_text(parameter: Any) -> str | None:
    """The parameter's tuning distribution as a suite writes it (``gtbench tune``), or None."""
    search = getattr(parameter, "search", None)
    return None if search is None else str(search)


def _describe_plugin(reg: registry.Registry[Any], name: str) -> dict[str, Any]:
    entry = reg.entry(name)
    error = reg.load_error(name)
    info: dict[str, Any] = {
        "name": name,
        "distribution": f"{entry.distribution} {entry.version}".strip(),
        # the plugin's own version (part of every run id; bumped when its numbers change),
        # not its distribution's; None when the plugin does not load
        "version": None,
        "error": error,
        "description": "",
        "parameters": {},
    }
    if error is None:
        cls = reg.get(name)
        info["version"] = str(cls.version)
        info["description"] = cls.description or (cls.__doc__ or "").strip().split("\n")[0]
        info["parameters"] = {
            k: {"default": p.default, "help": p.help, "search": _search_text(p)}
            for k, p in cls.parameters.items()
        }
        for attribute in ("paper", "code"):
            if getattr(cls, attribute, ""):
                info[attribute] = getattr(cls, attribute)
    return info


# --------------------------------------------------------------------------- run


def _expand(kind: str, values: str | None, notes: list[str]) -> list[Any] | None:
    """``all`` → every plugin of that kind that loads; a list → its specs; None → None."""
    from gtbench.plugin.spec import parse_spec_list

    if values is None:
        return None
    if values.strip() == "all":
        reg = registry.registry(kind)
        chosen = []
        for name in reg.names():
            error = reg.load_error(name)
            if error is None:
                chosen.append(name)
            else:
                notes.append(f"skipped broken plugin: {error}")
        return chosen
    return parse_spec_list(values)


def _int_list(name: str, value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"--{name} expects comma-separated integers, got {value!r}") from None


class _PluginOption(click.Option):
    """An option naming plugins of one kind: its help lists the installed names (read
    from entry-point metadata when the help is shown, never imported)."""

    def __init__(self, *args: Any, kind: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kind = kind

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        record = super().get_help_record(ctx)
        if record is None:
            return None
        names = ", ".join(registry.registry(self.kind).names())
        return record[0], f"{record[1]} [installed: {names}]"


_FROM_SUITE = "default: the suite's"
DEVICE_PATTERN = re.compile(r"cpu|cuda(:\d+)?|mps")


def _check_device(device: str | None) -> None:
    """``--device`` (or ``GTBENCH_DEVICE``): checked for form here, exported to the
    runner and worker processes through ``GTBENCH_DEVICE``."""
    if device is None or not device.strip():
        return
    if not DEVICE_PATTERN.fullmatch(device.strip()):
        raise UsageError(f"--device must be cpu, cuda, cuda:N or mps, got {device!r}")
    os.environ["GTBENCH_DEVICE"] = device.strip()


def _check_names(kind: str, values: str | None) -> None:
    """Unknown plugin names fail here, from metadata alone (no torch import)."""
    from gtbench.plugin.spec import parse_spec, parse_spec_list

    if values is None or values.strip() == "all":
        return
    for text in parse_spec_list(values):
        registry.registry(kind).entry(parse_spec(text).name)


def _check_suite_names(suite: Any) -> None:
    from gtbench.plugin.spec import parse_spec

    for part in suite.parts():
        for kind, refs in (
            ("source", part.sources),
            ("method", part.methods),
            ("dataset", part.datasets),
            ("extractor", [part.extractor]),
            ("launcher", [part.launcher]),
        ):
            for ref in refs:
                registry.registry(kind).entry(parse_spec(ref).name)


@main.command()
@click.option(
    "--sources",
    cls=_PluginOption,
    kind="source",
    help=f"comma-separated source specs (name:key=value,...) or 'all'; {_FROM_SUITE}",
)
@click.option(
    "--methods",
    cls=_PluginOption,
    kind="method",
    help=f"comma-separated method specs or 'all'; {_FROM_SUITE}",
)
@click.option(
    "--datasets",
    cls=_PluginOption,
    kind="dataset",
    help=f"comma-separated dataset specs or 'all'; {_FROM_SUITE}",
)
@click.option("--shots", help=f"comma-separated shot counts, e.g. 10,100; {_FROM_SUITE}")
@click.option("--seeds", help=f"comma-separated seeds, e.g. 0,1,2; {_FROM_SUITE}")
@click.option(
    "--iters", type=click.IntRange(min=0), help=f"training iterations per cell; {_FROM_SUITE}"
)
@click.option(
    "--batch-size", type=click.IntRange(min=1), help=f"training batch size; {_FROM_SUITE}"
)
@click.option(
    "--n-samples", type=click.IntRange(min=2), help=f"generated images for FID/KID; {_FROM_SUITE}"
)
@click.option(
    "--extractor",
    cls=_PluginOption,
    kind="extractor",
    help=f"feature extractor spec for FID/KID; {_FROM_SUITE}",
)
@click.option(
    "--launcher", cls=_PluginOption, kind="launcher", help=f"launcher spec; {_FROM_SUITE} (local)"
)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    help="parallel workers; 0: the launcher's choice (process: one per visible GPU, 1 on "
    f"CPU); {_FROM_SUITE} (0)",
)
@click.option(
    "--device",
    envvar="GTBENCH_DEVICE",
    show_envvar=True,
    help="torch device the cells train and evaluate on: cpu, cuda, cuda:N or mps "
    "(default: cuda when available, else cpu; the process launcher gives each worker its "
    "own GPU)",
)
@click.option("--results", default=DEFAULT_RESULTS, help="results folder")
@click.option("--force", is_flag=True, help="run cells again even when already done")
@click.option(
    "--suite",
    "suite_file",
    default="default",
    help="suite file (TOML/YAML) or built-in suite name "
    "(default, debug, full, shots, stylegan2-ffhq)",
)
@click.option(
    "--keep-weights/--no-keep-weights",
    default=None,
    help=f"keep adapted generators; {_FROM_SUITE} (keep)",
)
@click.option("--no-wait", is_flag=True, help="cluster launchers: return after submitting")
@click.option(
    "--curve",
    type=click.IntRange(min=0),
    help="also evaluate the EMA at N evenly spaced steps with a cheaper evaluation "
    "(curve_n_samples images): FID over training and its best (by KID where FID is not "
    "valid at that size), labelled as evaluation-set "
    f"selection, beside the ranked final FID; 0: off; {_FROM_SUITE} (0). A done cell "
    "gets a curve only with --force",
)
@click.option(
    "--keep-stale",
    is_flag=True,
    help="count cells whose record is stale (older plugin/trainer versions, other data or "
    "extractor weights) as done instead of running them again",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="list the cells that would run and the stale records; run nothing",
)
@click.option(
    "--reference", default=DEFAULT_REFERENCE, help="method the paired statistics compare with"
)
@click.option(
    "--portable-cpu",
    is_flag=True,
    help="CPU results that do not depend on which x86-64 CPU computes them: torch's kernels "
    "at their baseline instruction set, oneDNN at SSE4.1, MKL in COMPATIBLE mode (for "
    "this process and its workers; training about 4x slower; docs/results.md)",
)
def run(
    sources: str | None,
    methods: str | None,
    datasets: str | None,
    shots: str | None,
    seeds: str | None,
    iters: int | None,
    batch_size: int | None,
    n_samples: int | None,
    extractor: str | None,
    launcher: str | None,
    workers: int | None,
    results: str,
    force: bool,
    suite_file: str | None,
    keep_weights: bool | None,
    no_wait: bool,
    keep_stale: bool,
    dry_run: bool,
    device: str | None,
    curve: int | None,
    reference: str,
    portable_cpu: bool,
) -> None:
    """Run a sweep: sources × methods × datasets × shots × seeds."""
    import time

    # Usage errors first, before anything imports torch (they answer in well under 1 s).
    for kind, values in (
        ("source", sources),
        ("method", methods),
        ("dataset", datasets),
        ("extractor", extractor),
        ("launcher", launcher),
    ):
        _check_names(kind, values)
    _int_list("shots", shots)
    _int_list("seeds", seeds)
    _check_device(device)
    if portable_cpu:  # before torch computes anything: its libraries read these once
        from gtbench.results.provenance import use_portable_cpu

        use_portable_cpu()

    from gtbench.plan.cells import plan_suite
    from gtbench.plan.suite import DEFAULT_SUITE, load_suite

    started = time.perf_counter()
    signal.signal(signal.SIGTERM, _raise_interrupt)
    suite = load_suite(suite_file or DEFAULT_SUITE)
    _check_suite_names(suite)
    notes: list[str] = []
    chosen = {
        "sources": _expand("source", sources, notes),
        "methods": _expand("method", methods, notes),
        "datasets": _expand("dataset", datasets, notes),
        "shots": _int_list("shots", shots),
        "seeds": _int_list("seeds", seeds),
        "extractor": extractor,
        "keep_weights": keep_weights,
        "curve": curve,
    }
    suite.override(**{k: v for k, v in chosen.items() if v is not None})
    train = {"iters": iters, "batch_size": batch_size}
    suite.override("train", **{k: v for k, v in train.items() if v is not None})
    if n_samples is not None:
        suite.override("eval", n_samples=n_samples)
    plan = plan_suite(suite)
    for note in notes:
        err.print(f"[yellow]{note}[/]", highlight=False)
    for skipped in plan.skipped:
        err.print(
            f"[yellow]skipped[/] {skipped.source} → {skipped.dataset} · {skipped.method}: "
            f"{skipped.reason}",
            highlight=False,
        )
    if dry_run:
        _print_dry_run(plan, results, force, keep_stale)
        return
    summary = _run_with_progress(
        plan,
        results,
        launcher or str(suite.launcher),
        workers if workers is not None else suite.workers,
        force,
        not no_wait,
        keep_stale,
        reference,
    )
    _print_summary(summary, results, time.perf_counter() - started)
    _print_run_board(results, {cell["run_id"] for cell in plan.cells}, reference)
    _print_next_steps(results)
    sys.exit(summary.exit_code)


def _print_next_steps(results: str) -> None:
    """Where to look next: the report, paired comparisons, and the committed reference
    results beside the user's own when this checkout has them."""
    folder = "" if results == DEFAULT_RESULTS else f" --results {shlex.quote(results)}"
    steps = [
        (f"gtbench report{folder}", "plots and samples in one HTML file"),
        (f"gtbench compare A B{folder}", "two methods, seed by seed"),
    ]
    beside = Path(DEFAULT_RESULTS) / "reference"
    if (beside / "runs").is_dir() and Path(results).resolve() != beside.resolve():
        steps.append((f"gtbench leaderboard{folder} --beside {beside}", "with the committed ones"))
    width = max(len(command) for command, _ in steps)
    for index, (command, what) in enumerate(steps):
        click.echo(f"{'next:' if index == 0 else '':<6}{command:<{width}}  # {what}")


def _print_run_board(results: str, run_ids: set[str], reference: str = DEFAULT_REFERENCE) -> None:
    """The leaderboard rows this sweep contributes to, printed after it."""
    from gtbench.results.leaderboard import leaderboard, run_rows

    runs = run_rows(results)
    if runs.empty:
        return
    board, ranks = leaderboard(runs[runs["run_id"].isin(run_ids)], reference, with_ranks=True)
    if not board.empty:
        _print_board(board, ranks)


def _print_stale(stale: list[Any], keep: bool, each: bool = False) -> None:
    """The stale records a sweep found: one line per record (``each``) or per reason."""
    from collections import Counter

    what = (
        "kept and counted as done (--keep-stale)"
        if keep
        else "their cells run again; the old records stay, set apart as stale "
        "(--keep-stale keeps using them)"
    )
    err.print(
        f"[yellow]{len(stale)} stale records[/] (made by other plugin/trainer/protocol "
        f"versions, data or extractor weights): {what}",
        highlight=False,
        soft_wrap=True,
    )
    if each:
        for item in stale:
            line = f"stale {item.run_id} {item.label}: {item.reason}"
            out.print(line, highlight=False, soft_wrap=True)
        return
    for reason, count in Counter(item.reason for item in stale).most_common():
        err.print(f"  {count} × {reason}", highlight=False, soft_wrap=True)


def _print_dry_run(plan: Any, results: str, force: bool, keep_stale: bool) -> None:
    from gtbench.launch.sweep import cell_label, preflight, triage

    summary = triage(plan, results, force=force, keep_stale=keep_stale)
    # the checks a run makes before training (contracts, assets, extractor weights): a
    # broken plugin fails the dry run in the same line the run would
    preflight(summary.pending, check_this_device=False)
    if summary.stale:
        _print_stale(summary.stale, keep_stale, each=True)
    for cell in summary.pending:
        line = f"would run {cell['run_id']} {cell_label(cell)}"
        out.print(line, highlight=False, soft_wrap=True)
    for note in summary.notes:
        err.print(f"[yellow]{note}[/]", highlight=False, soft_wrap=True)
    err.print(
        f"dry run: {summary.planned} cells planned: {summary.already_done} already done "
        f"({summary.kept_stale} on stale records kept), {len(summary.pending)} to run, "
        f"{len(summary.stale)} stale records found; "
        f"{len(summary.skipped)} combinations skipped. Nothing was run or written.",
        highlight=False,
        soft_wrap=True,
    )


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _clock(seconds: float) -> str:
    """``1:02:03`` / ``2:03``: a duration for a log line."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _cell_line(cell: dict[str, Any], record: dict[str, Any] | None, label: str) -> tuple[str, str]:
    """(status, text) of a finished cell: label, run id, the ranked measure (FID, or KID
    where FID is not valid for the set sizes) and the adaptation share, or the error."""
    status = record["status"] if record else "failed"
    metrics = (record or {}).get("metrics", {})
    evaluated = (record or {}).get("eval", {})
    fid, kid = metrics.get("fid"), metrics.get("kid_mean")
    if isinstance(fid, float) and evaluated.get("fid_valid") is False and isinstance(kid, float):
        shown = f"kid {kid:.4f} (FID not valid: too few images for the feature size)"
    elif isinstance(fid, float):
        shown = f"fid {fid:.2f}"
    else:
        shown = (record or {}).get("error", "")
    adaptation = metrics.get("adaptation")
    if isinstance(adaptation, float) and not math.isnan(adaptation):
        shown += f" · adapted {adaptation:.0%}"
    if isinstance(fid, float) and evaluated.get("is_metric") is False:
        shown += f" ({cell['eval']['extractor']['name']} extractor: not a metric)"
    return status, f"{label} {cell['run_id']} {shown}".rstrip()


def _run_with_progress(
    plan: Any,
    results: str,
    launcher: str,
    workers: int,
    force: bool,
    wait: bool,
    keep_stale: bool = False,
    reference: str = DEFAULT_REFERENCE,
) -> Any:
    from gtbench.launch.sweep import cell_label, run_sweep

    labels = {cell["run_id"]: cell_label(cell) for cell in plan.cells}
    options = dict(
        launcher=launcher,
        workers=workers,
        force=force,
        keep_stale=keep_stale,
        wait=wait,
        reference=reference,
        on_stale=lambda stale: _print_stale(stale, keep_stale),
    )
    if not interactive():
        # Logs: one plain line per finished cell, never wrapped, no progress bars; the
        # time so far and an ETA from the pace of the cells finished so far
        counts = {"done": 0, "total": 0, "started": time.monotonic()}

        def on_total(total: int) -> None:
            counts["total"], counts["started"] = total, time.monotonic()

        def on_plain_done(cell: dict[str, Any], record: dict[str, Any] | None) -> None:
            counts["done"] += 1
            status, text = _cell_line(cell, record, labels[cell["run_id"]])
            elapsed = time.monotonic() - counts["started"]
            left = max(counts["total"] - counts["done"], 0)
            pace = f"{_clock(elapsed)} elapsed, eta {_clock(elapsed / counts['done'] * left)}"
            click.echo(f"[{counts['done']}/{counts['total']}] {status} {text} · {pace}", err=True)

        return run_sweep(plan, results, on_start=on_total, on_cell_done=on_plain_done, **options)

    from rich.markup import escape
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=False) as progress:
        sweep_task = progress.add_task("cells", total=None)
        cell_task = progress.add_task("", total=None, visible=False)

        def on_start(total: int) -> None:
            progress.update(sweep_task, total=total)

        def on_cell_progress(run_id: str, stage: str, done: int, total: int) -> None:
            progress.update(
                cell_task,
                description=f"  {stage}: {labels.get(run_id, run_id)}",
                completed=done,
                total=total,
                visible=True,
            )

        def on_cell_done(cell: dict[str, Any], record: dict[str, Any] | None) -> None:
            progress.advance(sweep_task)
            status, text = _cell_line(cell, record, labels[cell["run_id"]])
            colour = "green" if status == "ok" else "red"
            progress.console.print(
                f"[{colour}]{status}[/] {escape(text)}", highlight=False, soft_wrap=True
            )

        return run_sweep(
            plan,
            results,
            on_start=on_start,
            on_cell_done=on_cell_done,
            progress=on_cell_progress,
            **options,
        )


def _print_summary(summary: Any, results: str, wall_s: float) -> None:
    for note in summary.notes:
        err.print(f"[yellow]{note}[/]", highlight=False)
    counts = ", ".join(f"{n} {s}" for s, n in sorted(summary.statuses.items())) or "nothing to run"
    err.print(
        f"{summary.planned} cells planned: {summary.already_done} already done, {counts}; "
        f"{len(summary.skipped)} combinations skipped. Wall time {wall_s:.1f} s.",
        highlight=False,
    )
    for problem in summary.problems:
        err.print(f"[red]{problem}[/]", highlight=False)
    err.print(f"leaderboard: {Path(results) / 'leaderboard.csv'}", highlight=False)


# --------------------------------------------------------------------------- results


# Another results folder whose records join a table (the committed reference results).
BESIDE_OPTION = click.option(
    "--beside",
    multiple=True,
    help="another results folder whose records join the table (e.g. results/reference, "
    "the committed reference results); repeatable",
)


@main.command("leaderboard")
@click.option("--results", default=DEFAULT_RESULTS, show_default=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "md", "json"]),
    default="table",
    show_default=True,
)
@click.option("--grids", default=None, help="also copy one sample grid per row into this folder")
@click.option(
    "--reference", default=DEFAULT_REFERENCE, help="method the paired statistics compare with"
)
@BESIDE_OPTION
def leaderboard_command(
    results: str, fmt: str, grids: str | None, reference: str, beside: tuple[str, ...]
) -> None:
    """Show the leaderboard: mean ± std and bootstrap CI over seeds, the paired difference
    to a reference method with its t-test CI, p and verdict, and the family-wise (Holm)
    verdict over the target's methods; ★ marks a method better than every other of its
    target (Holm)."""
    import pandas as pd

    from gtbench.launch.sweep import ensure_writable
    from gtbench.results.leaderboard import RANKS_CSV, leaderboard, run_rows, write_tables

    if not (Path(results) / "runs").is_dir():
        raise UsageError(f"no results in {results!r} (run `gtbench run` first)")
    for folder in beside:
        if not (Path(folder) / "runs").is_dir():
            raise UsageError(f"--beside {folder!r}: no results there")
    if reference != DEFAULT_REFERENCE:
        from gtbench.results.leaderboard import resolve_reference

        reference = resolve_reference(run_rows(results, beside), reference)
    try:
        ensure_writable(Path(results))
        runs, board = write_tables(results, reference)
        ranks = pd.read_csv(Path(results) / RANKS_CSV)  # just written: not computed twice
    except UsageError:
        runs = run_rows(results)
        board, ranks = leaderboard(runs, reference, with_ranks=True)
    if beside:  # shown beside the user's, never written into the user's tables
        runs = run_rows(results, beside)
        board, ranks = leaderboard(runs, reference, with_ranks=True)
    if grids is not None:
        from gtbench.results.leaderboard import export_grids

        copied = export_grids(results, grids)
        err.print(f"copied {len(copied)} sample grids to {grids}", highlight=False)
    if fmt == "csv":
        click.echo(board.to_csv(index=False, float_format="%.6g"), nl=False)
        return
    if fmt == "json":
        click.echo(board.to_json(orient="records", indent=2))
        return
    if fmt == "md":
        click.echo(
            board.drop(columns=["protocol"], errors="ignore").to_markdown(
                index=False, floatfmt=".4g"
            )
        )
        return
    _print_board(board, ranks)
    _print_missing(results, runs)


def _print_board(board: Any, ranks: Any = None) -> None:
    """The leaderboard, then the mean rank over targets when methods ran on several: a
    rich table on a terminal, plain lines (one per row, never wrapped) otherwise."""
    from gtbench.results.leaderboard import board_cells, rank_cells

    title, headers, rows, bold = board_cells(board)
    print_table(title, headers, rows, bold)
    table = rank_cells(ranks) if ranks is not None else None
    if table is not None:
        print_table(*table)


def print_table(
    title: str, headers: list[str], rows: list[list[str]], bold: list[bool] | None = None
) -> None:
    """A rich table on a terminal; plain lines (one per row, never wrapped) in logs."""
    from gtbench.results.leaderboard import plain_lines

    if not interactive():
        for line in plain_lines(title, headers, rows):
            click.echo(line)
        return
    from rich.table import Table

    table = Table(title=title)
    for column in headers:
        table.add_column(column, overflow="fold")
    for cells, strong in zip(rows, bold or [False] * len(rows), strict=True):
        table.add_row(*cells, style="bold" if strong else None)
    out.print(table)


def interactive() -> bool:
    """Rich output (progress bars, tables) only when both streams are terminals."""
    return sys.stdout.isatty() and sys.stderr.isatty()


def _print_missing(results: str, runs: Any) -> None:
    from gtbench.results.records import PLAN_JSON

    lines = []
    if not runs.empty:
        for _, row in runs[runs["status"] != "ok"].iterrows():
            lines.append(
                f"{row['status']}: {row['source']} → {row['dataset']} · {row['method']} "
                f"· {row['shots']}-shot · seed {row['seed']}: {row['error']}"
            )
    plan_file = Path(results) / PLAN_JSON
    if plan_file.exists():
        try:
            plan = json.loads(plan_file.read_text())
        except json.JSONDecodeError:
            plan = {}
        have = set(runs["run_id"]) if not runs.empty else set()
        for cell in plan.get("cells", []):
            if cell["run_id"] not in have:
                lines.append(
                    f"missing: {cell['label']}: not run yet (rerun `gtbench run` to resume)"
                )
        for skip in plan.get("skipped", []):
            lines.append(
                f"skipped: {skip['source']} → {skip['dataset']} · {skip['method']}: "
                f"{skip['reason']}"
            )
    for line in lines:
        out.print(line, highlight=False)


@main.command()
@click.argument("run_id")
@click.option("--results", default=DEFAULT_RESULTS, show_default=True)
def show(run_id: str, results: str) -> None:
    """Print one run's record and where its files are (RUN_ID may be a unique prefix)."""
    from gtbench.results.records import RECORD, find_run, read_record, run_dir

    full = find_run(results, run_id)
    folder = run_dir(results, full)
    record = read_record(folder / RECORD)
    out.print_json(json.dumps(record, default=str))
    out.print(f"record:  {folder / RECORD}", highlight=False)
    for key, label in (("samples", "samples"), ("traceback", "traceback")):
        if record.get(key):
            out.print(f"{label}: {folder / Path(record[key]).name}", highlight=False)
    if record.get("weights"):
        out.print(f"weights: {folder / record['weights']['file']}", highlight=False)


@main.command()
@click.argument("method_a")
@click.argument("method_b")
@click.option("--dataset", default=None, help="only this target dataset")
@click.option("--budget", default=None, help="only this named budget (adapted, long)")
@click.option("--results", default=DEFAULT_RESULTS, help="results folder")
@BESIDE_OPTION
def compare(
    method_a: str,
    method_b: str,
    dataset: str | None,
    budget: str | None,
    results: str,
    beside: tuple[str, ...],
) -> None:
    """Compare two methods seed by seed on every target (and budget) both ran: Δ = B − A
    per seed, its mean with the paired t-test's 95 % CI, its p and the verdict."""
    from gtbench.results.leaderboard import compare_command_lines

    for line in compare_command_lines(results, method_a, method_b, dataset, beside, budget):
        click.echo(line)


@main.command()
@click.option("--results", default=DEFAULT_RESULTS, help="results folder")
@click.option(
    "--reference", default=DEFAULT_REFERENCE, help="method the paired statistics compare with"
)
@click.option("--out", default=None, help="output file  [default: RESULTS/report.html]")
@click.option(
    "--memorised/--no-memorised",
    default=True,
    help="draw samples from the kept generators to show the most memorised ones",
)
@BESIDE_OPTION
def report(
    results: str, reference: str, out: str | None, memorised: bool, beside: tuple[str, ...]
) -> None:
    """Write a self-contained HTML report (tables, plots and images embedded)."""
    from gtbench.results.report import write_report

    path, notes = write_report(
        results, reference=reference, out=out, memorised=memorised, beside=beside
    )
    for note in notes:
        click.echo(f"note: {note}", err=True)
    click.echo(f"report: {path}")


if __name__ == "__main__":
    main()
