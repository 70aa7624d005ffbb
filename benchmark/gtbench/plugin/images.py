"""Image conversions shared by training, evaluation and sample grids: one of each, so
shots, evaluation images and generated samples always go through the same code."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import torch
import torch.nn.functional as F

from gtbench.errors import GtbenchError

__all__ = [
    "GREY_TO_RGB",
    "RESIZE_MODE",
    "as_rgb",
    "compared_channels",
    "image_sha256s",
    "match_format",
    "save_grid",
    "tensor_sha256",
    "to_uint8",
    "to_unit_range",
]


# How images change format on their way to a network: part of every content and feature
# identity that covers a conversion (a change here must change these names).
RESIZE_MODE = "bicubic-antialias"  # match_format's resize
GREY_TO_RGB = "repeat"  # as_rgb's (and match_format's) grey to colour


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] → float [-1, 1] (what generators produce and discriminators read)."""
    return images.float() / 127.5 - 1.0


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Generator output in [-1, 1] → uint8 [0, 255] (round to nearest, clamp)."""
    return ((images.float() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)


def match_format(images: torch.Tensor, channels: int, resolution: int) -> torch.Tensor:
    """uint8 N×C×H×W at ``channels`` and ``resolution``: grey ↔ colour by channel
    repetition or mean, size by antialiased bicubic.

    Targets are brought to the source's format with it for training and evaluation, and
    generated samples to the target's format, so FID always compares like with like."""
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise GtbenchError(
            f"expected uint8 N×C×H×W images, got {images.dtype} {tuple(images.shape)}"
        )
    if images.shape[1] != channels:
        if images.shape[1] == 1:
            images = images.repeat(1, channels, 1, 1)
        elif channels == 1:
            images = images.float().mean(dim=1, keepdim=True).round().to(torch.uint8)
        else:
            raise GtbenchError(f"cannot convert {images.shape[1]} channels to {channels}")
    if tuple(images.shape[-2:]) != (resolution, resolution):
        resized = F.interpolate(
            images.float(),
            size=(resolution, resolution),
            mode="bicubic",
            antialias=True,
            align_corners=False,
        )
        images = resized.round().clamp(0, 255).to(torch.uint8)
    return images


def compared_channels(source_channels: int, target_channels: int) -> int:
    """The channels a target's evaluation compares in: the fewer of the source's and the
    target's own. A grey target (1) judged against a colour source's samples (3) is
    compared in grey — the samples' channel mean against the grey images — because grey
    images repeated to RGB beside colour samples make colour, which the target cannot
    show, dominate the distance. Training still sees the target at the source's channels
    (grey repeated), so the generator is pushed towards grey as part of adapting."""
    return min(int(source_channels), int(target_channels))


def as_rgb(images: torch.Tensor) -> torch.Tensor:
    """uint8 N×3×H×W as torch-fidelity extractors expect (grey repeated to three channels)."""
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise GtbenchError(
            f"expected uint8 N×C×H×W images, got {images.dtype} {tuple(images.shape)}"
        )
    if images.shape[1] == 1:
        return images.repeat(1, 3, 1, 1)
    if images.shape[1] != 3:
        raise GtbenchError(f"images must have 1 or 3 channels, got {images.shape[1]}")
    return images


def save_grid(images: torch.Tensor, path: str | os.PathLike[str], columns: int = 8) -> Path:
    """Write uint8 N×C×H×W images as one PNG grid, atomically; return the path."""
    from PIL import Image
    from torchvision.utils import make_grid

    from gtbench.files.atomic import atomic_write_bytes

    path = Path(path)
    grid = make_grid(images, nrow=columns, padding=1)
    array = grid.permute(1, 2, 0).numpy()
    picture = Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
    return path


def tensor_sha256(images: torch.Tensor) -> str:
    """sha256 of a tensor's bytes, with its dtype and shape: the content key of image sets."""
    data = images.detach().cpu().contiguous()
    digest = hashlib.sha256(f"{data.dtype}{tuple(data.shape)}".encode())
    digest.update(data.numpy().tobytes())
    return digest.hexdigest()


def image_sha256s(images: torch.Tensor) -> list[str]:
    """sha256 of each image's uint8 C×H×W bytes: the content identity of one image, used to
    compare shots with evaluation images (and an extractor's training images with them)."""
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise GtbenchError(
            f"expected uint8 N×C×H×W images, got {images.dtype} {tuple(images.shape)}"
        )
    data = images.detach().cpu().contiguous().numpy()
    return [hashlib.sha256(image.tobytes()).hexdigest() for image in data]
