"""CDC (Ojha et al., CVPR 2021): few-shot adaptation via cross-domain correspondence.

Two changes to fine-tuning:

1. *Distance consistency.* For a batch of latents, each sample's feature at a randomly
   chosen generator block is compared (cosine similarity) with the other samples'
   features at that block, in the frozen source G and in the adapted G; the rows are
   softmaxed and the adapted distribution is pulled onto the source one with a KL
   term. The adapted generator keeps the source's *relative* geometry (diversity)
   while its appearance moves to the target.
2. *Anchor / patch discriminator.* A few fixed "anchor" latents (as many as shots) plus
   small noise get the usual image-level adversarial loss every ``anchor_every``-th
   iteration; the other iterations sample the whole prior and get a patch-level loss
   from a small conv head on an intermediate discriminator feature, so only the anchor
   region is asked to look like whole target images.

Facts from utkarshojha/few-shot-gan-adaptation ``train.py`` (defaults of its argparse):
``--kl_wt 1000``, ``--subspace_freq 4`` (anchor iteration when ``i % 4 == 0``),
``--subspace_std 0.1``, ``--n_train`` anchors = shots, ``--feat_const_batch 4``,
``--highp 1`` (always the first candidate D feature: a 32×32 map at 256 px),
``--lr 0.002``, ``--batch 4``, ``--iter 5002``, ``--r1 10``. The KL is
``nn.KLDivLoss()(log(softmax(target)), softmax(source))`` with the default mean
reduction, i.e. the mean over all N(N−1) entries of ``p_s (log p_s − log p_t)``; each
row picks its own random layer among all but the first and last generator layers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from gtbench.api import Discriminator, LogUniform, Method, Parameter

if TYPE_CHECKING:
    from gtbench.api import TrainContext, TrainStep

HEAD_NAME = "cdc_patch_head"


def distance_distributions(features: list[torch.Tensor], rows: list[int]) -> torch.Tensor:
    """Row i: log-softmax over j ≠ i of cos(f_i, f_j) at block ``rows[i]``.

    Returns an N×(N−1) tensor of log-probabilities (log-softmax is the stable form of the
    authors' ``log(softmax(·))``)."""
    n = len(rows)
    out = []
    for i, block in enumerate(rows):
        flat = features[block].reshape(n, -1)
        sims = F.cosine_similarity(flat[i : i + 1], flat, dim=1)  # N
        keep = torch.arange(n, device=sims.device) != i
        out.append(torch.log_softmax(sims[keep], dim=0))
    return torch.stack(out)


def kl_consistency(log_p_source: torch.Tensor, log_p_adapted: torch.Tensor) -> torch.Tensor:
    """``nn.KLDivLoss()(log_p_adapted, p_source)``: mean of p_s (log p_s − log p_a)."""
    return (log_p_source.exp() * (log_p_source - log_p_adapted)).mean()


def candidate_blocks(n_blocks: int) -> list[int]:
    """Blocks the KL may read: all but the first and the last (the authors' layer range),
    or all of them on networks too shallow for that."""
    inner = list(range(1, n_blocks - 1))
    return inner if inner else list(range(n_blocks))


def choose_patch_block(
    features: list[torch.Tensor], resolution: int, name: str, names: list[str]
) -> int:
    """Index of the D feature the patch head reads.

    ``name`` picks a block explicitly; otherwise the first spatial feature at most
    resolution/8 wide (32×32 at 256 px, as in the authors' code), else the last spatial
    one."""
    if name:
        if name not in names:
            raise ValueError(f"cdc: patch_block {name!r} is not a D block ({', '.join(names)})")
        index = names.index(name)
        if features[index].ndim != 4:
            raise ValueError(f"cdc: D block {name!r} has no spatial feature map")
        return index
    spatial = [i for i, f in enumerate(features) if f.ndim == 4]
    if not spatial:
        raise ValueError("cdc: the discriminator has no spatial feature for the patch head")
    for i in spatial:
        if features[i].shape[-1] <= max(resolution // 8, 1):
            return i
    return spatial[-1]


class CDC(Method):
    """Cross-domain distance consistency on G, anchor/patch adversarial losses on D."""

    description = "cross-domain distance consistency (KL of pairwise similarities) + patch D"
    paper = (
        "Ojha, Li, Lu, Efros, Lee, Shechtman, Zhang. Few-shot Image Generation via "
        "Cross-domain Correspondence, CVPR 2021"
    )
    code = "github.com/utkarshojha/few-shot-gan-adaptation (train.py)"
    # The KL regulariser lives on G; the patch head is new in every case, so a freshly
    # initialised D (G-only sources) still runs, as plain CDC without D's prior.
    requires_discriminator = False
    parameters: ClassVar = {
        "kl_weight": Parameter(
            1000.0,
            "weight of the distance-consistency KL (--kl_wt 1000)",
            search=LogUniform(100.0, 10000.0),
        ),
        "kl_batch": Parameter(4, "latents per KL term (--feat_const_batch 4)"),
        "anchor_every": Parameter(
            4,
            "image-level (anchor) iteration every k steps, patch-level otherwise "
            "(--subspace_freq 4); 1 = image-level always",
        ),
        "anchor_std": Parameter(0.1, "noise around the anchor latents (--subspace_std 0.1)"),
        "patch_block": Parameter(
            "",
            "D block whose feature the patch head reads; empty: first map at most "
            "resolution/8 wide (the authors' 32x32 at 256 px)",
        ),
    }

    # ------------------------------------------------------------------ setup
    def setup(self, ctx: TrainContext) -> None:
        if ctx.discriminator is None:
            raise ValueError("cdc needs a discriminator (pretrained or fresh)")
        n_anchor = len(ctx.real)
        ctx.state["cdc_anchors"] = ctx.generator.sample_latent(
            n_anchor, generator=ctx.rng, device=ctx.device
        )
        self._attach_head(ctx, ctx.discriminator)
        ctx.source_generator.to(ctx.device)

    def _attach_head(self, ctx: TrainContext, discriminator: Discriminator) -> None:
        """Register the patch head as a D submodule so the trainer's D optimiser (built
        after setup) trains it with D; D's forward_features never calls it."""
        was_training = discriminator.training
        discriminator.eval()  # a shape probe: leave BatchNorm statistics alone
        with torch.no_grad():
            _, features = discriminator.forward_features(ctx.real[: min(len(ctx.real), 4)])
        discriminator.train(was_training)
        names = discriminator.block_names()
        index = choose_patch_block(
            features, ctx.real.shape[-1], str(self.params["patch_block"]), names
        )
        channels = features[index].shape[1]
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=ctx.rng))
        with torch.random.fork_rng(devices=[]):
            torch.random.default_generator.manual_seed(seed)  # CPU only, restored after
            head = nn.Conv2d(channels, 1, 3, 1, 1)
        discriminator.add_module(HEAD_NAME, head.to(ctx.device))
        ctx.state["cdc_patch_index"] = index

    # ------------------------------------------------------------------ latents / D
    def _anchor_step(self, ctx: TrainContext) -> bool:
        every = int(self.params["anchor_every"])
        return every <= 1 or ctx.step % every == 0

    def sample_latent(self, ctx: TrainContext, n: int) -> torch.Tensor:
        if not self._anchor_step(ctx):
            return super().sample_latent(ctx, n)
        anchors = ctx.state["cdc_anchors"]
        pick = torch.randint(len(anchors), (n,), generator=ctx.rng).to(anchors.device)
        noise = torch.randn(anchors[pick].shape, generator=ctx.rng).to(anchors.device)
        return anchors[pick] + float(self.params["anchor_std"]) * noise

    def discriminator_logits(
        self, ctx: TrainContext, output: torch.Tensor, features: list[torch.Tensor]
    ) -> torch.Tensor:
        if self._anchor_step(ctx):
            return super().discriminator_logits(ctx, output, features)
        head = getattr(ctx.discriminator, HEAD_NAME)
        return head(features[ctx.state["cdc_patch_index"]]).flatten(1)  # N × patches

    # ------------------------------------------------------------------ G loss
    def distance_consistency(self, ctx: TrainContext, z: torch.Tensor) -> torch.Tensor:
        """KL between the source's and the adapted G's pairwise-similarity softmaxes on
        latents ``z``; gradients reach only the adapted generator."""
        n = len(z)
        with torch.no_grad():
            _, source_features = ctx.source_generator.forward_features(z)
        _, adapted_features = ctx.generator.forward_features(z)
        choices = candidate_blocks(len(adapted_features))
        pick = torch.randint(len(choices), (n,), generator=ctx.rng).tolist()
        rows = [choices[k] for k in pick]
        log_source = distance_distributions(source_features, rows)
        log_adapted = distance_distributions(adapted_features, rows)
        return kl_consistency(log_source, log_adapted)

    def generator_loss(self, ctx: TrainContext, step: TrainStep) -> torch.Tensor | None:
        n = int(self.params["kl_batch"])
        if n < 2 or float(self.params["kl_weight"]) == 0:
            return None
        z = ctx.generator.sample_latent(n, generator=ctx.rng, device=ctx.device)
        kl = self.distance_consistency(ctx, z)
        ctx.state["cdc_kl"] = kl.detach()  # read at the end: no device sync per step
        return float(self.params["kl_weight"]) * kl

    def extra_metrics(self, ctx: TrainContext) -> dict[str, float]:
        return {"cdc_final_kl": float(ctx.state["cdc_kl"])} if "cdc_kl" in ctx.state else {}
