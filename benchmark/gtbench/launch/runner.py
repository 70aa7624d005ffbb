"""Running one cell: build its plugins, adapt, evaluate, keep the generator, write the
record. Every outcome ends in exactly one record (``ok``, ``failed`` or ``diverged``),
except an interruption (Ctrl-C, SIGTERM), which leaves no record so the cell reruns."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import os
import shutil
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gtbench import __version__
from gtbench.errors import DivergedError, GtbenchError
from gtbench.files.assets import cache_dir
from gtbench.launch.resources import PeakMemory
from gtbench.measure.eval_settings import EvalSettings
from gtbench.plan.cells import Cell, make_plugin
from gtbench.plan.identity import matched_content_hash
from gtbench.plugin.base import Dataset, DatasetInfo, Source
from gtbench.plugin.images import match_format, save_grid, to_unit_range
from gtbench.plugin.networks import Generator
from gtbench.results import provenance
from gtbench.results.records import (
    RECORD,
    RUNNING,
    TRACEBACK,
    Record,
    atomic_write_bytes,
    atomic_write_text,
    has_ok_record,
    new_record,
    run_dir,
    write_record,
)
from gtbench.results.timestamps import utc_now
from gtbench.train.device import default_device
from gtbench.train.method import Method
from gtbench.train.trainer import TrainConfig, build_context, curve_steps, recompute_batchnorm_stats

Reporter = Callable[[str, int, int], None]
WEIGHTS = "generator.safetensors"
SAMPLES = "samples.png"
TRAIN_LOG = "train_log.csv"  # losses, D outputs, R1, method terms per check_every
STAGING = ".rerun"  # a rerun of an ok cell writes here; files move in once it succeeded


class MatchedTarget(Dataset):
    """A target seen at the source's resolution and channel count.

    Training shots and evaluation images go through the same conversion (antialiased
    bicubic resize; grey↔colour by repetition or mean), so FID compares like with like;
    the content hash covers the conversion, so cached statistics never mix sizes.

    With ``evaluate_on="validation"`` (tuning trials) the dataset's validation split
    stands in for its evaluation set, which the trial then never sees."""

    name = "matched"

    def __init__(
        self, dataset: Dataset, resolution: int, channels: int, evaluate_on: str = "evaluation"
    ) -> None:
        super().__init__()
        self.dataset, self.resolution, self.channels = dataset, resolution, channels
        self.evaluate_on = evaluate_on
        self._cache: dict[str, torch.Tensor] = {}

    @property
    def info(self) -> DatasetInfo:
        inner = self.dataset.info
        return DatasetInfo(
            self.resolution, self.channels, inner.size, inner.shot_pool, inner.validation
        )

    def _convert(self, images: torch.Tensor) -> torch.Tensor:
        return match_format(images, self.channels, self.resolution)

    def images(self) -> torch.Tensor:
        if "all" not in self._cache:
            self._cache["all"] = self._convert(self.dataset.images())
        return self._cache["all"]

    def evaluation_images(self) -> torch.Tensor:
        if self.evaluate_on == "validation":
            return self.validation_images()
        if "eval" not in self._cache:
            self._cache["eval"] = self._convert(self.dataset.evaluation_images())
        return self._cache["eval"]

    def validation_images(self) -> torch.Tensor:
        if "validation" not in self._cache:
            images = self.dataset.validation_images()
            if images is None:
                raise GtbenchError(f"dataset {self.dataset.name!r} has no validation split")
            self._cache["validation"] = self._convert(images)
        return self._cache["validation"]

    def split(self, shots: int, seed: int):  # noqa: ANN201 - FewShotSplit
        return self.dataset.split(shots, seed)

    def allows_overlap(self) -> bool:
        return self.dataset.allows_overlap()

    def content_hash(self) -> str:
        return matched_content_hash(self.dataset.content_hash(), self.resolution, self.channels)


@dataclass
class CellOutcome:
    run_id: str
    status: str
    error: str | None = None


def _save_weights(generator: Generator, path: Path) -> str:
    from safetensors.torch import save

    state = {k: v.detach().cpu().contiguous() for k, v in generator.state_dict().items()}
    data = save(state)
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def run_cell(cell: Cell, results_dir: str | Path, report: Reporter | None = None) -> CellOutcome:
    """Run one cell and write its record; never raises except on interruption.

    A cell that already has an ``ok`` record (``--force``) runs in a staging folder and
    its files replace the old ones only once it succeeded; a failure leaves the old
    record, samples and weights in place and is written beside them
    (``record.failed.json``, ``traceback.txt``)."""
    started, cpu_started = time.perf_counter(), time.process_time()
    results_dir = Path(results_dir)
    folder = run_dir(results_dir, cell["run_id"])
    shutil.rmtree(folder / STAGING, ignore_errors=True)  # from an interrupted rerun
    work = folder / STAGING if has_ok_record(results_dir, cell["run_id"]) else folder
    marker = {"host": socket.gethostname(), "pid": os.getpid(), "started_at": time.time()}
    atomic_write_text(folder / RUNNING, json.dumps(marker) + "\n")
    record = new_record(cell)
    record.update(started_at=utc_now(), gtbench_version=__version__)
    memory = PeakMemory(cuda=default_device().type == "cuda").start()
    try:
        record["plugins"] = provenance.plugin_provenance(cell)
        record["environment"] = {
            **provenance.environment(),
            # CPU training sums depend on the thread count (evaluation does not)
            "torch_threads": torch.get_num_threads(),
            # CPU model and instruction set used (GPU name and driver on a GPU): other
            # hardware gives other last digits (docs/results.md)
            "hardware": provenance.hardware(default_device()),
        }
        _adapt_and_evaluate(cell, work, record, report)
        record["status"] = "ok"
    except DivergedError as error:
        record["status"], record["error"] = "diverged", str(error)
    except Exception as error:  # noqa: BLE001 - a failing cell must not stop the sweep
        record["status"] = "failed"
        record["error"] = f"{type(error).__name__}: {error}".splitlines()[0][:500]
        atomic_write_text(folder / TRACEBACK, traceback.format_exc())
        record["traceback"] = TRACEBACK
    record["memory"] = memory.stop()
    record["finished_at"] = utc_now()
    record["timings"]["total_s"] = round(time.perf_counter() - started, 3)
    # CPU seconds of the process's threads: on a machine shared with other work, total_s
    # grows with the load and cpu_s much less (cpu_s / total_s: the share it got)
    record["timings"]["cpu_s"] = round(time.process_time() - cpu_started, 3)
    if record["status"] == "ok":
        _move_in(work, folder)
        (folder / TRACEBACK).unlink(missing_ok=True)
    written = write_record(results_dir, record)
    shutil.rmtree(folder / STAGING, ignore_errors=True)
    (folder / RUNNING).unlink(missing_ok=True)
    error = record["error"]
    if written.name != RECORD:
        error = f"{error} (the previous ok record is kept; this attempt: {written.name})"
    return CellOutcome(cell["run_id"], record["status"], error)


def _move_in(staged: Path, folder: Path) -> None:
    """Move a successful rerun's files over the old ones (the record is written last)."""
    if staged == folder or not staged.is_dir():
        return
    for path in staged.iterdir():
        target = folder / path.name
        if path.is_dir() and target.is_dir():
            shutil.rmtree(target)
        os.replace(path, target)


class _Curve:
    """FID/KID, memorisation, diversity and adaptation of the EMA at evenly spaced steps
    (``--curve N``), each from a cheaper evaluation of ``curve_n_samples`` images on a copy
    whose BatchNorm statistics are recomputed, as the final one's are. Never the ranked
    number."""

    METRICS = (
        "fid",
        "kid_mean",
        "mem_closer_to_train",
        "intra_cluster_diversity",
        "shot_coverage",
        "adaptation",
    )

    NOTE = (
        "fid_best_over_training (kid_best_over_training where FID is not valid for the "
        "curve's sample size; curve_best_by says which): selection on the evaluation set "
        "(what most papers do); not the ranked number, which is the final fixed-budget one"
    )

    def __init__(self, cell: Cell, target, shots, extractor, settings, device, domain) -> None:  # noqa: ANN001
        spec = cell.get("curve") or {}
        self.domain = domain
        self.points = int(spec.get("points", 0))
        self.n_samples = int(spec.get("n_samples", 250))
        self.seed, self.device = cell["seed"], device
        self.target, self.shots, self.extractor = target, shots, extractor
        self.settings = dataclasses.replace(
            settings,
            n_samples=self.n_samples,
            kid_subset_size=min(settings.kid_subset_size, self.n_samples),
        )
        self.rows: list[dict[str, Any]] = []
        self.seconds = 0.0

    def evaluate(self, step: int, g_ema: Generator) -> None:
        from gtbench.measure.evaluation import evaluate

        clock = time.perf_counter()
        snapshot = copy.deepcopy(g_ema)
        recompute_batchnorm_stats(snapshot, seed=self.seed, device=self.device)
        result = evaluate(
            snapshot,
            self.target,
            self.shots,
            self.extractor,
            self.settings,
            seed=self.seed,
            device=self.device,
            cache_dir=cache_dir(),
            domain=self.domain,
        )
        self.rows.append(
            {
                "step": step,
                **{name: result.metrics.get(name, math.nan) for name in self.METRICS},
                "fid_valid": bool(result.metrics["fid_valid"]),
                "n_samples": self.n_samples,
            }
        )
        self.seconds += time.perf_counter() - clock

    def write(self, record: Record) -> None:
        if not self.rows:
            return
        # the best point by FID only where FID is valid at every point (both sides above
        # the feature dimension); by KID otherwise, and the record says which
        by = "fid" if all(row["fid_valid"] for row in self.rows) else "kid"
        column = "fid" if by == "fid" else "kid_mean"
        best = min(self.rows, key=lambda row: row[column])
        record["curve"] = self.rows
        record["curve_note"] = self.NOTE
        record["curve_best_by"] = by
        record["metrics"][f"{by}_best_over_training"] = best[column]
        record["metrics"][f"{by}_best_step"] = best["step"]
        record["timings"]["curve_s"] = round(self.seconds, 3)


def _domain_classifier(cell, source, target, extractor, device, report):  # noqa: ANN001, ANN202
    """The source-vs-target classifier behind the adaptation measure (its source side
    cached by identity); torch's global RNG is left as it was."""
    from gtbench.measure.adaptation import domain_classifier, source_domain  # torch-fidelity

    with torch.random.fork_rng(devices=[]):
        identity, images = source_domain(source, target, device=device)
        return domain_classifier(
            identity,
            images,
            target,
            extractor,
            device=device,
            cache_dir=cache_dir(),
            progress=report,
        )


def _adapt_and_evaluate(
    cell: Cell,
    folder: Path,
    record: Record,
    report: Reporter | None,
) -> None:
    from gtbench.measure.evaluation import evaluate, generate_images  # torch-fidelity: only to run

    setup_started = time.perf_counter()
    device = default_device()
    record["device"] = str(device)
    source: Source = make_plugin("source", cell["source"])
    method: Method = make_plugin("method", cell["method"])
    dataset: Dataset = make_plugin("dataset", cell["dataset"])
    extractor = make_plugin("extractor", cell["eval"]["extractor"])
    info = source.info
    target = MatchedTarget(dataset, info.resolution, info.channels, cell.get("split", "evaluation"))
    apart_from = cell.get("shots_apart_from_seeds")
    if apart_from is not None:  # a tuning trial: shots disjoint from every evaluation seed's
        try:
            split = dataset.split_apart(cell["shots"], cell["seed"], apart_from)
        except ValueError as error:
            raise GtbenchError(str(error)) from None
    else:
        split = target.split(cell["shots"], cell["seed"])
    shots = target.images()[list(split.train)]
    if cell.get("dataset_content") and target.content_hash() != cell["dataset_content"]:
        raise GtbenchError(
            f"dataset {cell['dataset']['name']!r} changed since this sweep was planned "
            "(content hash); run `gtbench run` again to plan it anew"
        )
    record["train_indices"] = list(split.train)
    # by content, so that a trial's shots can be checked against every evaluated seed's
    record["shot_sha256"] = dataset.shot_sha256s(split)
    # by content at the matched resolution: the images the generator trains on and is judged by
    record["shot_eval_overlap"] = target.shot_eval_overlap(split)
    if record["shot_eval_overlap"] and not target.allows_overlap():
        raise GtbenchError(
            f"dataset {dataset.name!r}: {record['shot_eval_overlap']} of the {len(shots)} shots "
            "are also evaluation images (same content); remove them or pass allow_overlap=true"
        )

    start = time.perf_counter()
    extractor.check_available()
    domain = _domain_classifier(cell, source, target, extractor, device, report)
    record["timings"]["adaptation_s"] = round(time.perf_counter() - start, 3)

    torch.manual_seed(cell["seed"])
    networks = source.load(pretrained=method.start_from_pretrained)
    if networks.notes:
        record["source_notes"] = dict(networks.notes)
    discriminator = networks.discriminator
    if discriminator is None and method.trains():
        discriminator = source.new_discriminator()
        record["discriminator"] = (
            "fresh (source has none)" if method.start_from_pretrained else "fresh"
        )
    else:
        record["discriminator"] = "pretrained" if method.start_from_pretrained else "fresh"
    config = TrainConfig(**cell["train"]) if cell["train"] else TrainConfig(iters=0)
    ctx = build_context(
        networks.generator,
        discriminator,
        to_unit_range(shots),
        config,
        cell["seed"],
        device,
        from_pretrained=method.start_from_pretrained,
    )
    if method.trains():
        ctx.log_path = folder / TRAIN_LOG
    if report is not None:
        ctx.progress = lambda done, total, stats: report("train", done, total)
    settings_fields = EvalSettings.__dataclass_fields__
    settings = EvalSettings(**{k: v for k, v in cell["eval"].items() if k in settings_fields})
    curve = _Curve(cell, target, shots, extractor, settings, device, domain)
    if method.trains() and curve.points > 0:
        ctx.curve_steps = curve_steps(config.iters, curve.points)
        ctx.on_curve = curve.evaluate
    timings = record["timings"]
    start = time.perf_counter()
    # plugins, shots, source networks, context (the adaptation classifier apart)
    timings["setup_s"] = round(start - setup_started - timings.get("adaptation_s", 0.0), 3)
    method.fit(ctx)
    timings["train_s"] = round(time.perf_counter() - start - curve.seconds, 3)
    # the trainer's own parts (none for a method with its own loop): train_setup_s (a
    # Fisher, a miner...), train_<phase>_s, train_phase_hooks_s (a probe's importance pass)
    for part, seconds in ctx.seconds.items():
        timings[f"train_{part}_s"] = round(seconds, 3)
    # counted by the trainer, never by the method: equal budgets are checked, not assumed
    record.update(
        g_steps=ctx.g_steps,
        d_steps=ctx.d_steps,
        warmup_steps=ctx.warmup_steps,
        images_seen=ctx.images_seen,
    )
    if method.unequal_budget:
        record["unequal_budget"] = method.unequal_budget
    if ctx.log_path is not None and ctx.log_path.exists():
        record["train_log"] = TRAIN_LOG
    record["method_metrics"] = {**method.extra_metrics(ctx), **ctx.trainer_metrics}
    generator = ctx.g_ema if ctx.g_ema is not None else ctx.generator
    if method.trains():
        # the EMA's BatchNorm statistics, estimated for the EMA weights themselves
        start = time.perf_counter()
        layers = recompute_batchnorm_stats(generator, seed=cell["seed"], device=device)
        record["ema_batchnorm"] = "recomputed" if layers else "none"
        timings["batchnorm_s"] = round(time.perf_counter() - start, 3)

    start = time.perf_counter()
    extractor.check_available()
    evaluation = evaluate(
        generator,
        target,
        shots,
        extractor,
        settings,
        seed=cell["seed"],
        device=device,
        cache_dir=cache_dir(),
        progress=report,
        domain=domain,
    )
    record["timings"]["eval_s"] = round(time.perf_counter() - start, 3)
    record["metrics"] = evaluation.metrics
    curve.write(record)
    record["eval"].update({k: v for k, v in evaluation.settings.items() if k != "extractor"})

    start = time.perf_counter()
    samples = generate_images(generator, 64, seed=cell["seed"] + 10_000, device=device)
    save_grid(samples, folder / SAMPLES)
    record["samples"] = SAMPLES
    if cell.get("keep_weights", True):
        record["weights"] = {
            "file": WEIGHTS,
            "sha256": _save_weights(generator, folder / WEIGHTS),
            "format": "safetensors",
            "resolution": info.resolution,
            "channels": info.channels,
            "latent_shape": list(info.latent_shape),
        }
    else:
        record["weights"] = None
    timings["save_s"] = round(time.perf_counter() - start, 3)  # sample grid and weights
