"""Pretrain a source's architecture from scratch on a whole dataset.

Some built-in sources are pretrained by gtbench itself, because no pretrained network for
their domain can be downloaded offline. This module is their committed, reproducible
recipe: it builds the source's networks freshly initialised (``source.load(pretrained=
False)``), trains them with the shared trainer on every image of a dataset, and writes

- ``OUT`` (safetensors): the generator (its EMA, the network one samples from) under
  ``generator.*`` and the discriminator under ``discriminator.*``;
- ``OUT`` with suffix ``.json``: the provenance a reader needs to trust or redo it — the
  dataset's content hash, seed, iterations, batch size, full trainer config, gtbench and
  torch versions, wall time and the checkpoint's sha256;
- ``OUT`` with suffix ``.png``: a grid of samples of the generator.

It knows no particular model: any source whose ``load`` honours ``pretrained=False`` and
any dataset work. :func:`load_pretrained` reads such a checkpoint back with its hash
checked, for the source plugins that ship one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import torch

from gtbench.errors import MissingAssetError, UsageError
from gtbench.files.assets import sha256_file
from gtbench.files.atomic import atomic_write_bytes, atomic_write_text
from gtbench.plugin.base import Dataset, Source
from gtbench.plugin.images import match_format, save_grid, to_unit_range
from gtbench.plugin.spec import PluginSpec, parse_spec
from gtbench.train.method import Method
from gtbench.train.trainer import TrainConfig, build_context

__all__ = [
    "PRETRAIN_DEFAULTS",
    "PretrainResult",
    "load_pretrained",
    "pretrain",
    "pretrain_command",
]

FORMAT = "gtbench-pretrain/1"

# Classic from-scratch GAN settings: Adam(0.5, 0.999) as in DCGAN, a weak lazy R1 for
# stability at low resolution, and a longer EMA than fine-tuning uses (thousands of steps).
PRETRAIN_DEFAULTS: dict[str, Any] = {
    "beta1": 0.5,
    "beta2": 0.999,
    "r1_gamma": 0.1,
    "ema_kimg": 10.0,
}


@dataclass(frozen=True)
class PretrainResult:
    """Where :func:`pretrain` wrote its files, and what it recorded."""

    checkpoint: Path
    sidecar: Path
    grid: Path
    sha256: str
    wall_s: float
    record: dict[str, Any]


class _FromScratch(Method):
    """The shared trainer's default hooks: plain GAN training of every weight."""

    name = "pretrain"


def _resolve(kind: str, given: Any) -> Any:
    from gtbench.plugin import registry

    if isinstance(given, Source | Dataset):
        return given
    if isinstance(given, str | PluginSpec):
        return registry.registry(kind).create(given)
    raise TypeError(f"expected a {kind} name, spec or instance, got {type(given).__name__}")


def _spec_text(plugin: Source | Dataset) -> str:
    """``name:key=value`` with only the parameters that differ from their defaults."""
    changed = {
        key: value
        for key, value in plugin.params.items()
        if key not in plugin.parameters or plugin.parameters[key].default != value
    }
    return str(PluginSpec(plugin.name, changed))


def to_training_images(images: torch.Tensor, resolution: int, channels: int) -> torch.Tensor:
    """uint8 N×C×H×W → float in [-1, 1] at the source's resolution and channel count, by
    the same conversion targets get for adaptation and evaluation."""
    return to_unit_range(match_format(images, channels, resolution)).contiguous()


def _samples(generator: Any, n: int, seed: int) -> torch.Tensor:
    """``n`` samples as uint8, deterministic for ``seed`` (the evaluation's sampler)."""
    from gtbench.measure.evaluation import generate_images

    return generate_images(generator, n, seed=seed, device=_device_of(generator))


def _device_of(module: torch.nn.Module) -> torch.device:
    return next(module.parameters()).device


def pretrain(
    source: str | PluginSpec | Source,
    dataset: str | PluginSpec | Dataset,
    *,
    iters: int,
    out_path: str | os.PathLike[str],
    batch_size: int = 64,
    seed: int = 0,
    config: Mapping[str, Any] | None = None,
    device: str | torch.device = "cpu",
    log: Callable[[str], None] | None = print,
    log_every: int = 50,
    grid_every: int = 0,
    grid_size: int = 64,
) -> PretrainResult:
    """Train ``source``'s architecture from scratch on all of ``dataset``; write the files.

    ``config`` overrides :data:`PRETRAIN_DEFAULTS` and any other :class:`TrainConfig`
    field. ``grid_every`` > 0 refreshes the sample grid during training, so a long run can
    be watched. Returns where everything went and the sidecar's content."""
    source_obj: Source = _resolve("source", source)
    dataset_obj: Dataset = _resolve("dataset", dataset)
    overrides = {**PRETRAIN_DEFAULTS, **dict(config or {})}
    unknown = sorted(set(overrides) - set(TrainConfig.fields()))
    if unknown:
        raise UsageError(
            f"unknown trainer setting {unknown[0]!r}; known: {', '.join(TrainConfig.fields())}"
        )
    overrides.update(iters=int(iters), batch_size=int(batch_size))
    train_config = TrainConfig(**overrides)
    out = Path(out_path)
    sidecar, grid = out.with_suffix(".json"), out.with_suffix(".png")
    say = log or (lambda _message: None)

    info = source_obj.info
    with torch.random.fork_rng():  # seeds sources that draw from the global RNG
        torch.manual_seed(seed)
        networks = source_obj.load(pretrained=False)
        discriminator = networks.discriminator
        if discriminator is None:
            discriminator = source_obj.new_discriminator()
    raw = dataset_obj.images()
    data_hash = dataset_obj.content_hash()
    real = to_training_images(raw, info.resolution, info.channels)
    say(
        f"pretraining {_spec_text(source_obj)} on {_spec_text(dataset_obj)}: "
        f"{len(raw)} images {tuple(raw.shape[1:])} -> {tuple(real.shape[1:])}, "
        f"{train_config.iters} iters at batch {train_config.batch_size}, seed {seed}"
    )

    ctx = build_context(
        networks.generator,
        discriminator,
        real,
        train_config,
        seed,
        torch.device(device),
        from_pretrained=False,
    )
    started = time.perf_counter()

    def progress(step: int, total: int, stats: dict[str, float]) -> None:
        if step % log_every == 0 or step == total:
            elapsed = time.perf_counter() - started
            eta = elapsed / step * (total - step)
            losses = " ".join(f"{k}={v:.3f}" for k, v in stats.items())
            say(f"step {step}/{total} {losses} {elapsed:.0f}s elapsed, eta {eta:.0f}s")
        if grid_every > 0 and step % grid_every == 0 and ctx.g_ema is not None:
            save_grid(_samples(ctx.g_ema, grid_size, seed), grid)

    ctx.progress = progress
    _FromScratch().fit(ctx)
    wall = time.perf_counter() - started
    g_final = ctx.g_ema if ctx.g_ema is not None else ctx.generator

    tensors = {f"generator.{k}": v for k, v in g_final.state_dict().items()}
    tensors.update({f"discriminator.{k}": v for k, v in discriminator.state_dict().items()})
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    metadata = {
        "format": FORMAT,
        "source": _spec_text(source_obj),
        "dataset": _spec_text(dataset_obj),
        "dataset_sha256": data_hash,
        "seed": str(seed),
        "iters": str(train_config.iters),
    }
    from safetensors.torch import save

    atomic_write_bytes(out, save(tensors, metadata=metadata))
    checkpoint_hash = sha256_file(out)
    save_grid(_samples(g_final, grid_size, seed), grid)

    from gtbench import __version__

    record = {
        "format": FORMAT,
        "checkpoint": out.name,
        "checkpoint_sha256": checkpoint_hash,
        "checkpoint_bytes": out.stat().st_size,
        "generator": "EMA of the generator (the network to sample from and to adapt)",
        "source": _spec_text(source_obj),
        "source_params": dict(source_obj.params),
        "source_info": dataclasses.asdict(info),
        "dataset": _spec_text(dataset_obj),
        "dataset_params": dict(dataset_obj.params),
        "dataset_sha256": data_hash,
        "dataset_images": int(raw.shape[0]),
        "dataset_shape": list(raw.shape[1:]),
        "training_shape": list(real.shape[1:]),
        "seed": seed,
        "iters": train_config.iters,
        "batch_size": train_config.batch_size,
        "trainer_config": dataclasses.asdict(train_config),
        "final_losses": ctx.state.get("final_losses", {}),
        "wall_s": round(wall, 1),
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "gtbench_version": __version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "command": (
            f"gtbench pretrain --source {_spec_text(source_obj)} --dataset "
            f"{_spec_text(dataset_obj)} --iters {train_config.iters} --batch-size "
            f"{train_config.batch_size} --seed {seed} --out {os.fspath(out_path)}"
            + "".join(
                f" --set {k}={v}"
                for k, v in sorted(dict(config or {}).items())
                if k not in {"iters", "batch_size"}
            )
        ),
    }
    text = json.dumps(record, indent=2, sort_keys=False) + "\n"
    atomic_write_text(sidecar, text)
    say(
        f"wrote {out} ({record['checkpoint_bytes']} bytes, sha256 {checkpoint_hash}) in {wall:.0f}s"
    )
    return PretrainResult(out, sidecar, grid, checkpoint_hash, wall, record)


def load_pretrained(
    path: str | os.PathLike[str], sha256: str | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, str]]:
    """Read a checkpoint written by :func:`pretrain`: (generator state, discriminator
    state, metadata). With ``sha256``, the file must match it.

    Every failure (missing, wrong hash, not a safetensors file) is a
    :class:`MissingAssetError` whose one-line message says what to do."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    redo = "regenerate it with `gtbench pretrain` (see its .json sidecar) or restore it"
    if not path.is_file():
        raise MissingAssetError(f"pretrained checkpoint {path} does not exist; {redo}")
    if sha256 is not None:
        actual = sha256_file(path)
        if actual != sha256.lower():
            raise MissingAssetError(
                f"pretrained checkpoint {path} has sha256 {actual}, expected {sha256}: it is "
                f"corrupt or not the expected file; {redo}"
            )
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as error:
        raise MissingAssetError(
            f"pretrained checkpoint {path} is not a readable safetensors file ({error}); {redo}"
        ) from None
    if metadata.get("format") != FORMAT:
        raise MissingAssetError(
            f"{path} is not a gtbench pretrain checkpoint (format {metadata.get('format')!r}, "
            f"expected {FORMAT!r}); {redo}"
        )
    parts: dict[str, dict[str, torch.Tensor]] = {"generator": {}, "discriminator": {}}
    for key, tensor in tensors.items():
        part, _, name = key.partition(".")
        if part in parts:
            parts[part][name] = tensor
    return parts["generator"], parts["discriminator"], metadata


def _parse_settings(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> dict[str, Any]:
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    settings: dict[str, Any] = {}
    for item in values:
        key, eq, text = item.partition("=")
        key = key.strip()
        if not eq or key not in fields:
            raise click.BadParameter(
                f"{item!r}: expected KEY=VALUE with KEY one of {', '.join(fields)}"
            )
        default = getattr(TrainConfig(), key)
        try:
            settings[key] = text if isinstance(default, str) else type(default)(text.strip())
        except ValueError as error:
            raise click.BadParameter(f"{item!r}: {error}") from None
    return settings


@click.command("pretrain")
@click.option("--source", "source", required=True, help="Source whose architecture to train.")
@click.option("--dataset", "dataset", required=True, help="Dataset to train on (all images).")
@click.option("--iters", type=click.IntRange(min=1), required=True, help="Training steps.")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--out", "out", type=click.Path(dir_okay=False), required=True, help="Checkpoint path."
)
@click.option(
    "--set",
    "settings",
    multiple=True,
    callback=_parse_settings,
    help="Trainer setting KEY=VALUE (repeatable), e.g. --set lr_g=1e-4.",
)
@click.option("--device", default="cpu", show_default=True)
@click.option(
    "--grid-every", type=int, default=0, help="Refresh the sample grid every N steps (0: end)."
)
def pretrain_command(
    source: str,
    dataset: str,
    iters: int,
    batch_size: int,
    seed: int,
    out: str,
    settings: dict[str, Any],
    device: str,
    grid_every: int,
) -> None:
    """Pretrain a source's architecture from scratch on a dataset; write checkpoint,
    JSON provenance and a sample grid next to OUT."""
    result = pretrain(
        parse_spec(source),
        parse_spec(dataset),
        iters=iters,
        batch_size=batch_size,
        seed=seed,
        out_path=out,
        config=settings,
        device=device,
        log=lambda message: click.echo(message, err=True),
        grid_every=grid_every,
    )
    click.echo(f"{result.checkpoint} sha256 {result.sha256} ({result.wall_s:.0f}s)")
