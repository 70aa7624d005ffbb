"""ADA (Karras et al., NeurIPS 2020): augmentation whose strength p adapts to how much D
overfits.

Every ``interval`` D minibatches the overfitting heuristic r_t = E[sign(D(real))] (read
through the trainer's ``observe`` hook) is compared with ``target``; p moves by
sign(r_t − target)·(batch·interval)/(kimg·1000), so it can go from 0 to 1 in ``kimg``
thousand real images. ADA's 100 kimg (transfer) assumes runs of thousands of kimg; here a
run sees a few thousand images, so by default ``kimg`` scales with the budget.

Each transform is applied to each image independently with probability p, to real and
fake alike, so the augmentations do not leak into G at p < ~0.8 (the paper's argument).

Pipeline, and where it differs from ADA's ``bgc``: blit (x-flip, 90° rotations, integer
translation of up to 1/8 of the size with reflection) is the same; geometric (isotropic
and anisotropic scaling, arbitrary rotation, fractional translation, which need ADA's
anti-aliasing filters) is left out; colour uses DiffAugment's brightness, saturation and
contrast ranges instead of ADA's (no luma flip or hue rotation). All transforms are
differentiable, so G gets gradients through them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

import torch

from gtbench.api import Method, Parameter, Uniform

from ._augment import brightness, contrast, saturation

if TYPE_CHECKING:
    from gtbench.api import TrainContext, TrainStep

Transform = Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]


def xflip(x: torch.Tensor, rng: torch.Generator | None) -> torch.Tensor:
    """Mirror each image with probability 1/2 (ADA draws the flip, like its other blits)."""
    flip = (torch.rand((x.shape[0],), generator=rng) < 0.5).to(x.device).view(-1, 1, 1, 1)
    return torch.where(flip, x.flip(3), x)


def rotate90(x: torch.Tensor, rng: torch.Generator | None) -> torch.Tensor:
    """Rotate each image by a random multiple of 90° (0 to 3 quarter turns, as ADA)."""
    if x.shape[2] != x.shape[3]:
        return x  # a quarter turn would change the shape; ADA works on square images
    turns = torch.randint(0, 4, (x.shape[0],), generator=rng).to(x.device)
    out = x
    for k in (1, 2, 3):
        chosen = (turns == k).view(-1, 1, 1, 1)
        out = torch.where(chosen, torch.rot90(x, k, dims=(2, 3)), out)
    return out


def _reflect(index: torch.Tensor, size: int) -> torch.Tensor:
    """Fold any integer coordinate into [0, size) by mirror reflection (no edge repeat)."""
    if size == 1:
        return torch.zeros_like(index)
    period = 2 * size - 2
    folded = index.remainder(period)
    return (size - 1) - (folded - (size - 1)).abs()


def integer_translation(
    x: torch.Tensor, rng: torch.Generator | None, ratio: float = 0.125
) -> torch.Tensor:
    """Shift by a whole number of pixels up to ``ratio`` of the size, reflecting at borders."""
    n, c, h, w = x.shape
    shift = (torch.rand((n, 2), generator=rng) * 2 - 1) * ratio
    dy = torch.round(shift[:, 0] * h).long()
    dx = torch.round(shift[:, 1] * w).long()
    ys = _reflect(torch.arange(h).view(1, h, 1) - dy.view(n, 1, 1), h)
    xs = _reflect(torch.arange(w).view(1, 1, w) - dx.view(n, 1, 1), w)
    index = (ys * w + xs).flatten(1).to(x.device)
    return x.flatten(2).gather(2, index.unsqueeze(1).expand(-1, c, -1)).view_as(x)


PIPELINE: tuple[Transform, ...] = (
    xflip,
    rotate90,
    integer_translation,
    brightness,
    saturation,
    contrast,
)


class AdaptiveAugment:
    """Applies each transform of :data:`PIPELINE` to each image with probability ``p``."""

    def __init__(self, rng: torch.Generator | None, p: float = 0.0) -> None:
        self.rng = rng
        self.p = p

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.p <= 0.0:
            return x
        for transform in PIPELINE:
            chosen = torch.rand((x.shape[0],), generator=self.rng) < self.p
            if not bool(chosen.any()):
                continue
            x = torch.where(chosen.to(x.device).view(-1, 1, 1, 1), transform(x, self.rng), x)
        return x


class ADA(Method):
    """Fine-tuning with adaptive discriminator augmentation; p starts at ``p_init``."""

    description = "fine-tune G and D with adaptive augmentation (p driven by sign of D(real))"
    paper = (
        "Karras, Aittala, Hellsten, Laine, Lehtinen, Aila. Training Generative Adversarial "
        "Networks with Limited Data, NeurIPS 2020"
    )
    code = "github.com/NVlabs/stylegan2-ada-pytorch (train.py, training/training_loop.py)"
    version = "3"
    parameters: ClassVar = {
        "target": Parameter(
            0.6, "target value of r_t = E[sign(D(real))] (ADA: 0.6)", search=Uniform(0.4, 0.8)
        ),
        "interval": Parameter(4, "D minibatches between p updates (ADA: 4)"),
        "kimg": Parameter(
            0.0,
            "thousand real images for p to go 0→1; 0 = scale with the budget: "
            "traverse_fraction × iters × batch / 1000 (ADA: 500 from scratch, 100 when "
            "resuming a pretrained model, for runs of thousands of kimg)",
        ),
        "traverse_fraction": Parameter(
            0.5,
            "with kimg = 0: fraction of the budget's real images in which p could go 0→1",
        ),
        "p_init": Parameter(0.0, "initial augmentation probability (ADA: 0)"),
    }

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        if self.params["interval"] < 1 or self.params["kimg"] < 0:
            raise ValueError("ada: interval must be >= 1 and kimg >= 0 (0: scale with budget)")
        if not 0 < self.params["traverse_fraction"] <= 1:
            raise ValueError("ada: traverse_fraction must be in (0, 1]")
        self.pipe: AdaptiveAugment | None = None
        self._sign_sum: torch.Tensor | None = None
        self._sign_count = 0
        self._d_updates = 0
        self._p_sum = 0.0
        self.kimg = math.nan
        self.last_rt = math.nan

    @property
    def p(self) -> float:
        return self.pipe.p if self.pipe is not None else float(self.params["p_init"])

    def resolved_kimg(self, ctx: TrainContext) -> float:
        """``kimg``, or with ``kimg = 0`` the budget-scaled value: p could then go from 0
        to 1 within ``traverse_fraction`` of the real images D sees in the run."""
        if self.params["kimg"] > 0:
            return float(self.params["kimg"])
        images = ctx.config.iters * ctx.config.batch_size
        return float(self.params["traverse_fraction"]) * images / 1000

    def setup(self, ctx: TrainContext) -> None:
        self.pipe = AdaptiveAugment(ctx.rng, float(self.params["p_init"]))
        self._sign_sum, self._sign_count, self._d_updates, self._p_sum = None, 0, 0, 0.0
        self.kimg = self.resolved_kimg(ctx)
        self.last_rt = math.nan

    def augment(self, ctx: TrainContext, images: torch.Tensor) -> torch.Tensor:
        if self.pipe is None:
            self.setup(ctx)
        assert self.pipe is not None
        return self.pipe(images)

    def after_step(self, ctx: TrainContext, step: TrainStep) -> None:
        """After every D update, gather sign(D(real)) on the (augmented) reals D judged, as
        ADA's ``Loss/signs/real``; after every ``interval``-th: p += sign(r_t − target) ·
        batch · interval / (kimg · 1000), clamped to [0, 1]."""
        if step.update != "d":
            return
        assert self.pipe is not None and step.d_real is not None
        signs = step.d_real.detach().sign().sum()
        self._sign_sum = signs if self._sign_sum is None else self._sign_sum + signs
        self._sign_count += step.d_real.numel()
        self._d_updates += 1
        if self._d_updates % self.params["interval"] == 0 and self._sign_count > 0:
            assert self._sign_sum is not None
            rt = float(self._sign_sum) / self._sign_count
            difference = rt - self.params["target"]
            direction = math.copysign(1.0, difference) if difference != 0 else 0.0
            images = ctx.config.batch_size * self.params["interval"]
            self.pipe.p = min(max(self.pipe.p + direction * images / (self.kimg * 1000), 0.0), 1.0)
            self.last_rt = rt
            self._sign_sum, self._sign_count = None, 0
        self._p_sum += self.pipe.p
        ctx.log("aug_p", self.pipe.p)
        if math.isfinite(self.last_rt):
            ctx.log("ada_rt", self.last_rt)

    def extra_metrics(self, ctx: TrainContext) -> dict[str, float]:
        metrics = {"ada_p": self.p, "ada_kimg": self.kimg}
        if self._d_updates:
            metrics["ada_p_mean"] = self._p_sum / self._d_updates
        if math.isfinite(self.last_rt):
            metrics["ada_rt"] = self.last_rt
        return metrics
