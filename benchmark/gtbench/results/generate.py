"""Using an adapted generator after the sweep: rebuild it from its run folder and draw
images from it, from Python (:func:`load_generator`) or ``gtbench generate``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click
import torch

from gtbench.errors import GtbenchError, UsageError
from gtbench.files.assets import sha256_file
from gtbench.plan.cells import make_plugin
from gtbench.plugin.networks import Generator
from gtbench.results.records import RECORD, find_run, read_record, run_dir


def _checked_weights(folder: Path, record: dict[str, Any]) -> Path:
    if record["status"] != "ok":
        raise GtbenchError(
            f"run {record['run_id']} has status {record['status']}: no generator to load"
        )
    weights = record.get("weights")
    if not weights:
        raise GtbenchError(
            f"run {record['run_id']} kept no weights (it ran with --no-keep-weights); "
            "rerun it with `gtbench run ... --force --keep-weights`"
        )
    path = folder / weights["file"]
    if not path.is_file():
        raise GtbenchError(f"weights file {path} of run {record['run_id']} is missing")
    digest = sha256_file(path)
    if digest != weights["sha256"]:
        raise GtbenchError(
            f"weights file {path} does not match its record (sha256 {digest[:12]}…, "
            f"recorded {weights['sha256'][:12]}…): refusing to load a changed file"
        )
    return path


def load_generator(
    run_id: str, results_dir: str | Path = "results", device: str | torch.device = "cpu"
) -> Generator:
    """The adapted generator (EMA weights) of a finished run, as a ``torch.nn.Module``.

    ``run_id`` may be a unique prefix. The module is rebuilt from the source plugin and
    the method's structural change, then the kept safetensors weights are loaded (after
    checking their sha256 against the record). It is in eval mode; call
    ``generator(generator.sample_latent(n))`` for images in [-1, 1]."""
    from safetensors.torch import load_file

    full = find_run(results_dir, run_id)
    folder = run_dir(results_dir, full)
    record = read_record(folder / RECORD)
    path = _checked_weights(folder, record)
    source = make_plugin("source", record["source"])
    method = make_plugin("method", record["method"])
    with torch.random.fork_rng():
        generator = source.load(pretrained=False).generator
    generator = method.prepare_generator(generator)
    state = load_file(str(path))
    missing, unexpected = generator.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise GtbenchError(
            f"weights of run {full} do not fit the rebuilt generator "
            f"(missing {list(missing)[:3]}, unexpected {list(unexpected)[:3]}); "
            "was the plugin changed since the run?"
        )
    return generator.to(device).eval()


def best_run(results_dir: str | Path, dataset: str, shots: int | None = None) -> tuple[str, str]:
    """The run of the first seed of the leaderboard row with the best mean FID for
    ``dataset`` — or the best mean KID where FID is not valid (too few evaluation images
    for the feature dimension: the leaderboard ranks such targets by KID, column
    ``ranked_by``); rows of a real metric are preferred to those of the ``debug``
    extractor. Returns (run_id, a sentence saying which row was chosen and by what)."""
    from gtbench.results.leaderboard import leaderboard, run_rows

    runs = run_rows(results_dir)
    board = leaderboard(runs)
    if board.empty:
        raise GtbenchError(f"no finished runs in {results_dir}")
    rows = board[board["dataset"] == dataset]
    if shots is not None:
        rows = rows[rows["shots"] == shots]
    if "is_metric" in rows and rows["is_metric"].astype(bool).any():
        rows = rows[rows["is_metric"].astype(bool)]
    by_kid = "ranked_by" in rows and bool((rows["ranked_by"] == "kid").any())
    metric, label = ("kid_mean", "KID") if by_kid else ("fid_mean", "FID")
    rows = rows.dropna(subset=[metric])
    if rows.empty:
        known = ", ".join(sorted(set(board["dataset"])))
        raise GtbenchError(f"no leaderboard row for dataset {dataset!r} (have: {known})")
    row = rows.sort_values(metric, kind="stable").iloc[0]
    key = ["source", "method", "dataset", "shots", "extractor", "protocol"]
    match = runs[(runs["status"] == "ok")]
    for column in key:
        match = match[match[column] == row[column]]
    chosen = match.sort_values("seed").iloc[0]
    why = " (FID not valid on this target: ranked by KID)" if by_kid else ""
    sentence = (
        f"best on {dataset}: {row['method']} from {row['source']} ({row['shots']}-shot, "
        f"{label} {row[metric]:.3g} over {row['n_seeds']} seeds{why}); run {chosen['run_id']} "
        f"(seed {chosen['seed']})"
    )
    return str(chosen["run_id"]), sentence


@click.command("generate")
@click.argument("run_id", required=False)
@click.option("--results", default="results", show_default=True)
@click.option("--n", "count", default=16, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=int,
    help="seed of every random draw: latents and per-layer noise (StyleGAN2)",
)
@click.option("--truncation", default=None, type=float, help="truncation (sources that support it)")
@click.option("--out", "out_dir", default=None, help="output folder (default: RUN/generated)")
@click.option("--grid", is_flag=True, help="also write one grid image")
@click.option("--best", is_flag=True, help="pick the best run of a leaderboard row")
@click.option("--dataset", default=None, help="with --best: the target dataset")
@click.option("--shots", default=None, type=int, help="with --best: the shot count")
def generate_command(
    run_id: str | None,
    results: str,
    count: int,
    seed: int,
    truncation: float | None,
    out_dir: str | None,
    grid: bool,
    best: bool,
    dataset: str | None,
    shots: int | None,
) -> None:
    """Write N PNG images from a run's adapted generator (deterministic for a seed)."""
    from rich.console import Console
    from rich.progress import Progress

    from gtbench.measure.evaluation import generate_images
    from gtbench.train.device import default_device

    console = Console(stderr=True)
    if best:
        if run_id is not None or dataset is None:
            raise UsageError("use either RUN_ID or --best --dataset NAME")
        run_id, sentence = best_run(results, dataset, shots)
        console.print(sentence, highlight=False)
    elif run_id is None:
        raise UsageError("give a RUN_ID (or --best --dataset NAME)")
    device = default_device()
    generator = load_generator(run_id, results, device)
    full = find_run(results, run_id)
    target = Path(out_dir) if out_dir else run_dir(results, full) / "generated"
    target.mkdir(parents=True, exist_ok=True)
    batch = 64
    written = []
    with Progress(console=console) as progress:
        task = progress.add_task("generating", total=count)
        images = generate_images(
            generator,
            count,
            seed=seed,
            device=device,
            batch_size=batch,
            truncation=truncation,
            progress=lambda stage, done, total: progress.update(task, completed=done),
        )
        for index, image in enumerate(images):
            path = target / f"{full}-seed{seed}-{index:05d}.png"
            _write_png(image, path)
            written.append(path)
        progress.update(task, completed=count)
    if grid:
        from gtbench.plugin.images import save_grid

        columns = max(1, int(math.sqrt(count)))
        save_grid(images, target / f"{full}-seed{seed}-grid.png", columns)
    console.print(f"wrote {len(written)} images to {target}", highlight=False)


def _write_png(image: torch.Tensor, path: Path) -> None:
    from PIL import Image

    array = image.permute(1, 2, 0).cpu().numpy()
    Image.fromarray(array[..., 0] if array.shape[2] == 1 else array).save(path, format="PNG")
