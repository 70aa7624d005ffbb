"""EWC for few-shot generation (Li et al., NeurIPS 2020): fine-tuning with an elastic
penalty that keeps the generator weights important to the source close to their values.

Importance is the diagonal Fisher information F of G's weights at the source, estimated
from squared per-sample gradients of the generator's adversarial log-likelihood
log σ(D(G(z))) through the *source* discriminator. The generator loss gains
λ · Σ_tensors mean(F ⊙ (θ − θ_S)²): the reduction and λ = 100 of the only public code
(sony/nnabla-examples ``stylegan2-ewc``, unofficial). That code accumulates the raw,
batch-summed gradient rather than its square; squared gradients (the paper's and EWC's
definition) are far smaller, so at the default λ the penalty is weak — ``ewc_penalty`` in
the record shows its size; ``reduction=sum`` with a large λ follows the paper's formula.

The Fisher needs a discriminator that knows the source domain, so EWC requires a source
that ships one: a freshly initialised D would make F noise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
import torch.nn.functional as F

from gtbench.api import LogUniform, Method, Parameter

if TYPE_CHECKING:
    from gtbench.api import Discriminator, Generator, TrainContext, TrainStep


def estimate_fisher(
    generator: Generator,
    discriminator: Discriminator,
    samples: int,
    rng: torch.Generator,
    device: torch.device,
) -> dict[str, torch.Tensor]:
    """Diagonal Fisher of G's trainable parameters: mean over ``samples`` single latents of
    (∂ log σ(D(G(z))) / ∂θ)².

    One latent per backward pass gives the per-sample squared gradient the Fisher is
    defined by (the square of a batch mean would shrink it by the batch size). Networks
    run in eval mode so normalisation layers use their running statistics."""
    named = [(n, p) for n, p in generator.named_parameters() if p.requires_grad]
    fisher = {n: torch.zeros_like(p) for n, p in named}
    was_training = generator.training, discriminator.training
    generator.eval()
    discriminator.eval()
    try:
        for _ in range(samples):
            z = generator.sample_latent(1, generator=rng, device=device)
            logit = discriminator(generator(z)).reshape(-1).mean()
            grads = torch.autograd.grad(
                F.logsigmoid(logit), [p for _, p in named], allow_unused=True
            )
            for (name, _), grad in zip(named, grads, strict=True):
                if grad is not None:
                    fisher[name] += grad.detach().square()
    finally:
        generator.train(was_training[0])
        discriminator.train(was_training[1])
    return {name: value / samples for name, value in fisher.items()}


class EWC(Method):
    """Fine-tuning of G and D with the EWC penalty on G's weights."""

    description = "fine-tune with a Fisher-weighted L2 penalty toward the source G weights"
    paper = (
        "Li, Zhang, Lu, Shechtman. Few-shot Image Generation with Elastic Weight "
        "Consolidation, NeurIPS 2020"
    )
    code = "unofficial: github.com/sony/nnabla-examples (image-generation/stylegan2-ewc)"
    requires_discriminator = True
    parameters: ClassVar = {
        "weight": Parameter(
            100.0,
            "λ of the penalty (nnabla stylegan2-ewc few_shot.yaml: 1e2)",
            search=LogUniform(10.0, 1000.0),
        ),
        "samples": Parameter(100, "latents the Fisher is averaged over (nnabla: 100 iterations)"),
        "reduction": Parameter(
            "mean",
            "per-tensor reduction of F⊙(θ−θ_S)²: mean (nnabla, which λ=1e2 belongs to) or "
            "sum (the paper's formula; needs a far larger λ)",
        ),
    }

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        if self.params["reduction"] not in ("mean", "sum"):
            raise ValueError("ewc: reduction must be 'mean' or 'sum'")
        self.fisher: dict[str, torch.Tensor] = {}
        self.anchor: dict[str, torch.Tensor] = {}
        self.last_penalty = 0.0

    def setup(self, ctx: TrainContext) -> None:
        source_d = ctx.source_discriminator
        if source_d is None:
            raise ValueError("ewc needs the source's pretrained discriminator")
        self.fisher = estimate_fisher(
            ctx.generator, source_d, self.params["samples"], ctx.rng, ctx.device
        )
        self.anchor = {
            name: p.detach().clone()
            for name, p in ctx.generator.named_parameters()
            if name in self.fisher
        }

    def penalty(self, generator: Generator) -> torch.Tensor:
        """Σ over weight tensors of mean (or sum) of F ⊙ (θ − θ_S)², without the λ factor."""
        reduce = torch.mean if self.params["reduction"] == "mean" else torch.sum
        terms = [
            reduce(self.fisher[name] * (p - self.anchor[name]).square())
            for name, p in generator.named_parameters()
            if name in self.fisher
        ]
        if not terms:
            return torch.zeros(())
        return torch.stack(terms).sum()

    def generator_loss(self, ctx: TrainContext, step: TrainStep) -> torch.Tensor | None:
        penalty = self.penalty(ctx.generator)
        self.last_penalty = penalty.detach()
        return self.params["weight"] * penalty

    def extra_metrics(self, ctx: TrainContext) -> dict[str, float]:
        if not self.fisher:
            return {}
        values = torch.cat([f.flatten() for f in self.fisher.values()])
        return {
            "ewc_fisher_mean": float(values.mean()),
            "ewc_fisher_max": float(values.max()),
            "ewc_penalty": float(self.last_penalty),
        }
