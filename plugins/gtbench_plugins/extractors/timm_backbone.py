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


def register() -> str:
    """Register the wrapper with torch-fidelity once per process; return its name."""
    from gtbench_plugins.extractors.timm_net import TimmFeatureNet  # imports torch-fidelity

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
