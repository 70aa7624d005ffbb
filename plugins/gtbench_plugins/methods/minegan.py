"""MineGAN (Wang et al., CVPR 2020): mine the source generator's latent space first.

A small "miner" MLP maps the prior's z to z′ in front of the pretrained generator. In a
first stage (the ``mine`` phase of the shared trainer, inside the counted budget) only the
miner (and D) train, with G frozen: the miner moves the latent distribution to the region
of the source manifold that looks most like the target. Then (``main``) G is unfrozen and
trained together with the miner.

Facts from yaxingwang/MineGAN ``styleGAN/finetune.py`` and ``styleGAN/model.py``:
the miner is ``Linear(512, 512) → ReLU → Linear(512, 512)`` (PyTorch default init) on
the latent code; ``--stage1 100``: G's ``requires_grad`` is off while ``i < stage1``,
then G and miner train together with one Adam (lr 0.001, β = (0, 0.99)), for
``--phase 50000`` iterations in all: mining is 100 / 50 000 = 0.2 % of the run, the share
this plugin keeps at any budget (``stage1_fraction``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from gtbench.api import Generator, LogUniform, Method, Parameter, Phase

if TYPE_CHECKING:
    from gtbench.api import TrainContext

# The authors' mining share: --stage1 100 of --phase 50000 iterations (styleGAN/finetune.py).
MINE_SHARE = 100 / 50_000


class MinedGenerator(Generator):
    """``G(miner(z))`` that still looks like G: same blocks, latent shape and features.

    Holding the miner inside the generator makes the EMA copy, the evaluation and the
    saved weights include it with no trainer change."""

    def __init__(self, generator: Generator) -> None:
        # Skip BlockNetwork.__init__: the blocks are the wrapped generator's (see `blocks`).
        nn.Module.__init__(self)
        self.generator = generator
        self.latent_shape = tuple(generator.latent_shape)
        dim = math.prod(self.latent_shape)
        self.miner = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))

    @property
    def blocks(self) -> nn.ModuleDict:  # type: ignore[override]
        return self.generator.blocks

    def named_blocks(self) -> list[tuple[str, nn.Module]]:
        return self.generator.named_blocks()

    def block_names(self) -> list[str]:
        return self.generator.block_names()

    def mine(self, z: torch.Tensor) -> torch.Tensor:
        """z → z′, through a flat view so any latent shape works."""
        return self.miner(z.reshape(z.shape[0], -1)).reshape(z.shape)

    def sample_latent(
        self, n: int, *, generator: torch.Generator | None = None, device: Any = None
    ) -> torch.Tensor:
        return self.generator.sample_latent(n, generator=generator, device=device)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return self.generator.forward_features(self.mine(x))

    def sample_noise(self, seeds: Sequence[int], *, device: Any = None) -> dict[str, Any]:
        """The wrapped G's own random inputs (StyleGAN2's noise maps), drawn per seed."""
        return self.generator.sample_noise(seeds, device=device)

    def forward(self, x: torch.Tensor, noise: Any = None) -> torch.Tensor:
        mined = self.mine(x)
        return self.generator(mined) if noise is None else self.generator(mined, noise=noise)

    def __getattr__(self, name: str) -> Any:
        # Source-specific extras (truncation helpers, resolution...) stay reachable.
        try:
            return super().__getattr__(name)
        except AttributeError:
            inner = self.__dict__.get("_modules", {}).get("generator")  # None while copying
            if inner is None:
                raise
            return getattr(inner, name)


class MineGAN(Method):
    """A miner MLP in front of G; G frozen in a ``mine`` phase of the authors' share of
    the budget (``stage1_fraction``)."""

    description = "miner MLP z->z' in front of G; G frozen in stage one, then fine-tuned"
    paper = (
        "Wang, Gonzalez-Garcia, Berga, Herranz, Khan, van de Weijer. MineGAN: effective "
        "knowledge transfer from GANs to target domains with few images, CVPR 2020"
    )
    code = "github.com/yaxingwang/MineGAN (styleGAN/finetune.py --miner --stage1 100)"
    version = "3"
    requires_discriminator = False  # the authors fine-tune the source D; a fresh one works
    parameters: ClassVar = {
        "stage1_fraction": Parameter(
            MINE_SHARE,
            "share of the method's steps spent mining (G frozen; miner + D only): the "
            "authors' --stage1 100 of --phase 50000 iterations",
            search=LogUniform(MINE_SHARE / 10, MINE_SHARE * 10),
        ),
        "stage1_iters": Parameter(
            0,
            "mining steps as a count instead of a share (the authors' --stage1 100); "
            "0 = use stage1_fraction",
        ),
    }

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        if not 0 <= float(self.params["stage1_fraction"]) <= 1 or self.params["stage1_iters"] < 0:
            raise ValueError("minegan: stage1_fraction must be in [0, 1], stage1_iters >= 0")

    def switch_iteration(self, steps: int) -> int:
        """Steps of the mining phase for a budget of ``steps`` method steps:
        round(``stage1_fraction`` × steps), or ``stage1_iters`` when set (at most
        ``steps``)."""
        count = int(self.params["stage1_iters"])
        if count <= 0:
            count = round(float(self.params["stage1_fraction"]) * steps)
        return max(0, min(count, steps))

    def prepare_generator(self, generator: Generator) -> Generator:
        if isinstance(generator, MinedGenerator):
            return generator
        return MinedGenerator(generator)

    def setup(self, ctx: TrainContext) -> None:
        wrapped = ctx.generator
        assert isinstance(wrapped, MinedGenerator)
        # Re-draw the miner from the run's seed (prepare_generator must not use data/RNG).
        with ctx.seeded_init(), torch.no_grad():
            for layer in wrapped.miner:
                if isinstance(layer, nn.Linear):
                    fresh = nn.Linear(layer.in_features, layer.out_features)
                    layer.weight.copy_(fresh.weight)
                    layer.bias.copy_(fresh.bias)
        # only what the source lets train is released after mining
        ctx.state["minegan_g_params"] = [
            p for p in wrapped.generator.parameters() if p.requires_grad
        ]
        ctx.state["minegan_switch"] = self.switch_iteration(ctx.method_steps)

    def phases(self, ctx: TrainContext) -> list[Phase]:
        """``mine`` (G frozen; miner and D train), then ``main`` (G, miner and D), both
        inside the trainer's budget, after its D-only warm-up if any."""
        mine = ctx.state["minegan_switch"]
        return [Phase("mine", mine), Phase("main")] if mine > 0 else [Phase("main")]

    def on_phase_start(self, ctx: TrainContext, phase: Phase) -> None:
        frozen = phase.name == "mine"
        for parameter in ctx.state["minegan_g_params"]:
            parameter.requires_grad_(not frozen)

    def extra_metrics(self, ctx: TrainContext) -> dict[str, float]:
        return {"minegan_mine_steps": float(ctx.state.get("minegan_switch", 0))}
