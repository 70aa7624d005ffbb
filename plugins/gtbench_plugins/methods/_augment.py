"""Differentiable augmentation applied identically to real and fake images at D's input:
a module the built-in methods share (DiffAugment's pipeline, ADA's colour transforms),
not part of the core, which knows no augmentation.

The three DiffAugment transforms (Zhao et al., NeurIPS 2020): colour (brightness,
saturation, contrast), translation (up to 1/8 of the size, zero padding) and cutout (a
square of half the size). Each is differentiable with respect to the images, so the
generator's gradient flows through it. Randomness comes from a ``torch.Generator`` so
runs are reproducible; ``probability`` applies each transform to a random subset of the
batch (what ADA adapts).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

Transform = Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]


def _uniform(x: torch.Tensor, rng: torch.Generator | None, *shape: int) -> torch.Tensor:
    return torch.rand(shape, generator=rng).to(device=x.device, dtype=x.dtype)


def brightness(x: torch.Tensor, rng: torch.Generator | None) -> torch.Tensor:
    return x + (_uniform(x, rng, x.shape[0], 1, 1, 1) - 0.5)


def saturation(x: torch.Tensor, rng: torch.Generator | None) -> torch.Tensor:
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (_uniform(x, rng, x.shape[0], 1, 1, 1) * 2) + mean


def contrast(x: torch.Tensor, rng: torch.Generator | None) -> torch.Tensor:
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (_uniform(x, rng, x.shape[0], 1, 1, 1) + 0.5) + mean


def translation(x: torch.Tensor, rng: torch.Generator | None, ratio: float = 0.125) -> torch.Tensor:
    """Shift by up to ``ratio`` of the size; vacated pixels become zero."""
    n, _, h, w = x.shape
    max_dy, max_dx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    shift = torch.rand((n, 2), generator=rng)
    dy = (shift[:, 0] * (2 * max_dy + 1)).long() - max_dy
    dx = (shift[:, 1] * (2 * max_dx + 1)).long() - max_dx
    ys = torch.arange(h).view(1, h, 1) - dy.view(n, 1, 1)
    xs = torch.arange(w).view(1, 1, w) - dx.view(n, 1, 1)
    valid = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
    index = (ys.clamp(0, h - 1) * w + xs.clamp(0, w - 1)).to(x.device)
    flat = x.flatten(2)
    gathered = flat.gather(2, index.flatten(1).unsqueeze(1).expand(-1, x.shape[1], -1))
    return gathered.view_as(x) * valid.to(x.device, x.dtype).unsqueeze(1)


def cutout(x: torch.Tensor, rng: torch.Generator | None, ratio: float = 0.5) -> torch.Tensor:
    """Zero a square of ``ratio`` of the size at a random position."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    centre = torch.rand((n, 2), generator=rng)
    cy = (centre[:, 0] * (h + 1 - ch % 2)).long()
    cx = (centre[:, 1] * (w + 1 - cw % 2)).long()
    ys = torch.arange(h).view(1, h, 1)
    xs = torch.arange(w).view(1, 1, w)
    top = (cy - ch // 2).view(n, 1, 1)
    left = (cx - cw // 2).view(n, 1, 1)
    inside = (ys >= top) & (ys < top + ch) & (xs >= left) & (xs < left + cw)
    return x * (~inside).to(x.device, x.dtype).unsqueeze(1)


POLICIES: dict[str, Sequence[Transform]] = {
    "color": (brightness, saturation, contrast),
    "translation": (translation,),
    "cutout": (cutout,),
}


def parse_policy(policy: str) -> list[str]:
    """``"color,translation,cutout"`` to a checked list; ``""`` or ``"none"`` to []."""
    names = [p.strip() for p in policy.split(",") if p.strip() and p.strip() != "none"]
    for name in names:
        if name not in POLICIES:
            raise ValueError(f"unknown augmentation {name!r}; choose from {', '.join(POLICIES)}")
    return names


class DiffAugmentPipeline:
    """Callable augmenting a batch with a policy, each transform applied with ``probability``."""

    def __init__(self, policy: str, rng: torch.Generator | None = None, probability: float = 1.0):
        self.names = parse_policy(policy)
        self.rng = rng
        self.probability = probability

    def __bool__(self) -> bool:
        return bool(self.names)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.names:
            for transform in POLICIES[name]:
                if self.probability >= 1.0:
                    x = transform(x, self.rng)
                elif self.probability > 0.0:
                    chosen = torch.rand((x.shape[0],), generator=self.rng) < self.probability
                    mask = chosen.to(x.device, x.dtype).view(-1, 1, 1, 1)
                    x = mask * transform(x, self.rng) + (1 - mask) * x
        return x
