"""DCL (Zhao et al., CVPR 2022, "A Closer Look at Few-shot Image Generation"): dual
contrastive learning that keeps the source generator's diversity during adaptation.

Two InfoNCE terms join the generator's adversarial loss, each maximising a lower bound of
mutual information between the adapted and the source generator:

1. *Generator side* (``g_weight``): for N latents z_1…z_N, the adapted G's feature of z_i
   at a generator block is the anchor, the source G's feature of the same z_i the
   positive, the source features of the other latents the negatives;
   L = mean_i −log softmax_j(cos(f_t(z_i), f_s(z_j)) / τ)[i].
2. *Discriminator side* (``d_weight``): D is the feature encoder. The anchor is D's
   feature of the adapted image G_t(z_i), the positive D's feature of the source image
   G_s(z_i), the negatives D's features of the target's real shots, so generated images
   are pulled toward their source counterparts and pushed away from the few real images
   (memorising them is penalised).

Where the original code could not be checked: the official repository
(yunqing-me/A-Closer-Look-at-FSIG) publishes ``model.py`` (its discriminator returns every
intermediate feature for the contrastive term) but no training script, so the layers,
weights and temperature follow the paper's description, mapped onto gtbench's blocks as
CDC's (DCL is built on CDC's code): the generator block is drawn per step from CDC's
layer range (:func:`gtbench_plugins.methods.cdc.feature_blocks`), the discriminator block
per step among D's spatial blocks after the first (never the logit). BatchNorm layers
of both generators and of D normalise with the batch's statistics without moving their
running statistics (as CDC here), so the two generators are compared in the same mode
and identical weights give identical features. Gradients of both terms reach only G (D
acts as a fixed encoder in the generator update). Cosine similarity on flattened
features, as CDC.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F

from gtbench.api import LogUniform, Method, Parameter

from .cdc import PATCH_PARAMETERS, PatchAdversarial, batch_statistics, feature_blocks

if TYPE_CHECKING:
    from gtbench.api import Discriminator, TrainContext, TrainStep


def info_nce(anchor: torch.Tensor, candidates: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean over rows i of −log softmax_j(cos(anchor_i, candidates_j) / τ)[i]: row i's
    positive is candidate i, every other candidate a negative."""
    a = F.normalize(anchor.flatten(1), dim=1)
    c = F.normalize(candidates.flatten(1), dim=1)
    logits = a @ c.T / temperature
    target = torch.arange(len(a), device=a.device)
    return F.cross_entropy(logits, target)


def info_nce_with_negatives(
    anchor: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Mean over rows i of −log(e^{s(a_i, p_i)/τ} / (e^{s(a_i, p_i)/τ} + Σ_j e^{s(a_i, n_j)/τ}))
    with s the cosine similarity."""
    a = F.normalize(anchor.flatten(1), dim=1)
    p = F.normalize(positive.flatten(1), dim=1)
    n = F.normalize(negatives.flatten(1), dim=1)
    logits = torch.cat([(a * p).sum(1, keepdim=True), a @ n.T], dim=1) / temperature
    target = torch.zeros(len(a), dtype=torch.long, device=a.device)
    return F.cross_entropy(logits, target)


def discriminator_blocks(features: list[torch.Tensor]) -> list[int]:
    """D blocks the D-side term may read: spatial features wider than 1×1, after the
    first block (on a D too shallow for that: every spatial one)."""
    spatial = [i for i, f in enumerate(features) if f.ndim == 4 and f.shape[-1] > 1]
    if not spatial:
        raise ValueError("dcl: the discriminator exposes no spatial block feature")
    return [i for i in spatial if i > 0] or spatial


class DCL(Method):
    """Fine-tuning with InfoNCE between adapted and source G, on G's and on D's features."""

    description = "dual contrastive learning: InfoNCE adapted vs source on G and D features"
    paper = "Zhao, Ding, Huang, Cheung. A Closer Look at Few-shot Image Generation, CVPR 2022"
    code = "github.com/yunqing-me/A-Closer-Look-at-FSIG (model.py only; no training script)"
    version = "2"  # v2: CDC's patch discriminator (the official model's PatchGAN) by default
    requires_discriminator = False
    parameters: ClassVar = {
        "g_weight": Parameter(
            2.0, "weight of the generator-side InfoNCE (λ1)", search=LogUniform(0.2, 20.0)
        ),
        "d_weight": Parameter(
            0.5, "weight of the discriminator-side InfoNCE (λ2)", search=LogUniform(0.05, 5.0)
        ),
        "temperature": Parameter(0.07, "InfoNCE temperature τ"),
        "batch": Parameter(4, "latents per contrastive term (CDC's --feat_const_batch 4)"),
        "negatives": Parameter(10, "real shots used as D-side negatives (at most all)"),
        "patch": Parameter(
            True,
            "CDC's anchor / patch adversarial losses, as the official model.py's PatchGAN "
            "(false: the image-level loss on every step, DCL version 1)",
        ),
        **PATCH_PARAMETERS,
    }

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        if int(self.params["batch"]) < 2:
            raise ValueError("dcl: batch must be at least 2 (one positive, one negative)")
        if float(self.params["temperature"]) <= 0:
            raise ValueError("dcl: temperature must be positive")
        self.patch = PatchAdversarial(self.params, "dcl") if self.params["patch"] else None

    def setup(self, ctx: TrainContext) -> None:
        if ctx.discriminator is None:
            raise ValueError("dcl needs a discriminator (pretrained or fresh)")
        if self.patch is not None:
            self.patch.setup(ctx)

    # ------------------------------------------------- CDC's patch adversarial scheme
    def param_groups(self, ctx: TrainContext, network: str) -> list[dict[str, Any]]:
        default = super().param_groups(ctx, network)
        if self.patch is None or network != "d":
            return default
        return self.patch.param_groups(ctx, default)

    def sample_latent(self, ctx: TrainContext, n: int) -> torch.Tensor:
        z = self.patch.sample_latent(ctx, n) if self.patch is not None else None
        return super().sample_latent(ctx, n) if z is None else z

    def discriminator_logits(
        self, ctx: TrainContext, output: torch.Tensor, features: list[torch.Tensor]
    ) -> torch.Tensor:
        logits = self.patch.patch_logits(ctx, features) if self.patch is not None else None
        return super().discriminator_logits(ctx, output, features) if logits is None else logits

    def after_step(self, ctx: TrainContext, step: TrainStep) -> None:
        if self.patch is not None:
            self.patch.record_ratio(ctx, step)

    def _pick(self, ctx: TrainContext, choices: list[int]) -> int:
        return choices[int(torch.randint(len(choices), (1,), generator=ctx.rng))]

    def contrastive_terms(self, ctx: TrainContext) -> tuple[torch.Tensor, torch.Tensor]:
        """(generator-side, discriminator-side) InfoNCE on a fresh batch of latents."""
        tau = float(self.params["temperature"])
        z = ctx.generator.sample_latent(
            int(self.params["batch"]), generator=ctx.rng, device=ctx.device
        )
        with torch.no_grad(), batch_statistics(ctx.source_generator):
            source_image, source_features = ctx.source_generator.forward_features(z)
        with batch_statistics(ctx.generator):
            adapted_image, adapted_features = ctx.generator.forward_features(z)
        block = self._pick(ctx, feature_blocks(adapted_features, ctx.real))
        g_term = info_nce(adapted_features[block], source_features[block], tau)

        d_term = self.discriminator_term(ctx, adapted_image, source_image)
        return g_term, d_term

    def discriminator_term(
        self, ctx: TrainContext, adapted_image: torch.Tensor, source_image: torch.Tensor
    ) -> torch.Tensor:
        """D-side InfoNCE: anchor D(G_t(z_i)), positive D(G_s(z_i)), negatives D's
        features of up to ``negatives`` real shots, at a D block drawn per call. Lowest
        when each adapted image is its source counterpart; highest when it copies a shot."""
        tau = float(self.params["temperature"])
        discriminator: Discriminator = ctx.discriminator  # type: ignore[assignment]
        n_neg = min(int(self.params["negatives"]), len(ctx.real))
        order = torch.randperm(len(ctx.real), generator=ctx.rng)[:n_neg].to(ctx.real.device)
        images = torch.cat([adapted_image, source_image, ctx.real[order]])
        with batch_statistics(discriminator):
            _, d_features = discriminator.forward_features(self.augment(ctx, images))
        d_block = self._pick(ctx, discriminator_blocks(d_features))
        n = len(adapted_image)
        feats = d_features[d_block]
        return info_nce_with_negatives(feats[:n], feats[n : 2 * n], feats[2 * n :], tau)

    def generator_loss(self, ctx: TrainContext, step: TrainStep) -> torch.Tensor | None:
        g_term, d_term = self.contrastive_terms(ctx)
        ctx.log("dcl_g", g_term)
        ctx.log("dcl_d", d_term)
        ctx.state["dcl_last"] = (g_term.detach(), d_term.detach())
        return float(self.params["g_weight"]) * g_term + float(self.params["d_weight"]) * d_term

    def extra_metrics(self, ctx: TrainContext) -> dict[str, float]:
        metrics = self.patch.metrics(ctx) if self.patch is not None else {}
        if "dcl_last" in ctx.state:
            g_term, d_term = ctx.state["dcl_last"]
            metrics.update(dcl_final_g=float(g_term), dcl_final_d=float(d_term))
        return metrics
