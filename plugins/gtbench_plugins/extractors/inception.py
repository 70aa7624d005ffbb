"""torch-fidelity's ``inception-v3-compat`` (the TF-FID Inception) from a local weights file.

torch-fidelity downloads the weights on first use; gtbench machines and many clusters
cannot, so this plugin looks for the file the user provides (in this order): the
``weights=PATH`` parameter, the ``GTBENCH_INCEPTION_WEIGHTS`` environment variable, or the
file under ``$TORCH_HOME/hub/checkpoints/`` where torch.hub would have cached it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import torch

from gtbench.api import Extractor, Parameter
from gtbench.api import sha256_file as file_sha256
from gtbench.errors import MissingAssetError

ENV_VAR = "GTBENCH_INCEPTION_WEIGHTS"
# torch-fidelity's own URL_INCEPTION_V3 (a test keeps them equal), written out so that
# listing plugins does not import torch-fidelity
URL_INCEPTION_V3 = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
    "weights-inception-2015-12-05-6726825d.pth"
)
FILENAME = URL_INCEPTION_V3.rsplit("/", 1)[-1]
LAYERS = ("64", "192", "768", "2048", "logits_unbiased", "logits")


def hub_checkpoint() -> Path:
    """Where torch.hub caches the file ($TORCH_HOME/hub/checkpoints/<name>)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / FILENAME


class InceptionExtractor(Extractor):
    """The standard FID network (pool3, 2048-d), weights from a local file."""

    description = "torch-fidelity's TF-compatible Inception-v3 (standard FID); local weights"
    parameters: ClassVar = {
        "weights": Parameter("", f"path of {FILENAME} (else ${ENV_VAR}, else the torch.hub cache)"),
        "layer": Parameter("2048", f"feature layer: {', '.join(LAYERS)}"),
    }

    def weights_path(self) -> Path | None:
        """The first weights file found, or None."""
        for candidate in (self.params["weights"], os.environ.get(ENV_VAR, "")):
            if candidate:
                return Path(candidate).expanduser()
        cached = hub_checkpoint()
        return cached if cached.is_file() else None

    def check_available(self) -> None:
        path = self.weights_path()
        if path is None or not path.is_file():
            where = f"{path} does not exist; " if path is not None else ""
            raise MissingAssetError(
                f"extractor {self.name!r} needs the Inception weights: {where}download "
                f"{URL_INCEPTION_V3} and put it at {hub_checkpoint()}, or pass "
                f"--extractor {self.name}:weights=PATH, or set {ENV_VAR}=PATH"
            )
        if self.params["layer"] not in LAYERS:
            raise MissingAssetError(
                f"extractor {self.name!r}: unknown layer {self.params['layer']!r} "
                f"(choose from {', '.join(LAYERS)})"
            )

    def fidelity_name(self) -> str:
        return "inception-v3-compat"

    def feature_layer(self) -> str:
        return self.params["layer"]

    def fidelity_kwargs(self) -> dict[str, Any]:
        self.check_available()
        return {"feature_extractor_weights_path": str(self.weights_path())}

    def identity(self) -> str:
        self.check_available()
        return f"inception-v3-compat:sha256={file_sha256(self.weights_path())}"
