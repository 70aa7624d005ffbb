"""Reading rosinality-format StyleGAN2 checkpoints safely.

A rosinality-format checkpoint is a ``torch.save`` dict with ``g_ema`` (the generator
to adapt), usually ``g`` and ``d`` (training generator and discriminator), often
``latent_avg`` (mean w, for truncation), and from rosinality's ``train.py`` also
optimiser states and ``args`` (an ``argparse.Namespace``). It is read with
``torch.load(weights_only=True)``, which never runs code; only ``argparse.Namespace`` is
added to the allowed globals (rebuilding it only sets attributes).

NVIDIA ``.pkl`` files (NVlabs/stylegan2, stylegan2-ada(-pytorch), stylegan3) are
*pickles of code*: unpickling imports and runs whatever the file names, so a downloaded
``.pkl`` can execute arbitrary commands. They are refused unless ``allow_pickle=true``,
and even then unpickling needs the NVlabs code (``dnnlib``, ``torch_utils``) importable.
Convert them instead, once, on a machine with that code:

* TensorFlow StyleGAN2 (``stylegan2-ffhq-config-f.pkl``): rosinality/stylegan2-pytorch's
  ``python convert_weight.py --repo PATH/TO/NVlabs/stylegan2 --gen --disc FILE.pkl``
  writes ``FILE.pt`` with ``g_ema``, ``g``, ``d`` and ``latent_avg`` (``--channel_multiplier
  1`` for non-config-f models).
* stylegan2-ada-pytorch ``.pkl``: load it with NVlabs' code and map its ``G_ema``/``D``
  state dicts to rosinality's names with a converter of your choice, then
  ``torch.save({"g_ema": ..., "d": ..., "latent_avg": G_ema.mapping.w_avg}, "FILE.pt")``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pickle
import re
import tempfile
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from gtbench.api import cache_dir, sha256_file
from gtbench.errors import GtbenchError, MissingAssetError

__all__ = [
    "CheckpointError",
    "PickleRefusedError",
    "check_state_dict",
    "infer_config",
    "load_checkpoint",
    "resolve_checkpoint",
]

_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTO = 0x80  # first byte of a protocol ≥ 2 pickle (legacy torch.save, NVIDIA .pkl)
_CONVERT_HINT = (
    "convert it to a rosinality-format .pt (see the docstring of "
    "gtbench_plugins.sources.stylegan2.checkpoint, e.g. rosinality's convert_weight.py)"
)


class CheckpointError(GtbenchError):
    """A StyleGAN2 checkpoint that cannot be used; the message says why in one line."""


class PickleRefusedError(CheckpointError):
    """A checkpoint that would run code when unpickled, refused without ``allow_pickle``."""


# --------------------------------------------------------------------------- locating


def _is_url(text: str) -> bool:
    return urllib.parse.urlparse(text).scheme in {"http", "https"}


def _download_unverified(url: str) -> Path:
    """Download ``url`` once into the cache (no sha256 given: keyed by the URL)."""
    name = Path(urllib.parse.urlparse(url).path).name or "checkpoint.pt"
    key = hashlib.sha256(url.encode()).hexdigest()[:12]
    target = cache_dir() / "downloads" / f"{key}-{name}"
    if target.is_file():
        return target
    if os.environ.get("GTBENCH_OFFLINE", "").strip() not in {"", "0"}:
        raise MissingAssetError(
            f"StyleGAN2 checkpoint {url} is not in the cache and GTBENCH_OFFLINE is set: "
            f"download it and pass ckpt=PATH"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=target.parent, prefix=".fetch-")
    try:
        with urllib.request.urlopen(url, timeout=30) as response, os.fdopen(handle, "wb") as out:
            while chunk := response.read(1 << 20):
                out.write(chunk)
        os.replace(tmp, target)
    except (OSError, ValueError) as error:
        Path(tmp).unlink(missing_ok=True)
        raise MissingAssetError(
            f"could not download StyleGAN2 checkpoint {url} ({error}); download it by hand "
            f"and pass ckpt=PATH"
        ) from None
    return target


def resolve_checkpoint(ckpt: str, sha256: str = "") -> Path:
    """The local file for ``ckpt`` (a path or an http(s) URL), verified when ``sha256``.

    A URL is downloaded once into the gtbench cache (``$GTBENCH_CACHE``): through
    :func:`gtbench.files.assets.fetch` when a sha256 is given, else keyed by the URL."""
    sha256 = sha256.strip().lower()
    if sha256 and not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise CheckpointError(f"sha256 must be 64 hex digits, got {sha256!r}")
    if _is_url(ckpt):
        if not sha256:
            return _download_unverified(ckpt)
        from gtbench.api import Asset, fetch

        name = Path(urllib.parse.urlparse(ckpt).path).name or "checkpoint.pt"
        asset = Asset(
            name=f"stylegan2:{name}",
            filename=f"{sha256[:12]}-{name}",
            sha256=sha256,
            urls=(ckpt,),
            description="StyleGAN2 checkpoint (rosinality format)",
        )
        return fetch(asset)
    path = Path(ckpt).expanduser()
    if not path.is_file():
        raise MissingAssetError(f"StyleGAN2 checkpoint {path} does not exist")
    if sha256 and (actual := sha256_file(path)) != sha256:
        raise CheckpointError(f"StyleGAN2 checkpoint {path} has sha256 {actual}, expected {sha256}")
    return path


# --------------------------------------------------------------------------- reading


def _refuse(path: Path, why: str) -> PickleRefusedError:
    return PickleRefusedError(
        f"refusing to unpickle {path}: {why}; unpickling such a file can run arbitrary code "
        f"on this machine. If you trust its origin, pass allow_pickle=true (NVIDIA .pkl "
        f"files also need NVlabs' dnnlib/torch_utils importable), or better {_CONVERT_HINT}"
    )


def _read_unsafe(path: Path) -> Any:
    """``torch.load(weights_only=False)``: only reached with ``allow_pickle=true``."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except (ModuleNotFoundError, AttributeError, ImportError) as error:
        raise CheckpointError(
            f"{path} needs code that is not importable to unpickle ({error}); NVIDIA .pkl "
            f"files need NVlabs' stylegan2(-ada-pytorch) repository (dnnlib, torch_utils) on "
            f"PYTHONPATH, or {_CONVERT_HINT}"
        ) from None
    except Exception as error:  # noqa: BLE001 - any failure of an untrusted file is one line
        raise CheckpointError(f"{path} is corrupt or not a checkpoint ({error})") from None


def load_checkpoint(path: Path, *, allow_pickle: bool = False) -> Any:
    """The unpickled checkpoint object, read without running code unless ``allow_pickle``."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    is_zip = head == _ZIP_MAGIC
    if path.suffix.lower() == ".pkl" and not allow_pickle:
        raise _refuse(path, "a .pkl file (NVIDIA's format pickles the network code itself)")
    if is_zip and not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path} is a truncated or corrupt zip/torch checkpoint")
    if not is_zip and (not head or head[0] != _PICKLE_PROTO):
        raise CheckpointError(
            f"{path} is not a PyTorch checkpoint (neither torch.save's zip format nor a "
            f"pickle; first bytes {head!r}): corrupt, truncated or another format"
        )
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        text = str(error)
        found = re.search(r"GLOBAL ([\w.]+)", text)
        if found is None and "Unsupported" not in text:
            raise CheckpointError(f"{path} is corrupt or truncated ({_first_line(text)})") from None
        if allow_pickle:
            return _read_unsafe(path)
        what = f"it references {found.group(1)}" if found else "it is not a weights-only file"
        raise _refuse(path, f"{what}, which weights-only loading does not allow") from None
    except Exception as error:  # noqa: BLE001 - corrupt files raise many exception types
        raise CheckpointError(
            f"{path} is corrupt or truncated ({type(error).__name__}: {_first_line(str(error))})"
        ) from None


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    line = next((ln for ln in lines if "error" in ln.lower()), lines[0] if lines else "")
    return line[:200]


# --------------------------------------------------------------------------- contents


def network_states(checkpoint: Any, path: Path) -> dict[str, Any]:
    """``{"g_ema": sd, "g": sd?, "d": sd?, "latent_avg": tensor?}`` from a checkpoint.

    A bare generator state dict (keys ``style.1.weight`` ...) is accepted as ``g_ema``."""
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(
            f"{path} holds a {type(checkpoint).__name__}, not a rosinality-format dict "
            f"(g_ema/g/d/latent_avg); {_CONVERT_HINT}"
        )
    if "G_ema" in checkpoint and "g_ema" not in checkpoint:
        raise CheckpointError(f"{path} is an NVIDIA stylegan2-ada network pickle; {_CONVERT_HINT}")
    if "style.1.weight" in checkpoint:
        checkpoint = {"g_ema": checkpoint}
    generator = checkpoint.get("g_ema", checkpoint.get("g"))
    if not isinstance(generator, Mapping):
        keys = ", ".join(sorted(map(str, checkpoint))[:8]) or "none"
        raise CheckpointError(
            f"{path} is not a rosinality-format StyleGAN2 checkpoint: no 'g_ema' or 'g' state "
            f"dict (top-level keys: {keys})"
        )
    states: dict[str, Any] = {"g_ema": generator}
    for key in ("g", "d"):
        if isinstance(checkpoint.get(key), Mapping):
            states[key] = checkpoint[key]
    latent_avg = checkpoint.get("latent_avg")
    if isinstance(latent_avg, torch.Tensor):
        states["latent_avg"] = latent_avg
    return states


def _count(state: Mapping[str, Any], pattern: str) -> int:
    regex = re.compile(pattern)
    return len({match.group(1) for key in state if (match := regex.fullmatch(key))})


def infer_config(g_state: Mapping[str, Any]) -> dict[str, int]:
    """size, style_dim, n_mlp, channel_max and channel_multiplier of a generator state.

    Resolution from the number of ``to_rgbs``; multiplier from the first width above 32 px
    that is not capped (0 when every width is capped: then any multiplier fits)."""
    try:
        n_rgbs = _count(g_state, r"to_rgbs\.(\d+)\.conv\.weight")
        size = 2 ** (n_rgbs + 2)
        style_dim = int(g_state["conv1.conv.modulation.weight"].shape[1])
        n_mlp = _count(g_state, r"style\.(\d+)\.weight")
        channel_max = int(g_state["input.input"].shape[1])
        multiplier = 0
        for index in range(n_rgbs):
            resolution = 2 ** (index + 3)
            width = int(g_state[f"to_rgbs.{index}.conv.weight"].shape[2])
            if resolution > 32 and width < channel_max:
                multiplier = max(1, width * resolution // 16384)
                break
    except (KeyError, AttributeError, IndexError) as error:
        raise CheckpointError(
            f"cannot read the StyleGAN2 configuration from the generator state (missing {error})"
        ) from None
    return {
        "size": size,
        "style_dim": style_dim,
        "n_mlp": n_mlp,
        "channel_max": channel_max,
        "channel_multiplier": multiplier,
    }


def check_state_dict(
    module: torch.nn.Module, state: Mapping[str, Any], what: str
) -> dict[str, torch.Tensor]:
    """Raise one line listing missing/unexpected keys and shape mismatches, if any."""
    expected = module.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    mismatched = [
        f"{key} {tuple(getattr(state[key], 'shape', ()))} vs {tuple(expected[key].shape)}"
        for key in expected
        if key in state
        and (
            not isinstance(state[key], torch.Tensor)
            or tuple(state[key].shape) != tuple(expected[key].shape)
        )
    ]
    problems = []
    for label, items in (
        ("missing", missing),
        ("unexpected", unexpected),
        ("shape mismatches (checkpoint vs model)", mismatched),
    ):
        if items:
            shown = ", ".join(items[:3]) + (", ..." if len(items) > 3 else "")
            problems.append(f"{len(items)} {label}: {shown}")
    if problems:
        raise CheckpointError(f"{what} does not fit the model: " + "; ".join(problems))
    return dict(state)
