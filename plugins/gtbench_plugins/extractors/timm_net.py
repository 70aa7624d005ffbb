"""The timm extractor's torch-fidelity wrapper (imported only when features are computed,
so that listing plugins does not import torch-fidelity)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch_fidelity.feature_extractor_base import FeatureExtractorBase

from gtbench_plugins.extractors.timm_backbone import DEFAULT_MODEL, build_model


class TimmFeatureNet(FeatureExtractorBase):
    """torch-fidelity wrapper: uint8 N×3×H×W in, pooled backbone features out."""

    def __init__(
        self,
        name: str,
        features_list: list[str],
        timm_model: str = DEFAULT_MODEL,
        timm_weights: str = "",
        timm_size: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, features_list)
        self.network, config = build_model(timm_model, timm_weights, timm_size)
        self.input_size = tuple(config["input_size"][1:])
        self.interpolation = config.get("interpolation", "bicubic")
        self.register_buffer("mean", torch.tensor(config["mean"]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(config["std"]).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    @staticmethod
    def get_provided_features_list() -> tuple[str, ...]:
        return ("pool",)

    @staticmethod
    def get_default_feature_layer_for_metric(metric: str) -> str:
        return "pool"

    @staticmethod
    def can_be_compiled() -> bool:
        return False

    @staticmethod
    def get_dummy_input_for_compile() -> torch.Tensor:
        return torch.zeros((1, 3, 224, 224), dtype=torch.uint8)

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 → the model's input size (its interpolation, antialiased) and normalisation."""
        h = x.float() / 255.0
        if tuple(h.shape[-2:]) != self.input_size:
            smooth = self.interpolation in ("bilinear", "bicubic")
            mode = self.interpolation if smooth else "bilinear"
            h = F.interpolate(h, size=self.input_size, mode=mode, antialias=True)
            h = h.clamp(0.0, 1.0)
        return (h - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if x.dtype != torch.uint8 or x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected uint8 N×3×H×W images, got {x.dtype} {tuple(x.shape)}")
        return (self.network(self.preprocess(x)),)
