"""EWC for few-shot generation (Li et al., NeurIPS 2020): fine-tuning with an elastic
penalty that keeps the generator weights important to the source close to their values.

Importance is the diagonal Fisher information F of G's weights at the source, estimated
from squared per-sample gradients of the generator's adversarial log-likelihood
log σ(D(G(z))) through the *source* discriminator. The generator loss gains the paper's
summed penalty λ · Σ_i F_i (θ_i − θ_S,i)² over every trainable G weight.

λ does not transfer between networks: F is a squared gradient, so its scale depends on
the architecture, the resolution and the discriminator. The only public code (sony/
nnabla-examples ``stylegan2-ewc``, unofficial) uses λ = 1e2 with a per-tensor *mean* and
raw (unsquared) gradients; with squared gradients that penalty is ~1e-4 of the
adversarial gradient, i.e. plain fine-tuning. The default λ here is calibrated on the
default suite (animals-dcgan32 → animals-cat, 300 steps) so that the trainer-measured
``reg_grad_ratio`` (‖∇ penalty‖ / ‖∇ adversarial loss‖ over the last 10 % of G steps)
shows a penalty that acts without dominating; docs/methods.md gives the measurement.

The Fisher needs a discriminator that knows the source domain, so EWC requires a source
that ships one: a freshly initialised D would make F noise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
import torch.nn.functional as F

from gtbench.api import LogUniform, Method, Parameter

from ._fisher import generator_fisher

if TYPE_CHECKING:
    from gtbench.api import Discriminator, Generator, TrainContext, TrainStep

# λ for the summed penalty, calibrated on the default suite (docs/methods.md, "ewc").
DEFAULT_WEIGHT = 1000.0


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
    latents = [generator.sample_latent(1, generator=rng, device=device) for _ in range(samples)]
    if not latents:
        return {name: torch.zeros_like(p) for name, p in named}
    values = generator_fisher(
        generator, discriminator, torch.cat(latents), [p for _, p in named], F.logsigmoid
    )
    return {name: value for (name, _), value in zip(named, values, strict=True)}


class EWC(Method):
    """Fine-tuning of G and D with the EWC penalty λ·Σ F (θ − θ_S)² on G's weights."""

    description = "fine-tune with a Fisher-weighted L2 penalty toward the source G weights"
    paper = (
        "Li, Zhang, Lu, Shechtman. Few-shot Image Generation with Elastic Weight "
        "Consolidation, NeurIPS 2020"
    )
    code = "unofficial: github.com/sony/nnabla-examples (image-generation/stylegan2-ewc)"
    version = "2"
    requires_discriminator = True
    parameters: ClassVar = {
        "weight": Parameter(
            DEFAULT_WEIGHT,
            "λ of the summed penalty λ·Σ F(θ−θ_S)², calibrated on the default suite so the "
            "penalty acts (reg_grad_ratio ~0.3; see docs/methods.md)",
            search=LogUniform(DEFAULT_WEIGHT / 10, DEFAULT_WEIGHT * 10),
        ),
        "samples": Parameter(100, "latents the Fisher is averaged over (nnabla: 100 iterations)"),
    }

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self.fisher: dict[str, torch.Tensor] = {}
        self.anchor: dict[str, torch.Tensor] = {}
        self.last_penalty: torch.Tensor | None = None

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
        """Σ_i F_i (θ_i − θ_S,i)² over every anchored weight, without the λ factor."""
        terms = [
            (self.fisher[name] * (p - self.anchor[name]).square()).sum()
            for name, p in generator.named_parameters()
            if name in self.fisher
        ]
        if not terms:
            return torch.zeros(())
        return torch.stack(terms).sum()

    def generator_loss(self, ctx: TrainContext, step: TrainStep) -> torch.Tensor | None:
        penalty = self.penalty(ctx.generator)
        self.last_penalty = penalty.detach()
        ctx.log("ewc_penalty", self.last_penalty)
        return self.params["weight"] * penalty

    def extra_metrics(self, ctx: TrainContext) -> dict[str, float]:
        if not self.fisher:
            return {}
        values = torch.cat([f.flatten() for f in self.fisher.values()])
        metrics = {"ewc_fisher_mean": float(values.mean()), "ewc_fisher_max": float(values.max())}
        if self.last_penalty is not None:
            metrics["ewc_penalty"] = float(self.last_penalty)
        return metrics
