"""Any timm backbone as an FID/KID feature extractor, from a local weights file.

Usage: ``--extractor timm:model=vit_small_patch14_dinov2.lvd142m,weights=PATH,size=224``.
torch-fidelity's own DINOv2 extractor can only download through torch.hub, which
air-gapped clusters cannot do; timm loads a local file through
``pretrained_cfg_overlay=dict(file=PATH)`` and applies the model's own checkpoint
conversion (e.g. position-embedding resampling for another ``size``). Stein et al. (2023)
recommend DINOv2 ViT features over Inception for judging generative models.

Features are the model's pooled pre-logits output (``reset_classifier(0)``): the CLS
token for ViTs, global average pooling for CNNs. Images are resized to the model's input
size with its interpolation (no crop, so nothing generated is cut off) and normalised
with its mean and std.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch_fidelity.feature_extractor_base import FeatureExtractorBase

from gtbench.api import Extractor, Parameter, register_fidelity_extractor
from gtbench.api import sha256_file as file_sha256
from gtbench.errors import MissingAssetError, PluginError

FIDELITY_NAME = "gtbench-timm"
DEFAULT_MODEL = "vit_small_patch14_dinov2.lvd142m"


def _one_line(error: BaseException, limit: int = 240) -> str:
    text = " ".join(str(error).split())
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(error).__name__}: {text}"


def hub_page(model: str) -> str:
    """The Hugging Face page of the model's weights (where a user can download them)."""
    import timm

    try:
        repo = timm.models.get_pretrained_cfg(model).hf_hub_id
    except Exception:
        repo = None
    return f"https://huggingface.co/{repo or 'timm/' + model}"


def build_model(model: str, weights: str, size: int) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The timm model with the local weights loaded strictly, and its data config."""
    import timm

    kwargs: dict[str, Any] = {"pretrained": True, "pretrained_cfg_overlay": {"file": weights}}
    if size:
        kwargs["img_size"] = size
    try:
        network = timm.create_model(model, **kwargs)
    except Exception as error:
        raise MissingAssetError(
            f"timm model {model!r} could not load weights {weights} (does the file belong "
            f"to this model?): {_one_line(error)}"
        ) from None
    network.reset_classifier(0)
    config = timm.data.resolve_model_data_config(network)
    if size:
        config["input_size"] = (3, size, size)
    return network, config


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


def register() -> str:
    """Register the wrapper with torch-fidelity once per process; return its name."""
    return register_fidelity_extractor(FIDELITY_NAME, TimmFeatureNet)


class TimmExtractor(Extractor):
    """A timm backbone's pooled features (e.g. DINOv2 ViT-S/14), weights from a local file."""

    description = "any timm backbone (e.g. DINOv2 ViTs) from a local weights file"
    parameters: ClassVar = {
        "model": Parameter(DEFAULT_MODEL, "timm model name (with its pretrained tag)"),
        "weights": Parameter("", "path of the model's weights (.safetensors or .pth)"),
        "size": Parameter(0, "input size (0: the model's; 224 for DINOv2 as Stein et al.)"),
    }

    def check_available(self) -> None:
        import timm

        model, weights = self.params["model"], self.params["weights"]
        if not timm.is_model(model):
            close = difflib.get_close_matches(model, timm.list_models(), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise PluginError(f"extractor {self.name!r}: timm has no model {model!r}{hint}")
        if not weights or not Path(weights).expanduser().is_file():
            where = f"{weights} does not exist; " if weights else ""
            raise MissingAssetError(
                f"extractor {self.name!r} needs local weights for {model}: {where}download "
                f"model.safetensors from {hub_page(model)} and pass "
                f"--extractor {self.name}:model={model},weights=PATH"
            )

    def fidelity_name(self) -> str:
        return register()

    def feature_layer(self) -> str:
        return "pool"

    def fidelity_kwargs(self) -> dict[str, Any]:
        self.check_available()
        return {
            "timm_model": self.params["model"],
            "timm_weights": str(Path(self.params["weights"]).expanduser()),
            "timm_size": int(self.params["size"]),
        }

    def identity(self) -> str:
        self.check_available()
        digest = file_sha256(Path(self.params["weights"]).expanduser())
        return f"timm:{self.params['model']}:size={self.params['size']}:sha256={digest}"
