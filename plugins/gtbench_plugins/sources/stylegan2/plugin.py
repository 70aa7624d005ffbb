"""The ``stylegan2`` source: a rosinality-format StyleGAN2 checkpoint (or a random init).

Usage::

    gtbench run --sources stylegan2:ckpt=/data/ffhq-256-config-f.pt ...
    gtbench run --sources "stylegan2:ckpt=https://host/ffhq.pt,sha256=<64 hex>" ...
    gtbench run --sources stylegan2:ckpt=random,size=32,channel_max=64   # tests, no file

Resolution, channel multiplier, width cap, style size and mapping depth are read from
the checkpoint (a given value must agree with it). The generator is ``g_ema`` (else
``g``); the discriminator ``d`` when present. ``.pkl`` files are refused unless
``allow_pickle=true`` (see :mod:`.checkpoint`).

Truncation pulls w toward ``latent_avg``: the checkpoint's (rosinality stores it beside
``g_ema``). A checkpoint without one (a training snapshot) loads with a warning, and the
loader uses the mean of mapping(z) over 4096 z ~ N(0, I) drawn from seed 0 instead; a
random init uses the same estimate. Either way the record says where the centre came
from (``source_notes.latent_avg``). ``latent_avg`` is a persistent buffer of the
generator, so an adapted generator's kept weights carry it and ``gtbench generate
--truncation`` pulls toward the same centre; it is the source's and is not re-estimated
after adaptation (the mapping network trains at 0.01× the learning rate, so it moves
little; a ``scratch`` run's centre is that of its random init).
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import torch

from gtbench.api import Discriminator, Parameter, Source, SourceInfo, SourceNetworks
from gtbench.errors import GtbenchError

from .checkpoint import (
    CheckpointError,
    check_state_dict,
    infer_config,
    load_checkpoint,
    network_states,
    resolve_checkpoint,
)
from .networks import (
    MEAN_LATENT_SAMPLES,
    StyleGAN2Discriminator,
    StyleGAN2Generator,
    use_channels_last,
)
from .precision import bf16_fallback_reason

__all__ = ["StyleGAN2Source"]

RANDOM = "random"
_PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}
# the last checkpoint read: (path, size, mtime_ns) -> states; info() and load() share it
_CACHE: dict[tuple[str, int, int], dict[str, Any]] = {}
ESTIMATED_CENTRE = (
    f"mean of mapping(z) over {MEAN_LATENT_SAMPLES} z ~ N(0, I) from torch.Generator seed 0, "
    "computed by the loader"
)


class StyleGAN2Source(Source):
    """StyleGAN2 (config-f skip G, residual D) from a rosinality-format checkpoint."""

    name = "stylegan2"
    description = "StyleGAN2 from a rosinality-format .pt checkpoint (path or URL), or ckpt=random"
    example_params: ClassVar = {"ckpt": "random", "size": 32, "channel_max": 32}
    # 2: latent_avg is kept with an adapted generator's weights (truncation centre)
    # 3: evaluation noise maps drawn per sample from the evaluation seed (sample_noise),
    #    not from the global RNG left by training: evaluated numbers change
    version = "3"
    parameters: ClassVar = {
        "ckpt": Parameter("", "checkpoint path or http(s) URL, or 'random' (seeded init)"),
        "sha256": Parameter("", "expected sha256 of the checkpoint file (optional)"),
        "size": Parameter(0, "resolution; 0: from the checkpoint (random: 256)"),
        "channel_multiplier": Parameter(0, "2 for config-f; 0: from the checkpoint (random: 2)"),
        "channel_max": Parameter(0, "width cap, 512 published; 0: from the checkpoint"),
        "style_dim": Parameter(512, "size of z and w"),
        "n_mlp": Parameter(8, "mapping network depth"),
        "truncation": Parameter(1.0, "truncation psi toward latent_avg (1.0: none)"),
        "allow_pickle": Parameter(False, "allow unpickling code-bearing files (unsafe)"),
        "seed": Parameter(0, "seed of ckpt=random and of fresh (scratch) networks"),
        "precision": Parameter("fp32", "fp32 or bf16 (autocast inside G and D)"),
        "channels_last": Parameter(False, "run convolutions in channels_last memory format"),
        "compile": Parameter(False, "torch.compile each block (GPU; slow first steps)"),
    }

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        if self.params["precision"] not in _PRECISIONS:
            raise ValueError(
                f"source 'stylegan2': precision must be one of {', '.join(_PRECISIONS)}, "
                f"got {self.params['precision']!r}"
            )
        size = self.params["size"]
        if size and (size < 8 or size > 1024 or size & (size - 1)):
            raise ValueError(
                f"source 'stylegan2': size must be a power of two in 8..1024, got {size}"
            )
        if not 0.0 <= self.params["truncation"] <= 1.0:
            raise ValueError("source 'stylegan2': truncation must be in [0, 1]")
        self._config: dict[str, int] | None = None

    # ----------------------------------------------------------------- checkpoint

    @property
    def is_random(self) -> bool:
        return self.params["ckpt"].strip().lower() == RANDOM

    def _states(self) -> dict[str, Any]:
        ckpt = self.params["ckpt"].strip()
        if not ckpt:
            raise GtbenchError(
                "source 'stylegan2' needs ckpt=PATH, ckpt=URL or ckpt=random "
                "(e.g. --sources stylegan2:ckpt=/data/ffhq-256.pt)"
            )
        path = resolve_checkpoint(ckpt, self.params["sha256"])
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in _CACHE:
            raw = load_checkpoint(path, allow_pickle=self.params["allow_pickle"])
            states = network_states(raw, path)
            states["path"] = path
            _CACHE.clear()
            _CACHE[key] = states
        return _CACHE[key]

    def config(self) -> dict[str, int]:
        """The architecture: given parameters, checked against / filled from the checkpoint."""
        if self._config is not None:
            return self._config
        given = {
            key: self.params[key]
            for key in ("size", "channel_multiplier", "channel_max", "style_dim", "n_mlp")
        }
        if self.is_random:
            defaults = {"size": 256, "channel_multiplier": 2, "channel_max": 512}
            config = {key: value or defaults.get(key, value) for key, value in given.items()}
        else:
            states = self._states()
            inferred = infer_config(states["g_ema"])
            if not inferred["channel_multiplier"]:  # every width capped: any value fits
                inferred["channel_multiplier"] = given["channel_multiplier"] or 2
            for key, value in given.items():
                # 0 (and the default style_dim / n_mlp) means "whatever the checkpoint has"
                if value not in (0, self.parameters[key].default) and value != inferred[key]:
                    raise CheckpointError(
                        f"{states['path']}: the checkpoint has {key}={inferred[key]}, but "
                        f"{key}={value} was given"
                    )
            config = inferred
        self._config = config
        return config

    @property
    def info(self) -> SourceInfo:
        config = self.config()
        has_d = True if self.is_random else "d" in self._states()
        return SourceInfo(
            resolution=config["size"],
            channels=3,
            latent_shape=(config["style_dim"],),
            has_discriminator=has_d,
            architecture="stylegan2",
        )

    # ----------------------------------------------------------------- networks

    def _generator(self) -> StyleGAN2Generator:
        c = self.config()
        return StyleGAN2Generator(
            c["size"],
            style_dim=c["style_dim"],
            n_mlp=c["n_mlp"],
            channel_multiplier=c["channel_multiplier"],
            channel_max=c["channel_max"],
        )

    def _discriminator(self) -> StyleGAN2Discriminator:
        c = self.config()
        return StyleGAN2Discriminator(
            c["size"], channel_multiplier=c["channel_multiplier"], channel_max=c["channel_max"]
        )

    def _seeded(self, offset: int) -> tuple[StyleGAN2Generator, StyleGAN2Discriminator]:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.params["seed"] + offset)
            return self._generator(), self._discriminator()

    def _prepare_g(self, generator: StyleGAN2Generator) -> StyleGAN2Generator:
        generator.truncation = float(self.params["truncation"])
        return self._speed(generator)

    @staticmethod
    def _estimate_centre(generator: StyleGAN2Generator) -> str:
        generator.latent_avg.copy_(generator.mean_latent())
        return ESTIMATED_CENTRE

    def _precision_notes(self) -> dict[str, str]:
        """bf16 on a CPU without native bf16 falls back to fp32 (warned, and recorded as
        ``source_notes.precision``): emulated there, it is ~20x slower."""
        if self.params["precision"] != "bf16":
            return {}
        reason = bf16_fallback_reason()
        if reason is None:
            return {"precision": "bf16"}
        warnings.warn(f"source 'stylegan2': {reason}", RuntimeWarning, stacklevel=2)
        return {"precision": reason}

    def _speed(self, network: Any) -> Any:
        network.autocast_dtype = _PRECISIONS[self.params["precision"]]
        if self.params["precision"] == "bf16" and bf16_fallback_reason() is not None:
            network.autocast_dtype = None
        if self.params["channels_last"]:
            use_channels_last(network)
        if self.params["compile"]:
            for block in network.blocks.values():
                block.compile()
        return network

    def load(self, *, pretrained: bool = True) -> SourceNetworks:
        if not pretrained or self.is_random:
            generator, discriminator = self._seeded(0 if pretrained else 1)
            notes = {"latent_avg": f"random init: {self._estimate_centre(generator)}"}
            notes.update(self._precision_notes())
            return SourceNetworks(
                self._prepare_g(generator), self._speed(discriminator), notes=notes
            )
        states = self._states()
        path = states["path"]
        generator = self._generator()
        g_state = dict(states["g_ema"])
        # a g_ema saved from this class carries one (all zeros: never set, so not one)
        stored = isinstance(g_state.get("latent_avg"), torch.Tensor) and bool(
            g_state["latent_avg"].any()
        )
        g_state.setdefault("latent_avg", generator.latent_avg)
        generator.load_state_dict(check_state_dict(generator, g_state, f"{path} g_ema"))
        if "latent_avg" in states:
            avg = states["latent_avg"].reshape(-1).float()
            if avg.numel() != generator.style_dim:
                raise CheckpointError(
                    f"{path}: latent_avg has {avg.numel()} values, expected {generator.style_dim}"
                )
            generator.latent_avg.copy_(avg)
            notes = {"latent_avg": "checkpoint"}
        elif stored:
            notes = {"latent_avg": "checkpoint (inside g_ema)"}
        else:
            notes = {"latent_avg": self._estimate_centre(generator)}
            warnings.warn(
                f"{path} has no latent_avg (a training snapshot?): truncation will pull toward "
                f"the {ESTIMATED_CENTRE}",
                stacklevel=2,
            )
        discriminator = None
        if "d" in states:
            discriminator = self._discriminator()
            discriminator.load_state_dict(check_state_dict(discriminator, states["d"], f"{path} d"))
            discriminator = self._speed(discriminator)
        notes.update(self._precision_notes())
        return SourceNetworks(self._prepare_g(generator), discriminator, notes=notes)

    def new_discriminator(self) -> Discriminator:
        """A fresh StyleGAN2 residual D of the checkpoint's configuration (seeded)."""
        return self._speed(self._seeded(2)[1])
