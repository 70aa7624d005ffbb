"""Any user folder or .zip of images (PNG, JPEG, WebP) as a few-shot target.

Images are read in sorted path order (so the K-shot splits are reproducible on any
machine), optionally centre-cropped to a square, and resized with PIL (bicubic or
Lanczos, per channel in float mode: clean-fid's recommendation, which avoids the aliasing
of tensor resizes). Transparent pixels are composited onto black. A corrupt image either
stops loading with a one-line error naming the file (``on_corrupt=fail``) or is skipped
with a warning (``on_corrupt=skip``).

With ``eval_path`` the evaluation set is that separate folder and every training image
may be a shot; otherwise shots come from a fixed pool of ``pool`` images and the rest
(less byte-for-byte copies of pool images) is the evaluation set. Either way each run
compares its shots with the evaluation images by content at the resolution they are
judged at: a shot that is also an evaluation image stops the run with one line naming
the count, unless ``allow_overlap=true``; every record holds the count
(``shot_eval_overlap``).
"""

from __future__ import annotations

import functools
import hashlib
import io
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from PIL import Image, ImageOps

from gtbench.api import ALLOW_OVERLAP, Dataset, DatasetInfo, Parameter
from gtbench.errors import GtbenchError

from ._images import RESAMPLE, resize_planes

__all__ = ["FolderDataset", "load_image_folder"]

EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")


def _wanted(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return (
        name.lower().endswith(EXTENSIONS)
        and not base.startswith(".")
        and not name.startswith("__MACOSX/")
    )


def _listing(path: Path) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """(display name, byte reader) of each image under ``path``, in sorted order."""
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as bundle:
            names = sorted(info.filename for info in bundle.infolist() if not info.is_dir())
            for name in names:
                if _wanted(name):
                    yield f"{path}:{name}", functools.partial(bundle.read, name)
    elif path.is_dir():
        files = sorted(
            (p for p in path.rglob("*") if p.is_file()),
            key=lambda p: p.relative_to(path).as_posix(),
        )
        for file in files:
            if _wanted(file.relative_to(path).as_posix()):
                yield str(file), file.read_bytes
    else:
        raise GtbenchError(f"folder dataset: {path} is neither a folder nor a .zip file")


def _decode(data: bytes, channels: int, crop: str, res: int, resize: str) -> np.ndarray:
    """Bytes of one image → uint8 C×res×res."""
    with Image.open(io.BytesIO(data)) as opened:
        opened.load()
        image = ImageOps.exif_transpose(opened)
    if "A" in image.getbands() or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)
    image = image.convert("RGB" if channels == 3 else "L")
    if crop == "center":
        width, height = image.size
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        image = image.crop((left, top, left + side, top + side))
    array = np.asarray(image, dtype=np.float32)
    planes = array.transpose(2, 0, 1) if array.ndim == 3 else array[None]
    return resize_planes(planes, res, resize)


def load_image_folder(
    path: str | Path,
    *,
    res: int,
    channels: int = 3,
    resize: str = "bicubic",
    crop: str = "center",
    on_corrupt: str = "fail",
) -> tuple[torch.Tensor, list[str]]:
    """Every image of a folder (recursively) or zip as uint8 N×C×res×res, and the names
    of the files used, in sorted order. Corrupt files raise or are skipped (warned)."""
    path = Path(path).expanduser()
    images: list[np.ndarray] = []
    names: list[str] = []
    for name, read in _listing(path):
        try:
            images.append(_decode(read(), channels, crop, res, resize))
        except Exception as error:  # noqa: BLE001 - decoders raise many kinds of error
            reason = " ".join(f"{type(error).__name__}: {error}".split())
            if on_corrupt == "skip":
                warnings.warn(
                    f"folder dataset: skipping corrupt image {name} ({reason})", stacklevel=2
                )
                continue
            raise GtbenchError(
                f"folder dataset: cannot read image {name} ({reason}); fix or remove it, "
                "or pass on_corrupt=skip"
            ) from None
        names.append(name)
    if not images:
        raise GtbenchError(f"folder dataset: no readable PNG/JPEG/WebP images in {path}")
    return torch.from_numpy(np.stack(images)), names


def _choice(key: str, value: str, allowed: tuple[str, ...]) -> str:
    value = value.strip().lower()
    if value not in allowed:
        raise ValueError(f"{key} must be one of {', '.join(allowed)}, got {value!r}")
    return value


class FolderDataset(Dataset):
    """A user's images from a folder or .zip, with an optional separate evaluation set."""

    description = "your own images: a folder or .zip of PNG/JPEG/WebP (path=...)"
    parameters: ClassVar = {
        "path": Parameter("", "folder or .zip of training images (required)"),
        "res": Parameter(64, "resolution"),
        "channels": Parameter(3, "image channels (1 = grey, 3 = RGB)"),
        "resize": Parameter("bicubic", "PIL resize filter: bicubic or lanczos"),
        "crop": Parameter("center", "center (square centre crop first) or none (stretch)"),
        "eval_path": Parameter("", "separate folder or .zip of evaluation images (optional)"),
        "on_corrupt": Parameter("fail", "what a corrupt image does: fail or skip (warn)"),
        "pool": Parameter(0, "shot pool size; 0 = all images with eval_path, else half"),
        "allow_overlap": ALLOW_OVERLAP,
    }
    # 2: without eval_path, copies (same bytes) of shot-pool images leave the evaluation set
    version = "2"

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        p = self.params
        if not str(p["path"]).strip():
            raise ValueError("folder dataset needs path=FOLDER_OR_ZIP")
        for key in ("path", "eval_path"):
            if p[key] and not Path(p[key]).expanduser().exists():
                raise ValueError(f"{key} {p[key]!r} does not exist")
        if p["channels"] not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {p['channels']}")
        if p["res"] < 4:
            raise ValueError(f"res must be at least 4, got {p['res']}")
        if p["pool"] < 0:
            raise ValueError(f"pool must be 0 (automatic) or positive, got {p['pool']}")
        p["resize"] = _choice("resize", str(p["resize"]), tuple(RESAMPLE))
        p["crop"] = _choice("crop", str(p["crop"]), ("center", "none"))
        p["on_corrupt"] = _choice("on_corrupt", str(p["on_corrupt"]), ("fail", "skip"))
        self._images: torch.Tensor | None = None
        self._eval: torch.Tensor | None = None
        self.files: list[str] = []
        self.eval_files: list[str] = []

    def _load(self, path: str) -> tuple[torch.Tensor, list[str]]:
        p = self.params
        return load_image_folder(
            path,
            res=p["res"],
            channels=p["channels"],
            resize=p["resize"],
            crop=p["crop"],
            on_corrupt=p["on_corrupt"],
        )

    def images(self) -> torch.Tensor:
        if self._images is None:
            self._images, self.files = self._load(self.params["path"])
        return self._images

    @property
    def info(self) -> DatasetInfo:
        size = len(self.images())  # skipped corrupt files change the count
        pool = self.params["pool"]
        if self.params["eval_path"]:
            pool = min(pool, size) if pool else size
        else:
            pool = pool or max(1, size // 2)
            if pool >= size:
                raise GtbenchError(
                    f"folder dataset: pool={pool} leaves no evaluation image among {size} "
                    "images; lower pool or pass eval_path"
                )
        return DatasetInfo(self.params["res"], self.params["channels"], size, pool)

    def evaluation_images(self) -> torch.Tensor:
        if not self.params["eval_path"]:
            return super().evaluation_images()
        if self._eval is None:
            self._eval, self.eval_files = self._load(self.params["eval_path"])
        return self._eval

    def content_hash(self) -> str:
        """Hash of the training images, and of the evaluation images when separate."""
        if not self.params["eval_path"]:
            return super().content_hash()
        digest = hashlib.sha256(super().content_hash().encode())
        evaluation = self.evaluation_images().contiguous()
        digest.update(str(tuple(evaluation.shape)).encode())
        digest.update(evaluation.numpy().tobytes())
        return digest.hexdigest()
