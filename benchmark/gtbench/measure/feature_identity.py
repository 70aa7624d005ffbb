"""What identifies a feature space, and the one canonical hash of identities.

One function, :func:`feature_identity`, says everything that can change an extractor's
features; its parts serve the three places that ask "same features?":

- a cell's ``run_id`` hashes :func:`extractor_ref` (plugin name, parameters, version and
  ``Extractor.identity()``, the weights hash): the part that has always been in every run
  id, so committed run ids stay what they are;
- the reference-feature cache keys its files by all of it (:func:`reference_keys`): also the
  distribution that provided the extractor and its version, torch-fidelity's version,
  torch's default dtype, the device type and the preprocessing (the harness's resize mode,
  resolution, channels, grey-to-RGB), so an upgrade of any of them recomputes the features
  instead of reading stale ones;
- the leaderboard's evaluation identity reads the recorded ``reference_key`` (the reference
  set in this feature space) and ``extractor_identity`` (the weights).

It lives in :mod:`gtbench.measure` because the cache does (a lower layer may not import
:mod:`gtbench.plan`); :mod:`gtbench.plan.identity` re-exports it, and every other package
asks there. Cheap to import: neither torch nor torch-fidelity (whose version is read from
metadata).
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from typing import TYPE_CHECKING, Any

from gtbench.plugin import registry

if TYPE_CHECKING:
    import torch

    from gtbench.plugin.base import Extractor

__all__ = [
    "CACHE_FORMAT",
    "canonical_json",
    "digest",
    "extractor_ref",
    "feature_identity",
    "reference_keys",
]

# 1: content, evaluation images, resolution and the weights identity (the recorded
#    ``reference_key``, kept as the leaderboard's reference-set identity);
# 2: the cache file's key adds the whole feature identity (:func:`feature_identity`)
CACHE_FORMAT = 2


def canonical_json(value: Any, *, compact: bool = True) -> str:
    """Sorted-key JSON of ``value`` (non-JSON values as ``str``): what every identity hashes.

    ``compact=False`` keeps json's default separators, with which the leaderboard's
    ``protocol`` labels and the recorded ``reference_key`` were first made."""
    separators = (",", ":") if compact else None
    return json.dumps(value, sort_keys=True, separators=separators, default=str)


def digest(value: Any, *, length: int | None = None, compact: bool = True) -> str:
    """sha256 hex of :func:`canonical_json` of ``value``, cut to ``length`` digits."""
    text = canonical_json(value, compact=compact)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def extractor_ref(extractor: Extractor) -> dict[str, Any]:
    """``{"name", "params", "version", "identity"}``: the part of an extractor's identity a
    cell stores under ``eval.extractor`` and its ``run_id`` hashes. Calls
    ``Extractor.identity()``, which may raise ``MissingAssetError`` (weights not here)."""
    return {
        "name": extractor.name,
        "params": dict(sorted(extractor.params.items())),
        "version": str(type(extractor).version),
        "identity": str(extractor.identity()),
    }


def _distribution(extractor: Extractor) -> dict[str, str | None]:
    try:
        found = registry.extractors().entry(extractor.name).provenance()
    except Exception:  # noqa: BLE001 - a class never registered (tests): no distribution
        return {"distribution": None, "distribution_version": None}
    return {"distribution": found["distribution"], "distribution_version": found["version"]}


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def feature_identity(
    extractor: Extractor, *, resolution: int, channels: int, device: str | torch.device
) -> dict[str, Any]:
    """Everything that can change the features ``extractor`` computes from uint8 images of
    ``channels`` × ``resolution``² on ``device``: :func:`extractor_ref`, the torch-fidelity
    network and layer, the plugin's distribution and its version, torch-fidelity's version,
    torch's default dtype, the device type and the preprocessing before the network (the
    harness's resize mode and grey-to-RGB; the network's own resize is part of its
    ``identity()``). Registers the network with torch-fidelity (``fidelity_name``)."""
    import torch  # not at import: planning and tables ask for run ids without torch

    from gtbench.plugin.images import GREY_TO_RGB, RESIZE_MODE

    return {
        **extractor_ref(extractor),
        **_distribution(extractor),
        "fidelity_extractor": extractor.fidelity_name(),
        "feature_layer": extractor.feature_layer(),
        "torch_fidelity": _version("torch-fidelity"),
        "dtype": str(torch.get_default_dtype()),
        "device": torch.device(device).type,
        "preprocessing": {
            "resize": RESIZE_MODE,
            "resolution": resolution,
            "channels": channels,
            "to_rgb": GREY_TO_RGB,
        },
    }


def reference_keys(
    content_hash: str,
    images: torch.Tensor,
    extractor: Extractor,
    *,
    resolution: int,
    channels: int,
    device: str | torch.device,
) -> tuple[str, str, dict[str, Any]]:
    """``(reference_key, cache_key, features)`` of the reference features of ``images`` (the
    evaluation set of a dataset whose content hash is ``content_hash``).

    ``reference_key`` names the reference set in this feature space (content, the images
    themselves, resolution, weights identity, network and layer): what the leaderboard
    groups by, equal to what records have held since the first cache format. ``cache_key``
    names the cache file: ``reference_key``'s fields plus the whole :func:`feature_identity`
    (``features``), so another plugin version, distribution, torch-fidelity version,
    dtype, device type or preprocessing never reads these features back."""
    from gtbench.plugin.images import tensor_sha256

    features = feature_identity(extractor, resolution=resolution, channels=channels, device=device)
    reference = {
        "format": 1,
        "dataset_content": content_hash,
        "evaluation_images": tensor_sha256(images),
        "resolution": resolution,
        "extractor": features["identity"],
        "fidelity_extractor": features["fidelity_extractor"],
        "feature_layer": features["feature_layer"],
    }
    cache = {**reference, "format": CACHE_FORMAT, "features": features}
    return digest(reference, compact=False), digest(cache), features
