"""Empirical Fisher information of generator weights: the one estimator the built-in
methods share (EWC, AdAM, RICK score importance with it). Not part of the core, which
knows no method."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def _generator_loss(logit: torch.Tensor) -> torch.Tensor:
    return F.softplus(-logit)


def generator_fisher(
    generator: torch.nn.Module,
    discriminator: torch.nn.Module,
    latents: torch.Tensor,
    tensors: list[torch.Tensor],
    objective: Callable[[torch.Tensor], torch.Tensor] = _generator_loss,
) -> list[torch.Tensor]:
    """Empirical Fisher information of ``tensors`` (parameters of G or of modules wrapped
    into it): the mean over single-image draws (one latent per row) of the squared
    gradient of ``objective(D(G(z)))``, both networks in eval mode (their modes restored
    afterwards). Default objective: G's non-saturating loss softplus(−D(G(z))) (AdAM,
    RICK); EWC passes its log-likelihood log σ(D(G(z))), the same squared gradient up to
    rounding."""
    fisher = [torch.zeros_like(t) for t in tensors]
    g_mode, d_mode = generator.training, discriminator.training
    generator.eval()
    discriminator.eval()
    try:
        for z in latents:
            logit = discriminator(generator(z.unsqueeze(0))).reshape(1, -1).mean()
            grads = torch.autograd.grad(objective(logit), tensors, allow_unused=True)
            for acc, grad in zip(fisher, grads, strict=True):
                if grad is not None:
                    acc.add_(grad.detach().square())
    finally:
        generator.train(g_mode)
        discriminator.train(d_mode)
    n = max(len(latents), 1)
    return [f / n for f in fisher]
