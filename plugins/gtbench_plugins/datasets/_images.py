"""Shared image helpers for the built-in dataset plugins (resizing with PIL, layout)."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

RESAMPLE = {"bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS}


def resize_planes(planes: np.ndarray, res: int, method: str = "bicubic") -> np.ndarray:
    """Resize N×H×W planes to N×res×res with PIL in float mode, then round to uint8.

    PIL's antialiased resampling in float ("F") mode avoids the aliasing of tensor-library
    resizes and the early quantisation of 8-bit resizes (clean-fid's recommendation).
    ``planes`` holds values on the 0-255 scale."""
    if res < 1:
        raise ValueError(f"res must be positive, got {res}")
    planes = np.asarray(planes, dtype=np.float32)
    if planes.shape[1:] == (res, res):
        out = planes
    else:
        resample = RESAMPLE[method]
        out = np.stack(
            [np.asarray(Image.fromarray(plane).resize((res, res), resample)) for plane in planes]
        )
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def grey_to_tensor(planes: np.ndarray, channels: int) -> torch.Tensor:
    """N×H×W uint8 grey planes → N×C×H×W uint8 tensor (C = 1, or 3 by repetition)."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    tensor = torch.from_numpy(np.ascontiguousarray(planes)).unsqueeze(1)
    return tensor.repeat(1, channels, 1, 1).contiguous() if channels == 3 else tensor.contiguous()
