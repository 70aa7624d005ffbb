"""The shapes-cnn extractor's torch-fidelity wrapper (imported only when features are
computed, so that listing plugins does not import torch-fidelity)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch_fidelity.feature_extractor_base import FeatureExtractorBase

from gtbench_plugins.extractors.shapes_cnn import (
    CHUNK,
    INPUT_SIZE,
    LAYERS,
    WEIGHTS_PATH,
    WEIGHTS_SHA256,
    load_weights,
)


class ShapesCNNFeatures(FeatureExtractorBase):
    """torch-fidelity wrapper: uint8 images in, the requested feature layers out."""

    def __init__(
        self,
        name: str,
        features_list: list[str],
        feature_extractor_weights_path: str | None = None,
        feature_extractor_weights_sha256: str | None = WEIGHTS_SHA256,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, features_list)
        path = Path(feature_extractor_weights_path or WEIGHTS_PATH)
        self.network = load_weights(path, feature_extractor_weights_sha256)
        self.requires_grad_(False)
        self.eval()

    @staticmethod
    def get_provided_features_list() -> tuple[str, ...]:
        return tuple(LAYERS)

    @staticmethod
    def get_default_feature_layer_for_metric(metric: str) -> str:
        return "fc"

    @staticmethod
    def can_be_compiled() -> bool:
        return False

    @staticmethod
    def get_dummy_input_for_compile() -> torch.Tensor:
        return torch.zeros((1, 3, INPUT_SIZE, INPUT_SIZE), dtype=torch.uint8)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if x.dtype != torch.uint8 or x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected uint8 N×3×H×W images, got {x.dtype} {tuple(x.shape)}")
        h = x.to(torch.float32) / 127.5 - 1.0
        if h.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            h = F.interpolate(h, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True)
        n = len(h)
        padding = -n % CHUNK
        if padding:
            h = torch.cat([h, h.new_zeros((padding, *h.shape[1:]))])
        with _full_float32(h.device):
            chunks = [self.network.embed(chunk) for chunk in h.split(CHUNK)]
        return tuple(
            torch.cat([chunk[name] for chunk in chunks])[:n] for name in self.features_list
        )


@contextmanager
def _full_float32(device: torch.device) -> Iterator[None]:
    """Plain float32 arithmetic, the same on every machine of a kind: on a CPU one thread
    (a kernel splits its sums by thread, so features would follow the core count); on a
    GPU no TF32 (cuDNN's default for convolutions rounds inputs to 10 mantissa bits) and
    deterministic cuDNN algorithms. Every setting is restored afterwards."""
    if device.type == "cpu":
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)
        return
    matmul_tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.backends.cudnn.flags(
            enabled=True, benchmark=False, deterministic=True, allow_tf32=False
        ):
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul_tf32
