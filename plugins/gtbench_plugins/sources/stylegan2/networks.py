"""StyleGAN2 generator and discriminator (Karras et al., CVPR 2020) in plain PyTorch.

Module names and parameter shapes reproduce the state dict of rosinality's
``stylegan2-pytorch`` ``model.py`` (the format CDC, RSSA, DCL, AdAM and RICK release), so
``Generator.load_state_dict(ckpt["g_ema"])`` works on their files. The networks are also
gtbench :class:`~gtbench.api.Generator` / :class:`~gtbench.api.Discriminator` block
networks: ``blocks`` is a *view* — a ModuleDict that references the rosinality-named
submodules without being registered as a child — so block-wise freezing works while
``state_dict()`` keeps exactly rosinality's keys (no ``blocks.`` duplicates) and every
parameter appears once in ``parameters()``.

Equalised learning rate: weights are stored N(0, 1/lr_mul) and scaled at run time by
``lr_mul / sqrt(fan_in)``. Modulated convolutions scale the input by the style and
demodulate the output (the "non-fused" form): mathematically the same as the grouped
per-sample-weight convolution, but batch-independent weights suit cuDNN, autocast and
``channels_last``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gtbench.api import Discriminator, Generator

from .ops import fused_leaky_relu, make_kernel, upfirdn2d

__all__ = [
    "BLUR_KERNEL",
    "MEAN_LATENT_SAMPLES",
    "StyleGAN2Discriminator",
    "StyleGAN2Generator",
    "channel_count",
    "use_channels_last",
]

BLUR_KERNEL = (1, 3, 3, 1)
MEAN_LATENT_SAMPLES = 4096  # z's averaged for a truncation centre (rosinality's default)


def channel_count(resolution: int, channel_multiplier: int = 2, channel_max: int = 512) -> int:
    """Feature maps at ``resolution``: 512 up to 32 px, then 16384·multiplier / resolution.

    ``channel_max`` caps every width (512 reproduces the published configurations; tests use
    smaller values for speed)."""
    width = 512 if resolution <= 32 else 16384 * channel_multiplier // resolution
    return min(width, channel_max)


def _log2(size: int) -> int:
    log = int(round(math.log2(size)))
    if size < 8 or 2**log != size:
        raise ValueError(f"StyleGAN2 resolution must be a power of two ≥ 8, got {size}")
    return log


def _match_format(weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Give a conv weight the input's memory format, so cuDNN need not convert either."""
    channels_last = x.is_contiguous(memory_format=torch.channels_last)
    if x.dim() == 4 and channels_last and not x.is_contiguous():
        return weight.contiguous(memory_format=torch.channels_last)
    return weight


# --------------------------------------------------------------------------- layers


class PixelNorm(nn.Module):
    """Normalise each latent to unit mean square (the mapping network's first layer)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate and an optional fused leaky ReLU."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        bias: bool = True,
        bias_init: float = 0.0,
        lr_mul: float = 1.0,
        activation: bool = False,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias * self.lr_mul if self.bias is not None else None
        if self.activation:
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), bias)
        return F.linear(x, self.weight * self.scale, bias)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}, lr_mul={self.lr_mul}"


class EqualConv2d(nn.Module):
    """Conv2d with equalised learning rate (weight scaled by 1/sqrt(fan_in) at run time)."""

    def __init__(
        self,
        in_channel: int,
        out_channel: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channel, in_channel, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channel)) if bias else None
        self.scale = 1 / math.sqrt(in_channel * kernel_size**2)
        self.stride = stride
        self.padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = _match_format(self.weight * self.scale, x)
        return F.conv2d(x, weight, self.bias, stride=self.stride, padding=self.padding)

    def extra_repr(self) -> str:
        out_c, in_c, k, _ = self.weight.shape
        return f"{in_c}, {out_c}, {k}, stride={self.stride}, padding={self.padding}"


class FusedLeakyReLU(nn.Module):
    """Bias + leaky ReLU(0.2) × √2, with the bias as this module's ``bias`` parameter."""

    def __init__(self, channel: int, bias: bool = True) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channel)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_leaky_relu(x, self.bias)


class Blur(nn.Module):
    """FIR low-pass filter (upfirdn2d with padding only); the kernel is a state-dict buffer."""

    def __init__(
        self, taps: Sequence[float], pad: tuple[int, int], upsample_factor: int = 1
    ) -> None:
        super().__init__()
        self.register_buffer("kernel", make_kernel(taps) * upsample_factor**2)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """2× FIR upsampling of the skip image (kernel gain factor² keeps the DC level)."""

    def __init__(self, taps: Sequence[float], factor: int = 2) -> None:
        super().__init__()
        self.factor = factor
        kernel = make_kernel(taps) * factor**2
        self.register_buffer("kernel", kernel)
        p = kernel.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class ModulatedConv2d(nn.Module):
    """Style-modulated (and optionally demodulated) conv, optionally 2× up/down."""

    def __init__(
        self,
        in_channel: int,
        out_channel: int,
        kernel_size: int,
        style_dim: int,
        demodulate: bool = True,
        upsample: bool = False,
        downsample: bool = False,
        blur_kernel: Sequence[float] = BLUR_KERNEL,
    ) -> None:
        super().__init__()
        self.in_channel, self.out_channel = in_channel, out_channel
        self.kernel_size = kernel_size
        self.upsample, self.downsample = upsample, downsample
        factor = 2
        if upsample:  # transposed conv (stride 2) then blur: output exactly 2× the input
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, ((p + 1) // 2 + factor - 1, p // 2 + 1), factor)
        if downsample:  # blur then strided conv
            p = (len(blur_kernel) - factor) + (kernel_size - 1)
            self.blur = Blur(blur_kernel, ((p + 1) // 2, p // 2))
        self.scale = 1 / math.sqrt(in_channel * kernel_size**2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(
            torch.randn(1, out_channel, in_channel, kernel_size, kernel_size)
        )
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1.0)
        self.demodulate = demodulate

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        style = self.modulation(w)  # B × in
        weight = self.weight[0] * self.scale  # out × in × k × k
        x = x * style.reshape(batch, self.in_channel, 1, 1).to(x.dtype)
        if self.upsample:
            kernel = _match_format(weight.transpose(0, 1), x)
            out = self.blur(F.conv_transpose2d(x, kernel.to(x.dtype), stride=2))
        elif self.downsample:
            x = self.blur(x)
            out = F.conv2d(x, _match_format(weight, x).to(x.dtype), stride=2)
        else:
            out = F.conv2d(x, _match_format(weight, x).to(x.dtype), padding=self.padding)
        if self.demodulate:
            # 1/‖style ⊙ weight‖ per (sample, output channel), in float32 even under autocast
            autocast_off = (
                torch.autocast(out.device.type, enabled=False)
                if torch.is_autocast_enabled(out.device.type)
                else contextlib.nullcontext()
            )
            with autocast_off:
                energy = weight.float().square().sum(dim=(2, 3))  # out × in
                demod = torch.rsqrt(style.float().square() @ energy.t() + 1e-8)
            out = out * demod.reshape(batch, self.out_channel, 1, 1).to(out.dtype)
        return out

    def extra_repr(self) -> str:
        return (
            f"{self.in_channel}, {self.out_channel}, {self.kernel_size}, "
            f"upsample={self.upsample}, downsample={self.downsample}"
        )


class NoiseInjection(nn.Module):
    """Adds per-pixel noise scaled by a learned scalar (random noise unless given)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if noise is None:
            batch, _, height, width = x.shape
            noise = torch.randn(batch, 1, height, width, device=x.device, dtype=x.dtype)
        return x + self.weight.to(x.dtype) * noise.to(x.dtype)


class ConstantInput(nn.Module):
    """The learned 4×4 input of the synthesis network."""

    def __init__(self, channel: int, size: int = 4) -> None:
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channel, size, size))

    def forward(self, batch: int) -> torch.Tensor:
        return self.input.expand(batch, -1, -1, -1)


class StyledConv(nn.Module):
    """Modulated conv → noise → bias + leaky ReLU."""

    def __init__(
        self,
        in_channel: int,
        out_channel: int,
        kernel_size: int,
        style_dim: int,
        upsample: bool = False,
        blur_kernel: Sequence[float] = BLUR_KERNEL,
        demodulate: bool = True,
    ) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(
            in_channel,
            out_channel,
            kernel_size,
            style_dim,
            demodulate=demodulate,
            upsample=upsample,
            blur_kernel=blur_kernel,
        )
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channel)

    def forward(
        self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.activate(self.noise(self.conv(x, w), noise))


class ToRGB(nn.Module):
    """1×1 modulated conv to RGB (no demodulation) added to the upsampled skip image."""

    def __init__(
        self,
        in_channel: int,
        style_dim: int,
        upsample: bool = True,
        blur_kernel: Sequence[float] = BLUR_KERNEL,
        channels: int = 3,
    ) -> None:
        super().__init__()
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_channel, channels, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(
        self, x: torch.Tensor, w: torch.Tensor, skip: torch.Tensor | None = None
    ) -> torch.Tensor:
        out = self.conv(x, w) + self.bias.to(x.dtype)
        if skip is not None:
            out = out + self.upsample(skip).to(out.dtype)
        return out


class ConvLayer(nn.Sequential):
    """[Blur →] EqualConv2d [→ FusedLeakyReLU]: the discriminator's conv layer."""

    def __init__(
        self,
        in_channel: int,
        out_channel: int,
        kernel_size: int,
        downsample: bool = False,
        blur_kernel: Sequence[float] = BLUR_KERNEL,
        bias: bool = True,
        activate: bool = True,
    ) -> None:
        layers: list[nn.Module] = []
        if downsample:
            p = (len(blur_kernel) - 2) + (kernel_size - 1)
            layers.append(Blur(blur_kernel, ((p + 1) // 2, p // 2)))
            stride, padding = 2, 0
        else:
            stride, padding = 1, kernel_size // 2
        layers.append(
            EqualConv2d(
                in_channel,
                out_channel,
                kernel_size,
                stride=stride,
                padding=padding,
                bias=bias and not activate,
            )
        )
        if activate:
            layers.append(FusedLeakyReLU(out_channel, bias=bias))
        super().__init__(*layers)


class ResBlock(nn.Module):
    """Two 3×3 convs (the second halves the resolution) plus a 1×1 downsampled skip."""

    def __init__(
        self, in_channel: int, out_channel: int, blur_kernel: Sequence[float] = BLUR_KERNEL
    ) -> None:
        super().__init__()
        self.conv1 = ConvLayer(in_channel, in_channel, 3)
        self.conv2 = ConvLayer(in_channel, out_channel, 3, downsample=True, blur_kernel=blur_kernel)
        self.skip = ConvLayer(
            in_channel,
            out_channel,
            1,
            downsample=True,
            activate=False,
            bias=False,
            blur_kernel=blur_kernel,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) * (1 / math.sqrt(2))


# --------------------------------------------------------------------------- block views


def _set_block_view(network: nn.Module, blocks: Mapping[str, nn.Module]) -> None:
    """Expose ``blocks`` without registering it as a child (see the module docstring)."""
    network._modules.pop("blocks", None)
    object.__setattr__(network, "blocks", nn.ModuleDict(blocks))


class _Precision:
    """Mixin: optional bf16 autocast around a network's forward (outputs stay float32)."""

    autocast_dtype: torch.dtype | None = None

    def _autocast(self, x: torch.Tensor) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(x.device.type, dtype=self.autocast_dtype)


class MappingBlock(nn.Module):
    """z → w through the mapping network (a view onto ``Generator.style``)."""

    def __init__(self, style: nn.Sequential) -> None:
        super().__init__()
        self.style = style

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.style(z)


class InputBlock(nn.Module):
    """4×4: constant input → conv1 → to_rgb1. Returns (features, skip image)."""

    def __init__(self, constant: ConstantInput, conv: StyledConv, to_rgb: ToRGB) -> None:
        super().__init__()
        self.input, self.conv1, self.to_rgb1 = constant, conv, to_rgb

    def forward(
        self, latent: torch.Tensor, noise: Sequence[torch.Tensor | None], channels_last: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.input(latent.shape[0])
        if channels_last:
            out = out.contiguous(memory_format=torch.channels_last)
        out = self.conv1(out, latent[:, 0], noise[0])
        return out, self.to_rgb1(out, latent[:, 1])


class SynthesisBlock(nn.Module):
    """One resolution: upsampling conv → conv → to_rgb added to the upsampled skip."""

    def __init__(self, conv_up: StyledConv, conv: StyledConv, to_rgb: ToRGB) -> None:
        super().__init__()
        self.conv_up, self.conv, self.to_rgb = conv_up, conv, to_rgb

    def forward(
        self,
        x: torch.Tensor,
        skip: torch.Tensor,
        latent: torch.Tensor,
        noise: Sequence[torch.Tensor | None],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``latent``: the three w's of this block; ``noise``: its two noise maps."""
        x = self.conv_up(x, latent[:, 0], noise[0])
        x = self.conv(x, latent[:, 1], noise[1])
        return x, self.to_rgb(x, latent[:, 2], skip)


# --------------------------------------------------------------------------- generator


class StyleGAN2Generator(_Precision, Generator):
    """StyleGAN2 config-f generator (skip-to-RGB), rosinality's state-dict layout.

    Blocks: ``mapping``, ``4x4``, ``8x8``, …, ``{size}x{size}``. ``forward_features(z)``
    returns the image and, per block, w (for ``mapping``) or that resolution's feature map.
    Noise is random per call unless ``randomize_noise`` is False (then the stored
    ``noises.noise_i`` buffers are used, as rosinality's ``randomize_noise=False``).
    """

    def __init__(
        self,
        size: int,
        style_dim: int = 512,
        n_mlp: int = 8,
        channel_multiplier: int = 2,
        blur_kernel: Sequence[float] = BLUR_KERNEL,
        lr_mlp: float = 0.01,
        channel_max: int = 512,
    ) -> None:
        super().__init__()
        self.size, self.style_dim, self.n_mlp = size, style_dim, n_mlp
        self.channel_multiplier, self.channel_max = channel_multiplier, channel_max
        self.log_size = _log2(size)
        self.num_layers = (self.log_size - 2) * 2 + 1
        self.n_latent = self.log_size * 2 - 2
        self.latent_shape = (style_dim,)
        self.truncation = 1.0
        self.randomize_noise = True
        self.channels_last = False

        def width(resolution: int) -> int:
            return channel_count(resolution, channel_multiplier, channel_max)

        self.style = nn.Sequential(
            PixelNorm(),
            *(
                EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activation=True)
                for _ in range(n_mlp)
            ),
        )
        self.input = ConstantInput(width(4))
        self.conv1 = StyledConv(width(4), width(4), 3, style_dim, blur_kernel=blur_kernel)
        self.to_rgb1 = ToRGB(width(4), style_dim, upsample=False)
        self.convs = nn.ModuleList()
        self.upsamples = nn.ModuleList()  # empty; kept for rosinality's attribute layout
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        for index in range(self.num_layers):
            side = 2 ** ((index + 5) // 2)
            self.noises.register_buffer(f"noise_{index}", torch.randn(1, 1, side, side))
        in_channel = width(4)
        for log in range(3, self.log_size + 1):
            out_channel = width(2**log)
            self.convs.append(
                StyledConv(
                    in_channel, out_channel, 3, style_dim, upsample=True, blur_kernel=blur_kernel
                )
            )
            self.convs.append(
                StyledConv(out_channel, out_channel, 3, style_dim, blur_kernel=blur_kernel)
            )
            self.to_rgbs.append(ToRGB(out_channel, style_dim, blur_kernel=blur_kernel))
            in_channel = out_channel
        # the mean w that truncation pulls toward. Persistent, so an adapted generator's
        # weights keep it; rosinality stores it beside g_ema, so the loader fills it in.
        self.register_buffer("latent_avg", torch.zeros(style_dim))

        blocks: dict[str, nn.Module] = {
            "mapping": MappingBlock(self.style),
            "4x4": InputBlock(self.input, self.conv1, self.to_rgb1),
        }
        for index, log in enumerate(range(3, self.log_size + 1)):
            blocks[f"{2**log}x{2**log}"] = SynthesisBlock(
                self.convs[2 * index], self.convs[2 * index + 1], self.to_rgbs[index]
            )
        _set_block_view(self, blocks)

    def stored_noise(self) -> list[torch.Tensor]:
        """The fixed per-layer noise maps (``noises.noise_i``)."""
        return [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]

    def sample_noise(self, seeds: Sequence[int], *, device: Any = None) -> dict[str, Any]:
        """Per-layer noise maps for one sample per seed, each sample's maps drawn on the CPU
        from its own ``torch.Generator().manual_seed(seed)`` (layer by layer): what
        ``forward(z, noise=...)`` takes in place of drawing from torch's global RNG. Empty
        when ``randomize_noise`` is False (the stored maps are used then)."""
        if not self.randomize_noise:
            return {}
        sides = [2 ** ((index + 5) // 2) for index in range(self.num_layers)]
        per_sample = []
        for seed in seeds:
            rng = torch.Generator().manual_seed(int(seed))
            per_sample.append([torch.randn(1, 1, side, side, generator=rng) for side in sides])
        device = device if device is not None else self.input.input.device
        return {"noise": [torch.cat(maps).to(device) for maps in zip(*per_sample, strict=True)]}

    def forward(
        self,
        z: torch.Tensor,
        *,
        noise: Sequence[torch.Tensor | None] | None = None,
        truncation: float | None = None,
    ) -> torch.Tensor:
        """The image of :meth:`forward_features` (``noise``: one map per layer, N×1×s×s)."""
        return self.forward_features(z, noise=noise, truncation=truncation)[0]

    @torch.no_grad()
    def mean_latent(self, n: int = MEAN_LATENT_SAMPLES, seed: int = 0) -> torch.Tensor:
        """The mean w = mapping(z) over ``n`` z ~ N(0, I) drawn on the CPU from
        ``torch.Generator().manual_seed(seed)`` (rosinality's ``mean_latent``, seeded): the
        truncation centre when a checkpoint has none."""
        rng = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.style_dim, generator=rng).to(self.input.input.device)
        return self.style(z).float().mean(0)

    def forward_features(
        self,
        z: torch.Tensor,
        *,
        noise: Sequence[torch.Tensor | None] | None = None,
        input_is_latent: bool = False,
        truncation: float | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Image (float32, N×3×size×size, about [-1, 1]) and one feature per block.

        ``z`` is N×style_dim; with ``input_is_latent`` it is w (N×style_dim) or w+
        (N×n_latent×style_dim). ``truncation`` overrides ``self.truncation``."""
        with self._autocast(z):
            blocks = list(self.blocks.values())
            w = z if input_is_latent else blocks[0](z)
            psi = self.truncation if truncation is None else truncation
            if psi != 1.0:
                avg = self.latent_avg.to(w.dtype)
                w = avg + psi * (w - avg)
            features: list[torch.Tensor] = [w]
            latent = w if w.ndim == 3 else w.unsqueeze(1).expand(-1, self.n_latent, -1)
            if noise is None:
                noise = [None] * self.num_layers if self.randomize_noise else self.stored_noise()
            out, skip = blocks[1](latent, noise, self.channels_last)
            features.append(out)
            for index, block in enumerate(blocks[2:]):
                first = 2 * index + 1
                out, skip = block(out, skip, latent[:, first : first + 3], noise[first : first + 2])
                features.append(out)
        return skip.float(), features


# --------------------------------------------------------------------------- discriminator


class DiscriminatorEpilogue(nn.Module):
    """4×4: minibatch standard deviation → 3×3 conv → two linear layers → logit."""

    def __init__(
        self, final_conv: ConvLayer, final_linear: nn.Sequential, group: int, features: int
    ) -> None:
        super().__init__()
        self.final_conv, self.final_linear = final_conv, final_linear
        self.stddev_group, self.stddev_feat = group, features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channel, height, width = x.shape
        # rosinality/NVIDIA use min(batch, 4) and need it to divide the batch; the largest
        # divisor ≤ 4 is identical whenever that works and never crashes otherwise
        group = next(g for g in range(min(batch, self.stddev_group), 0, -1) if batch % g == 0)
        grouped = x.float().reshape(
            group, -1, self.stddev_feat, channel // self.stddev_feat, height, width
        )
        stddev = torch.sqrt(grouped.var(0, unbiased=False) + 1e-8)
        stddev = stddev.mean(dim=(2, 3, 4)).reshape(-1, self.stddev_feat, 1, 1)
        stddev = stddev.repeat(group, 1, height, width).to(x.dtype)
        out = self.final_conv(torch.cat([x, stddev], 1))
        return self.final_linear(out.reshape(batch, -1))


class StyleGAN2Discriminator(_Precision, Discriminator):
    """StyleGAN2 residual discriminator, rosinality's state-dict layout.

    Blocks (image → logit): ``from_rgb``, ``{size}x{size}``, …, ``8x8`` (residual blocks,
    named by their input resolution), ``4x4`` (minibatch stddev, conv, linear layers).
    """

    def __init__(
        self,
        size: int,
        channel_multiplier: int = 2,
        blur_kernel: Sequence[float] = BLUR_KERNEL,
        channel_max: int = 512,
    ) -> None:
        super().__init__()
        self.size = size
        log_size = _log2(size)
        self.channels_last = False

        def width(resolution: int) -> int:
            return channel_count(resolution, channel_multiplier, channel_max)

        layers: list[nn.Module] = [ConvLayer(3, width(size), 1)]
        in_channel = width(size)
        for log in range(log_size, 2, -1):
            out_channel = width(2 ** (log - 1))
            layers.append(ResBlock(in_channel, out_channel, blur_kernel))
            in_channel = out_channel
        self.convs = nn.Sequential(*layers)
        self.stddev_group, self.stddev_feat = 4, 1
        self.final_conv = ConvLayer(in_channel + 1, width(4), 3)
        self.final_linear = nn.Sequential(
            EqualLinear(width(4) * 4 * 4, width(4), activation=True),
            EqualLinear(width(4), 1),
        )
        blocks: dict[str, nn.Module] = {"from_rgb": self.convs[0]}
        for index, log in enumerate(range(log_size, 2, -1)):
            blocks[f"{2**log}x{2**log}"] = self.convs[index + 1]
        blocks["4x4"] = DiscriminatorEpilogue(
            self.final_conv, self.final_linear, self.stddev_group, self.stddev_feat
        )
        _set_block_view(self, blocks)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits (float32, N×1) and each block's output, from high resolution down."""
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with self._autocast(x):
            out, features = super().forward_features(x)
        return out.float(), features


def use_channels_last(network: nn.Module) -> nn.Module:
    """Run ``network`` in channels_last: 4-D weights converted, inputs converted on entry.

    (``Module.to(memory_format=...)`` refuses the modulated convs' 5-D weights.)"""
    with torch.no_grad():
        for tensor in [*network.parameters(), *network.buffers()]:
            if tensor.dim() == 4:
                tensor.data = tensor.data.contiguous(memory_format=torch.channels_last)
    network.channels_last = True
    return network
