"""DiffAugment (Zhao et al., NeurIPS 2020) as a transfer method: fine-tuning with the same
differentiable augmentation on real and fake images at D's input.

Augmenting only the reals would teach G to produce augmented images; augmenting both
with differentiable transforms keeps D from memorising the K shots while G still gets a
gradient through the augmentation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch

from gtbench.api import Choice, Method, Parameter

from ._augment import DiffAugmentPipeline as DiffAugmentPipe
from ._augment import parse_policy

if TYPE_CHECKING:
    from gtbench.api import TrainContext


class DiffAugment(Method):
    """Plain fine-tuning with DiffAugment's ``policy`` applied to every image D sees
    (the one place DiffAugment lives: the trainer has no augmentation option)."""

    description = "fine-tune G and D with DiffAugment (color, translation, cutout) at D's input"
    paper = (
        "Zhao, Liu, Lin, Zhu, Han. Differentiable Augmentation for Data-Efficient GAN "
        "Training, NeurIPS 2020"
    )
    code = "github.com/mit-han-lab/data-efficient-gans (DiffAugment_pytorch.py)"
    version = "2"  # v2: R1 through the augmentation (trainer version 3)
    parameters: ClassVar = {
        "policy": Parameter(
            "color,translation,cutout",
            "comma-separated transforms (the paper's default for few-shot: all three)",
            search=Choice("color,translation,cutout", "translation,cutout", "color,translation"),
        ),
    }

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        parse_policy(self.params["policy"])  # fail at creation, not after loading a model
        self.pipe: DiffAugmentPipe | None = None

    def setup(self, ctx: TrainContext) -> None:
        self.pipe = DiffAugmentPipe(self.params["policy"], ctx.rng)

    def augment(self, ctx: TrainContext, images: torch.Tensor) -> torch.Tensor:
        if self.pipe is None:
            self.setup(ctx)
        assert self.pipe is not None
        return self.pipe(images)
