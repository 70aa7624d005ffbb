"""L2-SP (Xuhong Li, Grandvalet, Davoine, ICML 2018) for GANs: fine-tuning with an L2
penalty toward the *starting point* instead of toward zero.

The simplest anchor baseline: every weight is pulled back to its source value with the
same strength, α/2 · ‖θ − θ_S‖², which EWC refines with per-weight importance. FreezeD's
code carries it as a baseline too (``--lambda_l2_G`` / ``--lambda_l2_D``, mean-squared
per tensor, off by default). The default α = 1 is calibrated: the L2-SP paper's 0.1 makes
the penalty's gradient 0.019 of the adversarial one on the default suite (plain
fine-tuning), α = 1 makes it 0.15 (docs/methods.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

from gtbench.api import LogUniform, Method, Parameter

if TYPE_CHECKING:
    from gtbench.api import TrainContext, TrainStep


def anchor_of(module: nn.Module) -> dict[str, torch.Tensor]:
    """Detached copies of the trainable parameters: the starting point θ_S."""
    return {n: p.detach().clone() for n, p in module.named_parameters() if p.requires_grad}


def squared_distance(module: nn.Module, anchor: dict[str, torch.Tensor]) -> torch.Tensor:
    """‖θ − θ_S‖² summed over the anchored parameters."""
    terms = [(p - anchor[n]).square().sum() for n, p in module.named_parameters() if n in anchor]
    return torch.stack(terms).sum() if terms else torch.zeros(())


class L2SP(Method):
    """Fine-tuning of G and D with α/2 · ‖θ − θ_S‖² added to each network's loss."""

    description = "fine-tune with an L2 penalty toward the source weights (L2-SP)"
    paper = (
        "Li, Grandvalet, Davoine. Explicit Inductive Bias for Transfer Learning with "
        "Convolutional Networks, ICML 2018"
    )
    code = "github.com/sangwoomo/FreezeD (stylegan/finetune.py l2_reg, as a GAN baseline)"
    version = "2"
    parameters: ClassVar = {
        "weight_g": Parameter(
            1.0,
            "α for G, calibrated on the default suite so the penalty acts (reg_grad_ratio "
            "0.15; the L2-SP paper's usual 0.1 gives 0.019 there)",
            search=LogUniform(0.1, 10.0),
        ),
        "weight_d": Parameter(0.0, "α for D (0: D fine-tuned freely)"),
    }

    def setup(self, ctx: TrainContext) -> None:
        self.anchor_g = anchor_of(ctx.generator)
        self.anchor_d = anchor_of(ctx.discriminator) if ctx.discriminator is not None else {}

    def generator_loss(self, ctx: TrainContext, step: TrainStep) -> torch.Tensor | None:
        if not self.params["weight_g"]:
            return None
        distance = squared_distance(ctx.generator, self.anchor_g)
        ctx.log("l2sp_g_sq_distance", distance)
        return self.params["weight_g"] / 2 * distance

    def discriminator_loss(self, ctx: TrainContext, step: TrainStep) -> torch.Tensor | None:
        if not self.params["weight_d"] or ctx.discriminator is None:
            return None
        return self.params["weight_d"] / 2 * squared_distance(ctx.discriminator, self.anchor_d)

    def extra_metrics(self, ctx: TrainContext) -> dict[str, float]:
        if not hasattr(self, "anchor_g"):
            return {}
        with torch.no_grad():
            return {"l2sp_g_distance": float(squared_distance(ctx.generator, self.anchor_g).sqrt())}
