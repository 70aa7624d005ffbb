"""StyleGAN2's low-level operations in plain PyTorch (no CUDA/C++ extension to compile).

``upfirdn2d`` follows the semantics of NVIDIA's (and rosinality's) kernel: zero-insertion
upsampling by ``up``, padding (negative values crop), true 2-D convolution with the FIR
``kernel`` (i.e. correlation with the flipped kernel) and decimation by ``down``. It is
built from ``F.pad`` and a depthwise ``F.conv2d`` so autograd (R1's double backward
included), ``channels_last`` and autocast all work without custom code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["fused_leaky_relu", "make_kernel", "upfirdn2d", "LRELU_GAIN"]

LRELU_GAIN = math.sqrt(2.0)  # keeps the activations' second moment through leaky ReLU


def make_kernel(taps: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """A 2-D FIR kernel summing to one; a 1-D ``taps`` becomes its outer product."""
    kernel = torch.as_tensor(taps, dtype=torch.float32)
    if kernel.ndim == 1:
        kernel = kernel[None, :] * kernel[:, None]
    return kernel / kernel.sum()


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    first, second = value
    return int(first), int(second)


def upfirdn2d(
    x: torch.Tensor,
    kernel: torch.Tensor,
    up: int = 1,
    down: int = 1,
    pad: int | Sequence[int] = (0, 0),
) -> torch.Tensor:
    """Upsample (zero insertion), pad, FIR-filter and downsample an N×C×H×W batch.

    ``pad`` is ``(before, after)`` applied to both spatial axes, in upsampled pixels;
    negative values crop. Output size per axis: ``(size*up + p0 + p1 - k) // down + 1``.
    """
    if x.ndim != 4:
        raise ValueError(f"upfirdn2d expects N×C×H×W, got shape {tuple(x.shape)}")
    if kernel.ndim != 2:
        raise ValueError(f"upfirdn2d expects a 2-D kernel, got shape {tuple(kernel.shape)}")
    pad0, pad1 = _pair(pad)
    batch, channels, height, width = x.shape
    if up > 1:
        # interleave each pixel with up-1 zeros along both axes
        x = x.reshape(batch, channels, height, 1, width, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(batch, channels, height * up, width * up)
    x = F.pad(x, [max(pad0, 0), max(pad1, 0), max(pad0, 0), max(pad1, 0)])
    if pad0 < 0 or pad1 < 0:
        x = x[
            :,
            :,
            max(-pad0, 0) : x.shape[2] - max(-pad1, 0),
            max(-pad0, 0) : x.shape[3] - max(-pad1, 0),
        ]
    # true convolution = correlation with the flipped kernel; decimation = stride
    weight = torch.flip(kernel, [0, 1]).to(dtype=x.dtype, device=x.device)
    weight = weight[None, None].expand(channels, 1, *kernel.shape)
    return F.conv2d(x, weight, stride=down, groups=channels)


def fused_leaky_relu(
    x: torch.Tensor,
    bias: torch.Tensor | None = None,
    negative_slope: float = 0.2,
    scale: float = LRELU_GAIN,
) -> torch.Tensor:
    """Add a per-channel bias (dimension 1), leaky-ReLU, multiply by ``scale`` (√2)."""
    if bias is not None:
        shape = [1, bias.shape[0]] + [1] * (x.ndim - 2)
        x = x + bias.view(shape).to(x.dtype)
    return F.leaky_relu(x, negative_slope) * scale
