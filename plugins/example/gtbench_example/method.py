"""Fine-tuning with an L2 pull of the generator toward its source weights."""

from typing import ClassVar

import torch

from gtbench.api import Method, Parameter


class AnchoredFineTune(Method):
    description = "fine-tuning plus weight * ||θ_G − θ_source||²"
    paper = "in the spirit of L2-SP (Li et al., ICML 2018)"
    parameters: ClassVar = {"weight": Parameter(1.0, "strength of the pull to the source")}

    def setup(self, ctx) -> None:
        # Remember the starting weights; nothing else changes from plain fine-tuning.
        ctx.state["anchor"] = [p.detach().clone() for p in ctx.generator.parameters()]

    def generator_loss(self, ctx, step) -> torch.Tensor:
        pairs = zip(ctx.generator.parameters(), ctx.state["anchor"], strict=True)
        distance = sum((p - p0).square().sum() for p, p0 in pairs)
        return self.params["weight"] * distance
