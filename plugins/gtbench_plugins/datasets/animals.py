"""Animal-Shape silhouettes (10 classes × 1000, 28×28 white on black) from PyPI.

The data ship inside the wheel of ``animal-mnist==0.4`` (MIT) as gzipped pickles of
numpy arrays. The wheel is downloaded with ``pip download --no-deps`` (the package
itself needs tensorflow, which is never installed) and its members are read with a
restricted unpickler that only rebuilds numpy arrays, so the pickles cannot run code.

The class order was checked against the images: Bear, Bird, Cat, Cow, Dog, Elephant,
Giraffe, Horse, Sheep, Zebra (labels 0-9, sorted, 1000 each). The cat class is the
few-shot target (``animals-cat``); the other nine pretrain the silhouette source
(``animals-others``), so the target is never seen in pretraining.
"""

from __future__ import annotations

import functools
import gzip
import io
import pickle
from typing import Any, ClassVar

import numpy as np
import torch

from gtbench.api import ALLOW_OVERLAP, Asset, Dataset, DatasetInfo, Parameter, fetch
from gtbench.errors import MissingAssetError

from ._images import grey_to_tensor, resize_planes

__all__ = [
    "ANIMAL_IMAGES",
    "ANIMAL_LABELS",
    "CAT",
    "CLASS_NAMES",
    "AnimalsCat",
    "AnimalsOthers",
    "load_animal_shapes",
]

CLASS_NAMES: tuple[str, ...] = (
    "bear",
    "bird",
    "cat",
    "cow",
    "dog",
    "elephant",
    "giraffe",
    "horse",
    "sheep",
    "zebra",
)
CAT = CLASS_NAMES.index("cat")

_WHEEL = "animal_mnist-0.4-py3-none-any.whl"
_WHEEL_SHA256 = "aeebf3d9de4552d6fd2d5701424e1a5b9020f8e5115d68df9db252f2f53ce2ce"
_MEMBER_DIR = "animal_mnist/data/Animal_MNIST"

ANIMAL_IMAGES = Asset(
    name="animal-shapes-images",
    filename=_WHEEL,
    sha256=_WHEEL_SHA256,
    pypi="animal-mnist==0.4",
    member=f"{_MEMBER_DIR}/animal_data_version_3.gz",
    description="Animal-Shape silhouettes, 10000×28×28 uint8 (MIT)",
)
ANIMAL_LABELS = Asset(
    name="animal-shapes-labels",
    filename=_WHEEL,
    sha256=_WHEEL_SHA256,
    pypi="animal-mnist==0.4",
    member=f"{_MEMBER_DIR}/animal_label_version_3.gz",
    description="Animal-Shape class labels 0-9 (MIT)",
)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays and nothing else: any other global is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("numpy", "ndarray"):
            return np.ndarray
        if (module, name) == ("numpy", "dtype"):
            return np.dtype
        if name == "_reconstruct" and module in {
            "numpy.core.multiarray",
            "numpy._core.multiarray",
        }:
            return np.ndarray.__reduce__(np.empty(0))[0]  # numpy's own _reconstruct
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")


def _load_array(asset: Asset) -> np.ndarray:
    path = fetch(asset)
    try:
        with gzip.open(path, "rb") as handle:
            data = handle.read()
        array = _NumpyOnlyUnpickler(io.BytesIO(data)).load()
    except (OSError, EOFError, pickle.UnpicklingError) as error:
        raise MissingAssetError(f"asset {asset.name!r}: cannot read {path}: {error}") from None
    if not isinstance(array, np.ndarray):
        raise MissingAssetError(f"asset {asset.name!r}: {path} holds no numpy array")
    return array


@functools.lru_cache(maxsize=1)
def _animal_shapes() -> tuple[np.ndarray, np.ndarray]:
    images = np.ascontiguousarray(_load_array(ANIMAL_IMAGES), dtype=np.uint8)
    labels = np.ascontiguousarray(_load_array(ANIMAL_LABELS), dtype=np.int64)
    if images.shape != (10000, 28, 28) or labels.shape != (10000,):
        raise MissingAssetError(
            f"Animal-Shape arrays have shapes {images.shape} and {labels.shape}; "
            "expected (10000, 28, 28) and (10000,)"
        )
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def load_animal_shapes() -> tuple[np.ndarray, np.ndarray]:
    """All 10000 silhouettes, uint8 (N, 28, 28) white on black, and labels (N,) int64
    indexing :data:`CLASS_NAMES`. Fetches the wheel on first use; arrays are read-only
    and shared (copy before modifying)."""
    return _animal_shapes()


def _class_images(indices: list[int], res: int, channels: int) -> torch.Tensor:
    images, labels = load_animal_shapes()
    picked = images[np.isin(labels, indices)]
    return grey_to_tensor(resize_planes(picked, res), channels)


_COMMON: dict[str, Parameter] = {
    "res": Parameter(32, "resolution (28 px originals, PIL bicubic resize)"),
    "channels": Parameter(1, "image channels (1, or 3 by repetition)"),
    "allow_overlap": ALLOW_OVERLAP,
}


class AnimalsCat(Dataset):
    """The held-out cat class: 1000 silhouettes; shots come from a fixed pool of ``pool``,
    the next ``validation`` cats are the split tuning selects on, and the evaluation set is
    the other cats, never used as a shot or for selection."""

    description = "Animal-Shape cat silhouettes (1000), held out of the silhouette source"
    parameters: ClassVar = {
        **_COMMON,
        "pool": Parameter(100, "shot pool size"),
        "validation": Parameter(
            200, "cats held out for tuning (`gtbench tune`); evaluation = the other cats"
        ),
    }
    assets = (ANIMAL_IMAGES, ANIMAL_LABELS)
    # 2: 200 cats moved from the evaluation set to the validation split; the 2 evaluation
    # cats that are byte-for-byte copies of shot-pool cats left the evaluation set
    version = "2"

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        pool, validation = self.params["pool"], self.params["validation"]
        if not 1 <= pool < 1000:
            raise ValueError(f"pool must be between 1 and 999, got {pool}")
        if not 0 <= validation < 1000 - pool:
            raise ValueError(f"validation must be between 0 and {999 - pool}, got {validation}")
        self._images: torch.Tensor | None = None

    @property
    def info(self) -> DatasetInfo:
        p = self.params
        return DatasetInfo(p["res"], p["channels"], 1000, p["pool"], p["validation"])

    def images(self) -> torch.Tensor:
        if self._images is None:
            self._images = _class_images([CAT], self.params["res"], self.params["channels"])
        return self._images


class AnimalsOthers(Dataset):
    """The nine non-cat classes (9000 silhouettes): the pretraining set of the
    silhouette source, kept as a dataset so its content hash and images are reusable."""

    description = "Animal-Shape silhouettes of the nine non-cat classes (pretraining set)"
    parameters: ClassVar = {
        **_COMMON,
        "classes": Parameter("", "class names joined by '+', e.g. bear+dog (default: all but cat)"),
        "pool": Parameter(1000, "shot pool size (evaluation = the rest)"),
    }
    assets = (ANIMAL_IMAGES, ANIMAL_LABELS)
    # 2: evaluation images that are copies of shot-pool images left the evaluation set
    version = "2"

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self.class_indices = self._parse_classes(str(self.params["classes"]))
        size = 1000 * len(self.class_indices)
        if not 1 <= self.params["pool"] < size:
            raise ValueError(f"pool must be between 1 and {size - 1}, got {self.params['pool']}")
        self._images: torch.Tensor | None = None

    @staticmethod
    def _parse_classes(text: str) -> list[int]:
        names = [name.strip().lower() for name in text.replace(",", "+").split("+")]
        names = [name for name in names if name]
        if not names:
            return [i for i in range(len(CLASS_NAMES)) if i != CAT]
        for name in names:
            if name == "cat":
                raise ValueError("'cat' is the held-out target; use the animals-cat dataset")
            if name not in CLASS_NAMES:
                raise ValueError(f"unknown class {name!r}; classes: {', '.join(CLASS_NAMES)}")
        return sorted({CLASS_NAMES.index(name) for name in names})

    @property
    def info(self) -> DatasetInfo:
        p = self.params
        size = 1000 * len(self.class_indices)
        return DatasetInfo(p["res"], p["channels"], size, p["pool"])

    def images(self) -> torch.Tensor:
        if self._images is None:
            p = self.params
            self._images = _class_images(self.class_indices, p["res"], p["channels"])
        return self._images
