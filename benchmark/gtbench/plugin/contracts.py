"""What a dataset and a source must hand to the harness, checked against their ``info``.

A plugin that breaks its contract would otherwise run to ``ok`` with wrong numbers (8×8
images resized to the 32 px its ``info`` claims, images on a 0..16 scale) or fail after training
with an error that names no plugin. The sweep calls these checks before anything trains
(:func:`gtbench.launch.sweep.run_sweep`); the registry-wide tests call the same ones, and
third-party authors may too (both are re-exported by :mod:`gtbench.api`). Each failure is
one :class:`~gtbench.errors.PluginError` line naming the plugin and its distribution.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from gtbench.errors import PluginError
from gtbench.plugin.base import Dataset, Plugin, Source
from gtbench.plugin.networks import Discriminator, Generator

__all__ = ["check_dataset", "check_source", "plugin_origin"]

# "In the 0..255 range" means on the 0..255 scale: the brightest pixel of a whole image
# set reaches at least this. Data on another scale stored as uint8 (0..1, 0..16 — also
# after an upscale that overshoots to 19 —, 0..100) stays below it; a real image set whose
# every pixel is darker than half the range is not a target either.
MIN_PEAK = 128
# generator outputs are images in [-1, 1], unclamped: a StyleGAN2 overshoots (a random one
# reaches ±7, with a mean |x| near 1.3), so only a mean |x| above this is refused (the
# sign of a 0..255 scale)
MAX_MEAN_ABS = 4.0


def plugin_origin(plugin: Plugin | type[Plugin]) -> str:
    """``dataset 'name' (distribution version, module:Class)`` for error messages."""
    from gtbench.plugin.registry import KINDS, registry

    cls = plugin if isinstance(plugin, type) else type(plugin)
    name = getattr(plugin, "name", "") or cls.__name__
    where = f"{cls.__module__}:{cls.__qualname__}"
    entry = registry(cls.kind).entries.get(name) if cls.kind in KINDS else None
    if entry is not None and (entry.loaded is cls or entry.target == where):
        version = f" {entry.version}" if entry.version else ""
        return f"{cls.kind} {name!r} ({entry.distribution}{version}, {entry.target})"
    return f"{cls.kind} {name!r} ({where})"


def _fail(plugin: Plugin, message: str) -> PluginError:
    return PluginError(f"{plugin_origin(plugin)}: {message}")


def _shape(tensor: torch.Tensor) -> str:
    return "×".join(str(n) for n in tensor.shape) or "a scalar"


def _check_images(dataset: Dataset, images: Any, method: str, count: int | None) -> None:
    info = dataset.info
    if not isinstance(images, torch.Tensor):
        raise _fail(dataset, f"{method} must return a torch.Tensor, got {type(images).__name__}")
    if images.dim() != 4:
        raise _fail(dataset, f"{method} must return N×C×H×W images, got shape {_shape(images)}")
    if images.dtype != torch.uint8:
        raise _fail(dataset, f"{method} must return uint8 images (0..255), got {images.dtype}")
    n, channels, height, width = images.shape
    if channels != info.channels:
        raise _fail(
            dataset, f"{method} gives {channels}-channel images, but info.channels is "
            f"{info.channels}"
        )  # fmt: skip
    if (height, width) != (info.resolution, info.resolution):
        raise _fail(
            dataset, f"{method} gives {height}×{width} images, but info.resolution is "
            f"{info.resolution}"
        )  # fmt: skip
    if count is not None and n != count:
        raise _fail(dataset, f"{method} gives {n} images, but info.size is {count}")
    if n == 0:
        raise _fail(dataset, f"{method} gives no images")
    peak, low = int(images.max()), int(images.min())
    if peak == low:
        raise _fail(dataset, f"{method}: every pixel of every image is {peak}")
    if peak < MIN_PEAK:
        raise _fail(
            dataset, f"{method} values only reach {peak} of 255 (the brightest pixel of an "
            f"image set on the 0..255 scale reaches at least {MIN_PEAK}); scale the images "
            "to 0..255"
        )  # fmt: skip


def check_dataset(dataset: Dataset) -> None:
    """Raise a one-line :class:`PluginError` unless ``images()`` and
    ``evaluation_images()`` are uint8 N×C×H×W at ``info.resolution`` and
    ``info.channels``, ``images()`` holds ``info.size`` images, both sets are on the
    0..255 scale (their brightest pixel reaches at least ``MIN_PEAK`` = 128: data on a
    0..1 or 0..16 scale stored as uint8 is refused) and not all one value, and the shot
    pool fits in the dataset."""
    info = dataset.info
    if info.resolution < 1 or info.channels < 1:
        raise _fail(dataset, f"info has resolution {info.resolution}, channels {info.channels}")
    if not 1 <= info.shot_pool <= info.size:
        raise _fail(dataset, f"info.shot_pool {info.shot_pool} is not within 1..{info.size}")
    _check_images(dataset, dataset.images(), "images()", info.size)
    _check_images(dataset, dataset.evaluation_images(), "evaluation_images()", None)


def check_source(source: Source, *, needs_discriminator: bool = True) -> None:
    """Raise a one-line :class:`PluginError` unless ``load()`` gives a
    :class:`~gtbench.plugin.networks.Generator` whose latents have ``info.latent_shape`` and
    whose images are finite, N×channels×resolution² and on a [-1, 1] scale, and a
    discriminator exactly when ``info.has_discriminator`` says so; a source without one
    must build a fresh one with ``new_discriminator()`` (when ``needs_discriminator``)
    that gives one logit per image.

    Runs two samples on the CPU, compiled blocks in eager mode."""
    info = source.info
    if info.resolution < 1 or info.channels < 1:
        raise _fail(source, f"info has resolution {info.resolution}, channels {info.channels}")
    networks = source.load(pretrained=True)
    generator, discriminator = networks.generator, networks.discriminator
    if not isinstance(generator, Generator):
        raise _fail(source, f"load() gave a {type(generator).__name__}, not a gtbench Generator")
    if (discriminator is not None) != info.has_discriminator:
        have = "a discriminator" if discriminator is not None else "no discriminator"
        raise _fail(source, f"load() gave {have}, but info.has_discriminator is "
                    f"{info.has_discriminator}")  # fmt: skip
    if discriminator is None and needs_discriminator:
        try:
            discriminator = source.new_discriminator()
        except NotImplementedError:
            raise _fail(
                source,
                "ships no discriminator and does not implement new_discriminator() (a G-only "
                "source must build a fresh D for the methods that train)",
            ) from None
    if discriminator is not None and not isinstance(discriminator, Discriminator):
        raise _fail(source, f"its discriminator is a {type(discriminator).__name__}, not a "
                    "gtbench Discriminator")  # fmt: skip

    with _eager(), torch.no_grad(), _evaluating(generator, discriminator):
        latent = generator.sample_latent(2, generator=torch.Generator().manual_seed(0))
        if tuple(latent.shape) != (2, *info.latent_shape):
            raise _fail(
                source, f"sample_latent(2) gives {_shape(latent)}, but info.latent_shape is "
                f"{tuple(info.latent_shape)}"
            )  # fmt: skip
        images = generator(latent)
        expected = (2, info.channels, info.resolution, info.resolution)
        if not isinstance(images, torch.Tensor) or tuple(images.shape) != expected:
            got = _shape(images) if isinstance(images, torch.Tensor) else type(images).__name__
            raise _fail(
                source, f"its generator gives {got} for 2 latents, expected "
                f"{'×'.join(map(str, expected))} (info: {info.channels} channels, "
                f"{info.resolution} px)"
            )  # fmt: skip
        if not images.is_floating_point() or not torch.isfinite(images).all():
            raise _fail(source, f"its generator gives non-finite or {images.dtype} images")
        low, high = float(images.min()), float(images.max())
        mean_abs = float(images.abs().mean())
        if mean_abs > MAX_MEAN_ABS or math.isclose(low, high):
            raise _fail(
                source, f"its generator's images span [{low:.3g}, {high:.3g}] (mean |x| "
                f"{mean_abs:.3g}); expected images in [-1, 1]"
            )  # fmt: skip
        if discriminator is not None:
            logits = discriminator(images.float())
            if not isinstance(logits, torch.Tensor) or logits.shape[:1] != (2,):
                got = _shape(logits) if isinstance(logits, torch.Tensor) else type(logits)
                raise _fail(source, f"its discriminator gives {got} for 2 images; expected "
                            "one logit per image")  # fmt: skip


class _eager:
    """Run ``torch.compile``d blocks eagerly (a check must not trigger a compilation)."""

    def __enter__(self) -> None:
        self._stance = None
        if hasattr(torch.compiler, "set_stance"):
            self._stance = torch.compiler.set_stance("force_eager")
            self._stance.__enter__()

    def __exit__(self, *exc: object) -> None:
        if self._stance is not None:
            self._stance.__exit__(*exc)


class _evaluating:
    """Eval mode for the duration (BatchNorm running statistics left untouched)."""

    def __init__(self, *modules: torch.nn.Module | None) -> None:
        self.modules = [m for m in modules if m is not None]

    def __enter__(self) -> None:
        self.modes = [m.training for m in self.modules]
        for module in self.modules:
            module.eval()

    def __exit__(self, *exc: object) -> None:
        for module, mode in zip(self.modules, self.modes, strict=True):
            module.train(mode)
