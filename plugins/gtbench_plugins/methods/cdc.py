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

Facts from utkarshojha/few-shot-gan-adaptation ``train.py`` and ``model.py``:
``--kl_wt 1000``, ``--subspace_freq 4`` (anchor iteration when ``i % 4 == 0``),
``--subspace_std 0.1``, ``--n_train`` anchors = shots, ``--feat_const_batch 4``,
``--lr 0.002``, ``--batch 4``, ``--iter 5002``, ``--r1 10``. Each row of the KL draws its
own generator layer as ``numpy.random.randint(1, n_latent - 1)``: every synthesis conv
output except the 4×4 one (the RGB skip is never a feature). The KL is
``nn.KLDivLoss()(log(softmax(target)), softmax(source))`` with the default mean
reduction. ``--highp 1`` makes the patch head always read the first 512-channel 32×32 D
feature at 256 px, whose head output sees 66 px (about a quarter of the image side); the
head is ``ConvLayer(512, 1, 3)``: a 3×3 conv followed by a biased leaky ReLU (0.2, ×√2).
Neither generator is ever switched to eval mode, so on a BatchNorm generator both are
compared on the batch's statistics here (:func:`batch_statistics`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from gtbench.api import Discriminator, LogUniform, Method, Parameter

if TYPE_CHECKING:
    from gtbench.api import Generator, TrainContext, TrainStep

HEAD_NAME = "cdc_patch_head"
# The authors' --kl_wt 1000 makes the KL's gradient 26x the adversarial one on the default
# suite (reg_grad_ratio, docs/methods.md); 40 brings it to about one.
KL_WEIGHT = 40.0
# Receptive field of the authors' patch head over the image side: 66 px of 256.
PATCH_FRACTION = 66 / 256
# The authors' optimiser of the patch head (``e_optim``): --lr 0.002 × d_reg_ratio 16/17.
AUTHORS_HEAD_LR = 0.002 * 16 / 17


@contextlib.contextmanager
def batch_statistics(network: nn.Module) -> Iterator[None]:
    """Run ``network``'s BatchNorm layers on the batch's own statistics (train mode)
    without touching their running statistics, whatever mode the network is in.

    The adapted G trains in train mode while the trainer keeps the frozen source G in
    eval mode; comparing them that way mixes batch and running statistics, so the KL is
    not zero at the start. Inside this context both normalise with the statistics of the
    same latents, as the authors' two generators (both left in train mode), and
    identical weights give identical features: the KL is exactly zero until G moves."""
    norms = [m for m in network.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.training, m.track_running_stats) for m in norms]
    for m in norms:
        m.train()
        m.track_running_stats = False  # batch statistics, running buffers left alone
    try:
        yield
    finally:
        for m, (training, track) in zip(norms, saved, strict=True):
            m.train(training)
            m.track_running_stats = track


def generator_features(generator: Generator, z: torch.Tensor) -> list[torch.Tensor]:
    """Per-block features of ``generator`` on ``z``, BatchNorm on the batch's statistics."""
    with batch_statistics(generator):
        return generator.forward_features(z)[1]


def feature_blocks(features: list[torch.Tensor], image: torch.Tensor) -> list[int]:
    """Blocks the authors' layer range maps to: ``randint(1, n_latent − 1)`` reads every
    synthesis conv output except the 4×4 one, never the RGB image. Here: every spatial
    block feature larger than the smallest map, except an output shaped like the image
    (a block that ends in the to-RGB layer); on networks too shallow for that, every
    spatial block."""
    spatial = [i for i, f in enumerate(features) if f.ndim == 4]
    if not spatial:
        raise ValueError("the generator exposes no spatial block feature")
    smallest = min(features[i].shape[-1] for i in spatial)
    chosen = [
        i
        for i in spatial
        if features[i].shape[-1] > smallest and features[i].shape[1:] != image.shape[1:]
    ]
    return chosen or spatial


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


class PatchHead(nn.Module):
    """The authors' ``ConvLayer(C, 1, 3)``: 3×3 conv, bias, leaky ReLU (0.2) scaled by √2."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 1, 3, 1, 1, bias=False)
        self.bias = nn.Parameter(torch.zeros(1, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.conv(x) + self.bias, 0.2) * math.sqrt(2)


@torch.no_grad()
def _probe_features(discriminator: Discriminator, images: torch.Tensor) -> list[torch.Tensor]:
    was_training = discriminator.training
    discriminator.eval()  # a shape probe: leave BatchNorm statistics alone
    try:
        return discriminator.forward_features(images)[1]
    finally:
        discriminator.train(was_training)


def head_receptive_fields(discriminator: Discriminator, image: torch.Tensor) -> dict[int, int]:
    """Receptive field (pixels along one side, at most the image side) of a 3×3 head on
    each spatial D block feature, measured as the extent of the input gradient of the
    head's central output (D in eval mode, a random input, D's parameters untouched)."""
    was_training = discriminator.training
    discriminator.eval()
    x = torch.randn(image[:1].shape, generator=torch.Generator().manual_seed(0))
    x = x.to(image.device).requires_grad_(True)
    fields: dict[int, int] = {}
    try:
        with torch.enable_grad():
            _, features = discriminator.forward_features(x)
            spatial = [i for i, f in enumerate(features) if f.ndim == 4]
            for i in spatial:
                f = features[i]
                ones = torch.ones(1, f.shape[1], 3, 3, device=f.device, dtype=f.dtype)
                out = F.conv2d(f, ones, padding=1)
                centre = out[0, 0, out.shape[2] // 2, out.shape[3] // 2]
                (grad,) = torch.autograd.grad(centre, x, retain_graph=True)
                touched = grad.abs().sum(dim=(0, 1)) > 0
                rows = touched.any(dim=1).nonzero()
                cols = touched.any(dim=0).nonzero()
                if len(rows) and len(cols):
                    fields[i] = int(max(rows.max() - rows.min(), cols.max() - cols.min())) + 1
    finally:
        discriminator.train(was_training)
    return fields


def choose_patch_block(
    discriminator: Discriminator, image: torch.Tensor, name: str, fraction: float
) -> int:
    """Index of the D block feature the patch head reads.

    ``name`` picks a block explicitly; otherwise the block whose head sees the fraction of
    the image side closest to ``fraction`` (the authors': 66 px of 256), preferring the
    smaller patch on ties. The choice never reads the image 4×4 map of a 32 px D, whose
    head would see the whole image."""
    names = discriminator.block_names()
    features = _probe_features(discriminator, image[:1])
    if name:
        if name not in names:
            raise ValueError(f"cdc: patch_block {name!r} is not a D block ({', '.join(names)})")
        index = names.index(name)
        if features[index].ndim != 4:
            raise ValueError(f"cdc: D block {name!r} has no spatial feature map")
        return index
    fields = head_receptive_fields(discriminator, image)
    if not fields:
        raise ValueError("cdc: the discriminator has no spatial feature for the patch head")
    side = image.shape[-1]
    return min(fields, key=lambda i: (abs(fields[i] / side - fraction), fields[i]))


PATCH_PARAMETERS: dict[str, Parameter] = {
    "anchor_every": Parameter(
        4,
        "image-level (anchor) iteration every k steps, patch-level otherwise "
        "(--subspace_freq 4); 1 = image-level always",
    ),
    "anchor_std": Parameter(0.1, "noise around the anchor latents (--subspace_std 0.1)"),
    "head_lr": Parameter(
        AUTHORS_HEAD_LR,
        "learning rate of the fresh patch head (the authors' e_optim: 0.002 x 16/17); "
        "0 = D's learning rate",
    ),
    "patch_block": Parameter(
        "",
        "D block whose feature the patch head reads; empty: the block whose 3x3 head "
        "sees the fraction of the image side closest to the authors' (66 px of 256)",
    ),
}


class PatchAdversarial:
    """CDC's anchor / patch adversarial scheme (its ``Patch_Discriminator`` + ``Extra``),
    shared by CDC and by DCL, whose official ``model.py`` ships the same ``PatchGAN``.

    ``len(shots)`` anchor latents are drawn once; every ``anchor_every``-th step both
    updates use anchors + N(0, ``anchor_std``²) noise and the image-level loss; the other
    steps sample the prior and the loss reads a 3×3 patch head on an intermediate D
    feature. The head is a D submodule (``HEAD_NAME``) trained by the trainer's D
    optimiser in a parameter group of its own at ``head_lr``. ``prefix`` names the
    method's state keys and logged columns."""

    def __init__(self, params: dict, prefix: str) -> None:
        self.params = params
        self.prefix = prefix

    def setup(self, ctx: TrainContext) -> None:
        assert ctx.discriminator is not None
        ctx.state[f"{self.prefix}_anchors"] = ctx.generator.sample_latent(
            len(ctx.real), generator=ctx.rng, device=ctx.device
        )
        discriminator = ctx.discriminator
        index = choose_patch_block(
            discriminator, ctx.real, str(self.params["patch_block"]), PATCH_FRACTION
        )
        channels = _probe_features(discriminator, ctx.real[:1])[index].shape[1]
        with ctx.seeded_init():
            head = PatchHead(channels)
        # a D submodule, so the trainer's D optimiser (built after setup) trains it;
        # D's forward_features never calls it
        discriminator.add_module(HEAD_NAME, head.to(ctx.device))
        ctx.state[f"{self.prefix}_patch_index"] = index

    def anchor_step(self, ctx: TrainContext) -> bool:
        every = int(self.params["anchor_every"])
        return every <= 1 or ctx.step % every == 0

    def sample_latent(self, ctx: TrainContext, n: int) -> torch.Tensor | None:
        """Anchor latents + noise on image-level steps; None: the prior."""
        if not self.anchor_step(ctx):
            return None
        anchors = ctx.state[f"{self.prefix}_anchors"]
        pick = torch.randint(len(anchors), (n,), generator=ctx.rng).to(anchors.device)
        noise = torch.randn(anchors[pick].shape, generator=ctx.rng).to(anchors.device)
        return anchors[pick] + float(self.params["anchor_std"]) * noise

    def patch_logits(self, ctx: TrainContext, features: list[torch.Tensor]) -> torch.Tensor | None:
        """N × patches logits of the head on patch-level steps; None: image-level."""
        if self.anchor_step(ctx):
            return None
        head = getattr(ctx.discriminator, HEAD_NAME)
        return head(features[ctx.state[f"{self.prefix}_patch_index"]]).flatten(1)

    def param_groups(
        self, ctx: TrainContext, default: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """D's groups: the head at ``head_lr`` (the authors train it with an optimiser of
        its own at their lr), the rest of D at ``lr_d``."""
        head_lr = float(self.params["head_lr"])
        if head_lr <= 0 or ctx.discriminator is None:
            return default
        head = list(getattr(ctx.discriminator, HEAD_NAME).parameters())
        ids = {id(p) for p in head}
        rest = [p for p in ctx.discriminator.parameters() if id(p) not in ids]
        return [{"params": rest}, {"params": head, "lr": head_lr}]

    def record_ratio(self, ctx: TrainContext, step: TrainStep) -> None:
        """The trainer's ‖∇ extra‖ / ‖∇ adversarial‖ of a measured G update, split by
        kind: image-level (anchor) and patch-level steps differ by an order of magnitude."""
        if step.update != "g" or step.reg_grad_ratio is None:
            return
        kind = "image" if self.anchor_step(ctx) else "patch"
        ctx.log(f"{self.prefix}_ratio_{kind}", step.reg_grad_ratio)
        values = ctx.state.setdefault(f"{self.prefix}_ratios_{kind}", [])
        values.append(step.reg_grad_ratio.detach())

    def metrics(self, ctx: TrainContext) -> dict[str, float]:
        """Mean ratio per kind over the measured updates (the first of every log row and
        the last 10 %)."""
        out = {}
        for kind in ("image", "patch"):
            values = ctx.state.get(f"{self.prefix}_ratios_{kind}")
            if values:
                out[f"{self.prefix}_reg_grad_ratio_{kind}"] = float(torch.stack(values).mean())
        return out


class CDC(Method):
    """Cross-domain distance consistency on G, anchor/patch adversarial losses on D."""

    description = "cross-domain distance consistency (KL of pairwise similarities) + patch D"
    paper = (
        "Ojha, Li, Lu, Efros, Lee, Shechtman, Zhang. Few-shot Image Generation via "
        "Cross-domain Correspondence, CVPR 2021"
    )
    code = "github.com/utkarshojha/few-shot-gan-adaptation (train.py)"
    version = "3"
    # The KL regulariser lives on G; the patch head is new in every case, so a freshly
    # initialised D (G-only sources) still runs, as plain CDC without D's prior.
    requires_discriminator = False
    parameters: ClassVar = {
        "kl_weight": Parameter(
            KL_WEIGHT,
            "weight of the distance-consistency KL, calibrated so reg_grad_ratio is of "
            "order one on the default suite (the authors' --kl_wt 1000 gives 26 there)",
            search=LogUniform(KL_WEIGHT / 10, KL_WEIGHT * 10),
        ),
        "kl_batch": Parameter(4, "latents per KL term (--feat_const_batch 4)"),
        **PATCH_PARAMETERS,
    }

    # ------------------------------------------------------------------ setup
    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self.patch = PatchAdversarial(self.params, "cdc")

    def setup(self, ctx: TrainContext) -> None:
        if ctx.discriminator is None:
            raise ValueError("cdc needs a discriminator (pretrained or fresh)")
        self.patch.setup(ctx)

    def param_groups(self, ctx: TrainContext, network: str) -> list[dict[str, Any]]:
        default = super().param_groups(ctx, network)
        return self.patch.param_groups(ctx, default) if network == "d" else default

    # ------------------------------------------------------------------ latents / D
    def _anchor_step(self, ctx: TrainContext) -> bool:
        return self.patch.anchor_step(ctx)

    def sample_latent(self, ctx: TrainContext, n: int) -> torch.Tensor:
        z = self.patch.sample_latent(ctx, n)
        return super().sample_latent(ctx, n) if z is None else z

    def discriminator_logits(
        self, ctx: TrainContext, output: torch.Tensor, features: list[torch.Tensor]
    ) -> torch.Tensor:
        logits = self.patch.patch_logits(ctx, features)
        return super().discriminator_logits(ctx, output, features) if logits is None else logits

    # ------------------------------------------------------------------ G loss
    def distance_consistency(self, ctx: TrainContext, z: torch.Tensor) -> torch.Tensor:
        """KL between the source's and the adapted G's pairwise-similarity softmaxes on
        latents ``z``, both generators' BatchNorm on the batch's statistics; each row
        draws its block from :func:`feature_blocks`. Gradients reach only the adapted G."""
        n = len(z)
        with torch.no_grad():
            source_features = generator_features(ctx.source_generator, z)
        adapted_features = generator_features(ctx.generator, z)
        choices = feature_blocks(adapted_features, ctx.real)
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
        ctx.log("cdc_kl", kl)
        return float(self.params["kl_weight"]) * kl

    def after_step(self, ctx: TrainContext, step: TrainStep) -> None:
        self.patch.record_ratio(ctx, step)

    def extra_metrics(self, ctx: TrainContext) -> dict[str, float]:
        metrics = self.patch.metrics(ctx)
        if "cdc_kl" in ctx.state:
            metrics["cdc_final_kl"] = float(ctx.state["cdc_kl"])
        return metrics
