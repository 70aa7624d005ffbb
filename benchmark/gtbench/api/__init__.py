"""The public plugin API of gtbench: everything a source, method, dataset, extractor or
launcher plugin may import, in one module (a launcher also uses :mod:`gtbench.launcher`
to run cells and read their records).

Built-in plugins (``gtbench_plugins``) and third-party ones import this module and
:mod:`gtbench.errors` only; import-linter contracts (``pyproject.toml``) keep it so. The
names live in the core's packages (:mod:`gtbench.plugin`, :mod:`gtbench.train`,
:mod:`gtbench.files`); this package re-exports them so the surface has one address. It may
import every package of gtbench except :mod:`gtbench.cli`; nothing in the core imports it.

``load_pretrained`` is imported on first access so that importing the API stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gtbench.files.assets import Asset, cache_dir, fetch, sha256_file
from gtbench.plugin.base import (
    ALLOW_OVERLAP,
    Dataset,
    DatasetInfo,
    Extractor,
    FewShotSplit,
    Launcher,
    LaunchRequest,
    Parameter,
    Plugin,
    Source,
    SourceInfo,
    SourceNetworks,
    register_fidelity_extractor,
)
from gtbench.plugin.contracts import check_dataset, check_source
from gtbench.plugin.images import (
    image_sha256s,
    match_format,
    save_grid,
    to_unit_range,
)
from gtbench.plugin.networks import BlockNetwork, Discriminator, Generator
from gtbench.plugin.registry import create as create_plugin
from gtbench.plugin.search import Choice, Distribution, IntUniform, LogUniform, Uniform
from gtbench.train.method import Method, Phase
from gtbench.train.trainer import (
    TRAINER_VERSION,
    TrainConfig,
    TrainContext,
    TrainStep,
    build_context,
    train,
)

if TYPE_CHECKING:
    from gtbench.train.pretrain import load_pretrained

__all__ = [
    # plugin bases and their descriptions
    "Plugin",
    "Parameter",
    "Source",
    "SourceInfo",
    "SourceNetworks",
    "ALLOW_OVERLAP",
    "Dataset",
    "DatasetInfo",
    "FewShotSplit",
    "Extractor",
    "register_fidelity_extractor",
    "Launcher",
    "LaunchRequest",
    "Method",
    "Phase",
    # the contracts the harness checks before training (use them in a plugin's tests)
    "check_dataset",
    "check_source",
    "create_plugin",
    # networks
    "BlockNetwork",
    "Generator",
    "Discriminator",
    # the shared trainer (what a method's hooks receive, and what a custom ``fit`` may call)
    "TRAINER_VERSION",
    "TrainConfig",
    "TrainContext",
    "TrainStep",
    "build_context",
    "train",
    # search distributions of a Parameter (`search=`), for `gtbench tune`
    "Choice",
    "Distribution",
    "IntUniform",
    "LogUniform",
    "Uniform",
    # images
    "match_format",
    "save_grid",
    "image_sha256s",
    "to_unit_range",
    # assets (files a plugin downloads: sha256-verified, cached, pre-fetched)
    "Asset",
    "cache_dir",
    "fetch",
    "sha256_file",
    "load_pretrained",
]

_LAZY = {"load_pretrained": "gtbench.train.pretrain"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gtbench.api' has no attribute {name!r}")
