"""A random-weight feature extractor for tests and the debug suite: no download, fast on CPU.

Its features are meaningless as a quality measure (the weights are a fixed seeded
initialisation, never trained); they only exercise the evaluation plumbing end to end.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch_fidelity.feature_extractor_base import FeatureExtractorBase

from gtbench.api import Extractor, Parameter, register_fidelity_extractor
from gtbench.errors import PluginError

FIDELITY_NAME = "gtbench-debug"
_SEED = 20240601
_WIDTHS = (16, 32, 64)  # conv channels; each layer's feature is [mean, std] pooled: 2×width
_INPUT_SIZE = 16


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
        return tuple(f"conv{i + 1}" for i in range(len(_WIDTHS)))

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


def register() -> str:
    """Register the network with torch-fidelity once per process; return its name."""
    return register_fidelity_extractor(FIDELITY_NAME, DebugFeatureNet)


class DebugExtractor(Extractor):
    """Seeded random conv features (128-d by default); for tests only, not a real metric."""

    description = "random-weight conv features for tests (no download; not a real metric)"
    is_metric: ClassVar[bool] = False
    parameters: ClassVar = {
        "layer": Parameter(
            f"conv{len(_WIDTHS)}", "feature layer: conv1 (32-d), conv2 (64-d) or conv3 (128-d)"
        ),
    }

    def fidelity_name(self) -> str:
        return register()

    def feature_layer(self) -> str:
        layer = self.params["layer"]
        if layer not in DebugFeatureNet.get_provided_features_list():
            choices = ", ".join(DebugFeatureNet.get_provided_features_list())
            raise PluginError(f"extractor {self.name!r}: unknown layer {layer!r} ({choices})")
        return layer

    def identity(self) -> str:
        widths = "-".join(map(str, _WIDTHS))
        return f"{FIDELITY_NAME}:seed={_SEED},widths={widths},size={_INPUT_SIZE}"
