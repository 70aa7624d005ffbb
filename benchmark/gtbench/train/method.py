"""The transfer-method base class and its phases: the hooks the shared trainer calls.

One training run (:func:`gtbench.train.trainer.train`) is a sequence of phases inside one
counted budget of ``config.iters`` steps: the trainer's D-only warm-up (``d_warmup``
steps, the same for every method) and then the method's own phases (default: one
``main`` phase). Per step of a phase the trainer does one discriminator update and,
when the phase updates G, one generator update::

    for phase in [warmup] + method.phases(ctx):
        method.on_phase_start(ctx, phase)          # optimisers (re)built after this
        for each step:
            D update: sample_latent, augment, discriminator_logits,
                      discriminator_loss, [R1 through augment, w.r.t. the reals],
                      backward, [observers], step, after_step
            G update: sample_latent, augment, discriminator_logits, generator_loss,
                      backward, [observers], step, EMA, after_step

One word per idea: a *phase* is a stretch of the budget (:class:`Phase`, ``ctx.phase``,
``step.phase_name``); an *update* is one optimiser update of D or G (``step.update``).
Every hook below serves at least two built-in methods or is the trainer's own default
(docs/architecture.md lists who uses which). What only one method needs is an observer
it registers in :meth:`Method.setup` (``ctx.before_optimizer_step(fn)``: RICK's gradient
masks); the hooks that were removed for that reason (``observe``, ``on_phase_end``,
``before_optimizer_step``) are refused with the replacement, never silently skipped.

The trainer, never a method, counts the G and D optimiser steps (``ctx.g_steps``,
``ctx.d_steps``, ``ctx.warmup_steps``, ``ctx.images_seen``); a method must not call
:func:`gtbench.train.trainer.train` itself (a second call raises).
"""

from __future__ import annotations

from abc import ABC
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from gtbench.plugin.base import Plugin, SourceInfo
from gtbench.plugin.networks import Generator
from gtbench.train.phases import Phase
from gtbench.train.trainer import train

if TYPE_CHECKING:
    from gtbench.train.trainer import TrainContext, TrainStep

__all__ = ["Method", "Phase"]


class Method(Plugin, ABC):
    """A transfer method: the part that differs from plain fine-tuning.

    The shared trainer (:mod:`gtbench.train.trainer`) calls the hooks below; the defaults are
    plain fine-tuning of every generator and discriminator parameter in one ``main``
    phase. A method that cannot be written as hooks overrides :meth:`fit` and runs its own
    loop; it then says why in ``unequal_budget`` (the record carries it), because its steps
    are not the shared trainer's counted budget.

    ``parameters`` holds the method's hyper-parameters with the paper's defaults;
    ``paper`` and ``code`` say where they come from.
    """

    kind: ClassVar[str] = "method"
    paper: ClassVar[str] = ""
    code: ClassVar[str] = ""
    requires_discriminator: ClassVar[bool] = False  # needs a *pretrained* D
    start_from_pretrained: ClassVar[bool] = True  # False: random init (scratch baseline)
    # Non-empty: why this method's counted steps differ from the shared budget (its own
    # `fit`, or phases that freeze G and so count as D-only steps); stored in every record
    # so the leaderboard can show it. RICK is the one built-in that sets it.
    unequal_budget: ClassVar[str] = ""

    def incompatibility(self, source: SourceInfo) -> str | None:
        """Why this method cannot run on ``source``, or None when it can."""
        if self.requires_discriminator and not source.has_discriminator:
            return f"{self.name} needs a pretrained discriminator; source has none"
        return None

    def trains(self) -> bool:
        """False for methods that evaluate the starting generator as it is."""
        return True

    # ------------------------------------------------------------------ structure, set-up
    def prepare_generator(self, generator: Generator) -> Generator:
        """Change the generator's *structure* (wrap convs, put a miner in front), nothing else.

        Called before :meth:`setup`, and again when a kept generator is rebuilt from its
        saved weights (``gtbench generate``): it must depend only on the method's
        parameters, never on data, so the saved state dict loads into its result."""
        return generator

    def setup(self, ctx: TrainContext) -> None:
        """Prepare before training: freeze, wrap modules, estimate Fisher information...

        May replace ``ctx.generator`` (e.g. wrap it) as long as the replacement is still
        a :class:`Generator`; phases, optimisers and EMA are built after this returns."""

    # ------------------------------------------------------------------ phases, optimisers
    def phases(self, ctx: TrainContext) -> list[Phase]:
        """The method's phases, run after the trainer's D-only warm-up.

        Their steps add up to ``ctx.method_steps`` (``iters`` minus the warm-up): give every
        phase but one a number of steps and the last (or any one) ``steps=None`` for the
        rest. Default: one ``main`` phase updating G and D."""
        return [Phase("main")]

    def on_phase_start(self, ctx: TrainContext, phase: Phase) -> None:
        """Called as ``phase`` begins (``ctx.phase`` is set), before its optimisers are built:
        freeze or release parameters, reset modulations, snapshot networks, or conclude the
        phase before (score a probe and restore the networks)."""

    def param_groups(self, ctx: TrainContext, network: str) -> list[dict[str, Any]]:
        """Adam parameter groups for ``network`` (``"g"`` or ``"d"``).

        Each dict has ``"params"`` and may set its own ``"lr"`` (default ``lr_g``/``lr_d``)
        or ``"betas"``; backward computes gradients for exactly these parameters (those
        that require one), so parameters left out are never stepped and a group may hold
        parameters outside the network (a method's own head on D's features). Called when the
        optimisers are built: after :meth:`setup`, and at the start of a phase with
        ``new_optimizers``. Default: every parameter of the network in one group (frozen
        ones have no gradient, so Adam leaves them bitwise intact)."""
        module = ctx.generator if network == "g" else ctx.discriminator
        return [{"params": list(module.parameters())}] if module is not None else []

    # ------------------------------------------------------------------ per step
    def augment(self, ctx: TrainContext, images: torch.Tensor) -> torch.Tensor:
        """Augment images at D's input (applied to real and fake alike, in both updates,
        and in R1's own D pass, whose gradient is taken with respect to the reals before
        augmentation, as ADA's and DiffAugment's code). Default: none."""
        return images

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
        """An extra term added to the generator's loss at this step (a regulariser)."""
        return None

    def discriminator_loss(self, ctx: TrainContext, step: TrainStep) -> torch.Tensor | None:
        """An extra term added to the discriminator's loss at this step (a regulariser)."""
        return None

    def after_step(self, ctx: TrainContext, step: TrainStep) -> None:
        """Called after the D update (``step.update == "d"``: ``step.d_real`` and
        ``step.d_fake`` hold D's judgement of this update's reals and fakes, as ADA's
        statistics read them) and after the G update (``"g"``; not in D-only phases):
        adaptive p, pruning, bookkeeping. Detach what you keep."""

    # ------------------------------------------------------------------ results
    def extra_metrics(self, ctx: TrainContext) -> dict[str, float]:
        """Values to store in the record (final ADA p, number of frozen filters, ...)."""
        return {}

    def fit(self, ctx: TrainContext) -> None:
        """Adapt ``ctx.generator``; by default the shared trainer with these hooks."""
        train(ctx, self)
