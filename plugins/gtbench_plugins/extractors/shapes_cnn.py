"""``shapes-cnn``: a small offline CNN for FID/KID, trained by gtbench itself.

Inception weights cannot be downloaded on the machines gtbench targets, so the default
suite measures FID in the feature space of this network instead. It is a 6-conv VGG-style
classifier (32×32 input, 0.57 M parameters, weights 2.3 MB) trained on data that ship
offline: the Animal-Shape silhouettes, scikit-learn's handwritten digits, scikit-image's
LFW faces vs non-faces and random crops of scikit-image's sample photos (held-out
accuracy 95.2 %; 94.4 % on the 1697 digits it never saw, from 100 trained on). A second head
classifies synthetic degradations (Gaussian noise and blur at three strengths each), so
the features notice the artefacts a quality metric must notice.

Feature layers (``layer=``):

- ``fc`` (default, 256-d): the penultimate layer, the linear embedding before the ReLU
  that feeds both heads — what FID/KID use, like Inception's pool3.
- ``pool`` (96-d): global average of the last conv block (more translation-invariant).

Held out of training: every evaluation (and validation) image of every built-in target —
the whole cat class (``animals-cat``), the digits outside the ``digits`` shot pool and
the faces outside the ``lfw-faces`` shot pool — compared by content hash at 32×32 RGB,
plus the cat photo (``skimage.data.chelsea``). So FID on the built-in suites is measured
with a network that has never seen the evaluation images, as Inception has not seen a
benchmark's test set. The recipe writes the hash of every training image to
``weights/shapes-cnn-train-images.txt``; a test checks it is disjoint from every
built-in target's evaluation images (:func:`training_image_hashes`).

Input: uint8 N×3×H×W from torch-fidelity (grey images as three equal channels), scaled
to [-1, 1] and resized to 32×32 (antialiased bilinear); computed in float32, always in
chunks of exactly ``CHUNK`` images (the last one padded), so a feature never depends on
the evaluation batch size (a CPU kernel may pick another algorithm for another batch
shape), on one CPU thread (a CPU kernel splits its sums differently over more threads)
and, on a GPU, without TF32 and with deterministic cuDNN algorithms.
float32 is about 4× faster than the float64 of version 2 on a CPU core (3.8× by
``perf/eval_speed.py``).

The weights are committed at ``weights/shapes-cnn.safetensors`` with a JSON sidecar
(data hashes, seed, epochs, held-out accuracy, wall time) and pinned here by sha256; a
changed file is refused. Regenerate them with::

    python -m gtbench_plugins.extractors.train_shapes_cnn --out PATH

(about 10 minutes on 2 free CPU cores; the committed file took 59 minutes on 2 cores
shared with a team's test runs). The result is bit-identical on
the same machine and torch build, and equal within float rounding elsewhere — then pass
``weights=PATH`` to use the new file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from gtbench.api import Extractor, Parameter, register_fidelity_extractor
from gtbench.api import sha256_file as file_sha256
from gtbench.errors import MissingAssetError, PluginError

__all__ = [
    "FIDELITY_NAME",
    "INPUT_SIZE",
    "WEIGHTS_PATH",
    "WEIGHTS_SHA256",
    "ShapesCNN",
    "ShapesCNNExtractor",
    "WeightsMismatchError",
    "load_weights",
    "training_image_hashes",
]

FIDELITY_NAME = "gtbench-shapes-cnn"
INPUT_SIZE = 32
CHUNK = 64  # images per forward pass, whatever the caller's batch size
WIDTHS = (24, 48, 96)  # channels of the three conv blocks (two 3×3 convs each, then 2× pool)
EMBED_DIM = 256
LAYERS = {"fc": EMBED_DIM, "pool": WIDTHS[-1]}
WEIGHTS_PATH = Path(__file__).resolve().parent / "weights" / "shapes-cnn.safetensors"
WEIGHTS_SHA256 = "8a69c4866c9412bfab5fcba15ba607ed5f62a8f471f635d8bab2396bffe965bd"
RECIPE = "python -m gtbench_plugins.extractors.train_shapes_cnn --out PATH"


class WeightsMismatchError(MissingAssetError):
    """The weights file is not the one pinned by sha256 (edited, truncated, replaced)."""


class ShapesCNN(nn.Module):
    """Three blocks of (conv-BN-ReLU)×2 + max-pool, a linear embedding and two heads.

    Shared by the extractor and its training recipe, so both build the same network."""

    def __init__(self, n_classes: int, n_corruptions: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for width in WIDTHS:
            for _ in range(2):
                layers += [
                    nn.Conv2d(channels, width, 3, padding=1, bias=False),
                    nn.BatchNorm2d(width),
                    nn.ReLU(inplace=True),
                ]
                channels = width
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        spatial = INPUT_SIZE // 2 ** len(WIDTHS)
        self.fc = nn.Linear(channels * spatial * spatial, EMBED_DIM)
        self.dropout = nn.Dropout(0.2)
        self.classify = nn.Linear(EMBED_DIM, n_classes)
        self.corruption = nn.Linear(EMBED_DIM, n_corruptions)

    def embed(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Features of images already in [-1, 1] at 32×32: ``fc`` and ``pool``."""
        h = self.features(x)
        return {"fc": self.fc(h.flatten(1)), "pool": h.mean(dim=(2, 3))}

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Class logits and degradation logits."""
        h = self.dropout(F.relu(self.embed(x)["fc"]))
        return self.classify(h), self.corruption(h)


def verify(path: Path, expected: str | None) -> str:
    """sha256 of ``path``; raise a one-line error when missing or not ``expected``."""
    if not path.is_file():
        raise MissingAssetError(
            f"shapes-cnn weights {path} do not exist; restore them from git or run {RECIPE}"
        )
    actual = file_sha256(path)
    if expected is not None and actual != expected:
        raise WeightsMismatchError(
            f"shapes-cnn weights {path} have sha256 {actual[:16]}…, expected "
            f"{expected[:16]}… (file changed); restore it from git, or regenerate with "
            f"{RECIPE} and pass weights=PATH"
        )
    return actual


def load_weights(path: Path, expected: str | None) -> ShapesCNN:
    """The network with the (verified) weights of ``path``, in eval mode."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    verify(path, expected)
    try:
        state = load_file(str(path))
        network = ShapesCNN(len(state["classify.bias"]), len(state["corruption.bias"]))
        network.load_state_dict(state)
    except (SafetensorError, KeyError, RuntimeError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise WeightsMismatchError(f"shapes-cnn weights {path} cannot be loaded: {first}") from None
    return network.eval()


def register() -> str:
    """Register the network with torch-fidelity once per process; return its name."""
    from gtbench_plugins.extractors.shapes_cnn_net import ShapesCNNFeatures  # torch-fidelity

    return register_fidelity_extractor(FIDELITY_NAME, ShapesCNNFeatures)


def training_record(path: Path = WEIGHTS_PATH) -> dict[str, Any]:
    """The JSON sidecar written by the training recipe (data hashes, accuracy, wall time)."""
    return json.loads(path.with_suffix(".json").read_text())


def training_image_hashes(path: Path = WEIGHTS_PATH) -> set[str]:
    """Content hashes (sha256 of the uint8 3×32×32 bytes) of every image the weights were
    trained on, from the list the recipe writes beside them."""
    listing = path.with_name(training_record(path)["train_images_list"])
    rows = listing.read_text().splitlines()
    return {row.split("\t")[1] for row in rows if row and not row.startswith("#")}


class ShapesCNNExtractor(Extractor):
    """Offline FID features (256-d) of a CNN trained by gtbench's committed recipe."""

    description = (
        "small CNN trained offline on silhouettes, digits, faces, photos (no built-in "
        "target's evaluation image); committed weights"
    )
    # 2: retrained with every built-in target's evaluation images held out (new weights)
    # 3: float32 in fixed chunks of CHUNK images instead of float64 (4× faster on a CPU)
    version = "3"
    parameters: ClassVar = {
        "layer": Parameter("fc", "feature layer: fc (256-d, penultimate) or pool (96-d)"),
        "weights": Parameter("", f"weights file made by `{RECIPE}` (default: the committed one)"),
    }

    def _path_and_pin(self) -> tuple[Path, str | None]:
        """A user's own regenerated file is not pinned; its sha256 is in the identity."""
        if self.params["weights"]:
            return Path(self.params["weights"]).expanduser(), None
        return WEIGHTS_PATH, WEIGHTS_SHA256

    def check_available(self) -> None:
        self.feature_layer()
        verify(*self._path_and_pin())

    def fidelity_name(self) -> str:
        return register()

    def feature_layer(self) -> str:
        layer = self.params["layer"]
        if layer not in LAYERS:
            raise PluginError(
                f"extractor {self.name!r}: unknown layer {layer!r} ({', '.join(LAYERS)})"
            )
        return layer

    def fidelity_kwargs(self) -> dict[str, Any]:
        path, pin = self._path_and_pin()
        return {
            "feature_extractor_weights_path": str(path),
            "feature_extractor_weights_sha256": pin,
        }

    def identity(self) -> str:
        sha = verify(*self._path_and_pin())
        return f"{FIDELITY_NAME}:sha256={sha},size={INPUT_SIZE},float32,chunk={CHUNK}"
