"""The debug extractor's torch-fidelity network (imported only when features are computed,
so that listing plugins does not import torch-fidelity)."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch_fidelity.feature_extractor_base import FeatureExtractorBase

from gtbench_plugins.extractors.debug import _INPUT_SIZE, _SEED, _WIDTHS, LAYERS


class DebugFeatureNet(FeatureExtractorBase):
    """Three seeded random conv layers; features are per-channel mean and std of each layer.

    Computed in float64 so features do not depend on the batch size (CPU kernels pick
    different algorithms for different shapes)."""

    def __init__(self, name: str, features_list: list[str], **kwargs: Any) -> None:
        super().__init__(name, features_list)
        rng = torch.Generator().manual_seed(_SEED)
        convs = []
        channels_in = 3
        for index, width in enumerate(_WIDTHS):
            conv = nn.Conv2d(channels_in, width, 3, stride=1 if index == 0 else 2, padding=1)
            fan_in = channels_in * 9
            with torch.no_grad():
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=rng) / math.sqrt(fan_in))
                conv.bias.copy_(torch.randn(conv.bias.shape, generator=rng) * 0.1)
            convs.append(conv)
            channels_in = width
        self.convs = nn.ModuleList(convs).to(torch.float64)
        self.requires_grad_(False)
        self.eval()

    @staticmethod
    def get_provided_features_list() -> tuple[str, ...]:
        return LAYERS

    @staticmethod
    def get_default_feature_layer_for_metric(metric: str) -> str:
        return f"conv{len(_WIDTHS)}"

    @staticmethod
    def can_be_compiled() -> bool:
        return False

    @staticmethod
    def get_dummy_input_for_compile() -> torch.Tensor:
        return torch.zeros((1, 3, _INPUT_SIZE, _INPUT_SIZE), dtype=torch.uint8)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if x.dtype != torch.uint8 or x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected uint8 N×3×H×W images, got {x.dtype} {tuple(x.shape)}")
        h = x.to(torch.float64) / 127.5 - 1.0
        if h.shape[-2:] != (_INPUT_SIZE, _INPUT_SIZE):
            h = F.interpolate(h, size=(_INPUT_SIZE, _INPUT_SIZE), mode="bilinear", antialias=True)
        pooled = {}
        for index, conv in enumerate(self.convs):
            h = F.leaky_relu(conv(h), 0.2)
            flat = h.flatten(2)
            pooled[f"conv{index + 1}"] = torch.cat([flat.mean(2), flat.std(2)], dim=1)
        return tuple(pooled[name].to(torch.float32) for name in self.features_list)
