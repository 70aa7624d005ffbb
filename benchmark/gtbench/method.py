"""The transfer-method base class: the hooks the shared trainer calls."""

from __future__ import annotations

from abc import ABC
from typing import TYPE_CHECKING, ClassVar

import torch

from gtbench.networks import Generator
from gtbench.plugin import Plugin, SourceInfo

if TYPE_CHECKING:
    from gtbench.trainer import TrainContext, TrainStep

__all__ = ["Method"]


class Method(Plugin, ABC):
    """A transfer method: the part that differs from plain fine-tuning.

    The shared trainer (:mod:`gtbench.trainer`) calls the hooks below; the defaults are
    plain fine-tuning of every generator and discriminator parameter. A method that cannot
    be written as hooks overrides :meth:`fit` and runs its own loop.

    ``parameters`` holds the method's hyper-parameters with the paper's defaults;
    ``paper`` and ``code`` say where they come from.
    """

    kind: ClassVar[str] = "method"
    paper: ClassVar[str] = ""
    code: ClassVar[str] = ""
    requires_discriminator: ClassVar[bool] = False  # needs a *pretrained* D
    start_from_pretrained: ClassVar[bool] = True  # False: random init (scratch baseline)

    def incompatibility(self, source: SourceInfo) -> str | None:
        """Why this method cannot run on ``source``, or None when it can."""
        if self.requires_discriminator and not source.has_discriminator:
            return f"{self.name} needs a pretrained discriminator; source has none"
        return None

    def trains(self) -> bool:
        """False for methods that evaluate the starting generator as it is."""
        return True

    def prepare_generator(self, generator: Generator) -> Generator:
        """Change the generator's *structure* (wrap convs, put a miner in front), nothing else.

        Called before :meth:`setup`, and again when a kept generator is rebuilt from its
        saved weights (``gtbench generate``): it must depend only on the method's
        parameters, never on data, so the saved state dict loads into its result."""
        return generator

    def setup(self, ctx: TrainContext) -> None:
        """Prepare before training: freeze, wrap modules, estimate Fisher information...

        May replace ``ctx.generator`` (e.g. wrap it) as long as the replacement is still
        a :class:`Generator`; optimisers and EMA are built after this returns."""

    def augment(self, ctx: TrainContext, images: torch.Tensor) -> torch.Tensor:
        """Augment images at D's input (applied to real and fake alike)."""
        return ctx.augment(images)

    def sample_latent(self, ctx: TrainContext, n: int) -> torch.Tensor:
        """Latents for a training step."""
        return ctx.generator.sample_latent(n, generator=ctx.rng, device=ctx.device)

    def discriminator_logits(
        self, ctx: TrainContext, output: torch.Tensor, features: list[torch.Tensor]
    ) -> torch.Tensor:
        """The logits the adversarial loss sees for one D pass (real or fake, either phase).

        Default: D's output, one logit per image (any spatial map averaged). A method may
        return N×… logits instead, e.g. a patch map from its own head on an intermediate
        feature (CDC's patch-level loss): every element is then one term of the logistic
        loss, while R1 and :class:`TrainStep` still get one logit per image (the mean)."""
        return output.reshape(output.shape[0], -1).mean(dim=1)

    def generator_loss(self, ctx: TrainContext, step: TrainStep) -> torch.Tensor | None:
        """An extra term added to the generator's loss at this step."""
        return None

    def discriminator_loss(self, ctx: TrainContext, step: TrainStep) -> torch.Tensor | None:
        """An extra term added to the discriminator's loss at this step."""
        return None

    def after_step(self, ctx: TrainContext, step: TrainStep) -> None:
        """Per-step callback after both updates (adaptive p, stage switches, pruning)."""

    def extra_metrics(self, ctx: TrainContext) -> dict[str, float]:
        """Values to store in the record (final ADA p, number of frozen filters, ...)."""
        return {}

    def fit(self, ctx: TrainContext) -> None:
        """Adapt ``ctx.generator``; by default the shared trainer with these hooks."""
        from gtbench.trainer import train

        train(ctx, self)
