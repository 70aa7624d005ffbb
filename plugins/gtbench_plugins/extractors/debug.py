"""A random-weight feature extractor for tests and the debug suite: no download, fast on CPU.

Its features are meaningless as a quality measure (the weights are a fixed seeded
initialisation, never trained); they only exercise the evaluation plumbing end to end.
"""

from __future__ import annotations

from typing import ClassVar

from gtbench.api import Extractor, Parameter, register_fidelity_extractor
from gtbench.errors import PluginError

FIDELITY_NAME = "gtbench-debug"
_SEED = 20240601
_WIDTHS = (16, 32, 64)  # conv channels; each layer's feature is [mean, std] pooled: 2×width
_INPUT_SIZE = 16
LAYERS = tuple(f"conv{i + 1}" for i in range(len(_WIDTHS)))


def register() -> str:
    """Register the network with torch-fidelity once per process; return its name."""
    from gtbench_plugins.extractors.debug_net import DebugFeatureNet  # imports torch-fidelity

    return register_fidelity_extractor(FIDELITY_NAME, DebugFeatureNet)


class DebugExtractor(Extractor):
    """Seeded random conv features (128-d by default); for tests only, not a real metric."""

    description = "random-weight conv features for tests (no download; not a real metric)"
    is_metric: ClassVar[bool] = False
    parameters: ClassVar = {
        "layer": Parameter(
            f"conv{len(_WIDTHS)}", "feature layer: conv1 (32-d), conv2 (64-d) or conv3 (128-d)"
        ),
    }

    def fidelity_name(self) -> str:
        return register()

    def feature_layer(self) -> str:
        layer = self.params["layer"]
        if layer not in LAYERS:
            choices = ", ".join(LAYERS)
            raise PluginError(f"extractor {self.name!r}: unknown layer {layer!r} ({choices})")
        return layer

    def identity(self) -> str:
        widths = "-".join(map(str, _WIDTHS))
        return f"{FIDELITY_NAME}:seed={_SEED},widths={widths},size={_INPUT_SIZE}"
