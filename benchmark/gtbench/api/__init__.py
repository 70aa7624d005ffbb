"""The public plugin API of gtbench: everything a source, method, dataset, extractor or
launcher plugin may import, in one module.

Built-in plugins (``gtbench_plugins``) and third-party ones import this module and
:mod:`gtbench.errors` only; import-linter contracts (``pyproject.toml``) keep it so. The
names live in the core's packages (:mod:`gtbench.plugin`, :mod:`gtbench.train`,
:mod:`gtbench.files`); this package re-exports them so the surface has one address. It may
import every package of gtbench except :mod:`gtbench.cli`; nothing in the core imports it.

Launchers may also use the small runner API at the end of ``__all__`` (``run_cell``,
the record helpers, ``write_tables``); those are imported lazily on first access so that
importing the API stays cheap (no torch-fidelity, no pandas).
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
    as_rgb,
    image_sha256s,
    match_format,
    save_grid,
    tensor_sha256,
    to_uint8,
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
    from gtbench.launch.runner import CellOutcome, run_cell
    from gtbench.results.leaderboard import write_tables
    from gtbench.results.records import (
        FAILED_RECORD,
        RECORD,
        RUNNING,
        load_record,
        run_dir,
        write_record,
    )
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
    "as_rgb",
    "match_format",
    "save_grid",
    "image_sha256s",
    "tensor_sha256",
    "to_uint8",
    "to_unit_range",
    # assets (files a plugin downloads: sha256-verified, cached, pre-fetched)
    "Asset",
    "cache_dir",
    "fetch",
    "sha256_file",
    "load_pretrained",
    # the runner API for launchers (lazy)
    "CellOutcome",
    "FAILED_RECORD",
    "RECORD",
    "RUNNING",
    "load_record",
    "run_cell",
    "run_dir",
    "write_record",
    "write_tables",
]

_LAZY = {
    "CellOutcome": "gtbench.launch.runner",
    "RUNNING": "gtbench.results.records",
    "run_cell": "gtbench.launch.runner",
    "RECORD": "gtbench.results.records",
    "FAILED_RECORD": "gtbench.results.records",
    "load_record": "gtbench.results.records",
    "run_dir": "gtbench.results.records",
    "write_record": "gtbench.results.records",
    "write_tables": "gtbench.results.leaderboard",
    "load_pretrained": "gtbench.train.pretrain",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gtbench.api' has no attribute {name!r}")
