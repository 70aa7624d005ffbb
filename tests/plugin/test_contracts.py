"""Plugin contracts (gtbench.plugin.contracts), tried as a third-party author would break them:
each broken dataset or source fails in one line naming the plugin and its distribution,
in the sweep's pre-flight before anything trains, and in the registry-wide tests."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch
from torch import nn

from gtbench.api import (
    Dataset,
    DatasetInfo,
    Discriminator,
    Generator,
    Parameter,
    Source,
    SourceInfo,
    SourceNetworks,
    check_dataset,
    check_source,
)
from gtbench.errors import PluginError
from gtbench.plugin import registry
from tests.helpers import FAST, gtbench
from tests.plugins import test_every_plugin

DIST = "thirdparty-gan"


class ThirdPartyDataset(Dataset):
    """40 random 32 px grey images; ``mode`` breaks the contract in one way."""

    description = "a dataset that says 32 px, 1 channel, 40 images"
    parameters: ClassVar = {"mode": Parameter("good", "how to break the contract")}

    @property
    def info(self) -> DatasetInfo:
        return DatasetInfo(resolution=32, channels=1, size=40, shot_pool=10)

    def images(self):  # noqa: ANN201 - a deliberately loose return value
        images = torch.randint(0, 256, (40, 1, 32, 32), generator=torch.Generator().manual_seed(0))
        images = images.to(torch.uint8)
        mode = self.params["mode"]
        return {
            "good": images,
            "small": images[..., :8, :8],
            "rgb": images.repeat(1, 3, 1, 1),
            "dim": images // 16,  # uint8 values 0..15
            # 0..16 data (load_digits) upscaled before rescaling: the overshoot reaches 19
            "overshoot": (images.float() * 19 / 255).round().to(torch.uint8),
            "percent": (images.float() * 100 / 255).round().to(torch.uint8),  # 0..100
            "float": images.float() / 255,
            "nhw": images[:, 0],
            "short": images[:30],
            "numpy": images.numpy(),
        }[mode]


class _Scale(nn.Module):
    def __init__(self, factor: float, offset: float) -> None:
        super().__init__()
        self.factor, self.offset = factor, offset

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor + self.offset


class _TinyG(Generator):
    def __init__(self, latent: int, channels: int, res: int, scale: tuple[float, float]) -> None:
        super().__init__(
            {
                "fc": nn.Sequential(nn.Linear(latent, channels * res * res), nn.Tanh()),
                "image": nn.Sequential(nn.Unflatten(1, (channels, res, res)), _Scale(*scale)),
            }
        )
        self.latent_shape = (latent,)


class _TinyD(Discriminator):
    def __init__(self, channels: int, res: int) -> None:
        super().__init__({"logit": nn.Sequential(nn.Flatten(), nn.Linear(channels * res * res, 1))})


class ThirdPartySource(Source):
    """Says: 32 px RGB, latent 8, with a discriminator; ``mode`` breaks that in one way."""

    description = "a source that says 32 px RGB, latent (8,), with a discriminator"
    parameters: ClassVar = {"mode": Parameter("good", "how to break the contract")}

    @property
    def info(self) -> SourceInfo:
        return SourceInfo(32, 3, (8,), has_discriminator=self.params["mode"] != "g-only")

    def load(self, *, pretrained: bool = True) -> SourceNetworks:
        mode = self.params["mode"]
        torch.manual_seed(0)
        res = 16 if mode == "res16" else 32
        channels = 1 if mode == "grey" else 3
        latent = 4 if mode == "latent" else 8
        scale = (127.5, 127.5) if mode == "uint8-scale" else (1.0, 0.0)
        generator = _TinyG(latent, channels, res, scale)
        discriminator = None if mode in ("g-only", "says-d") else _TinyD(channels, res)
        return SourceNetworks(generator, discriminator)


@pytest.fixture
def third_party():
    registry.datasets().register("tp-data", ThirdPartyDataset, distribution=DIST)
    registry.sources().register("tp-source", ThirdPartySource, distribution=DIST)
    yield
    registry.reset()


def _dataset(mode: str) -> Dataset:
    return registry.datasets().create(f"tp-data:mode={mode}")


def _source(mode: str) -> Source:
    return registry.sources().create(f"tp-source:mode={mode}")


def test_good_plugins_pass(third_party):
    check_dataset(_dataset("good"))
    check_source(_source("good"))


@pytest.mark.parametrize(
    "mode, message",
    [
        ("small", "images() gives 8×8 images, but info.resolution is 32"),
        ("rgb", "images() gives 3-channel images, but info.channels is 1"),
        ("dim", "images() values only reach 15 of 255"),
        ("overshoot", "images() values only reach 19 of 255"),
        ("percent", "images() values only reach 100 of 255"),
        ("float", "images() must return uint8 images (0..255), got torch.float32"),
        ("nhw", "images() must return N×C×H×W images, got shape 40×32×32"),
        ("short", "images() gives 30 images, but info.size is 40"),
        ("numpy", "images() must return a torch.Tensor, got ndarray"),
    ],
)
def test_broken_datasets_fail_in_one_line_naming_the_plugin(third_party, mode, message):
    with pytest.raises(PluginError) as caught:
        check_dataset(_dataset(mode))
    text = str(caught.value)
    assert text.startswith(f"dataset 'tp-data' ({DIST}, ") and message in text
    assert "\n" not in text


@pytest.mark.parametrize(
    "mode, message",
    [
        ("res16", "its generator gives 2×3×16×16 for 2 latents, expected 2×3×32×32"),
        ("grey", "its generator gives 2×1×32×32 for 2 latents, expected 2×3×32×32"),
        ("latent", "sample_latent(2) gives 2×4, but info.latent_shape is (8,)"),
        ("uint8-scale", "expected images in [-1, 1]"),
        ("g-only", "does not implement new_discriminator()"),
        ("says-d", "load() gave no discriminator, but info.has_discriminator is True"),
    ],
)
def test_broken_sources_fail_in_one_line_naming_the_plugin(third_party, mode, message):
    with pytest.raises(PluginError) as caught:
        check_source(_source(mode))
    text = str(caught.value)
    assert text.startswith(f"source 'tp-source' ({DIST}, ") and message in text
    assert "\n" not in text


def test_g_only_source_is_fine_when_nothing_trains(third_party):
    check_source(_source("g-only"), needs_discriminator=False)


def test_the_sweep_refuses_a_broken_dataset_before_training(third_party, tmp_path):
    result = gtbench("run", *FAST, "--methods", "finetune", "--datasets", "tp-data:mode=small",
                     results=tmp_path)  # fmt: skip
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "dataset 'tp-data'" in lines[0] and "8×8" in lines[0]
    assert not list(tmp_path.glob("runs/*/record.json"))  # nothing trained, nothing ranked


@pytest.mark.parametrize("mode", ["float", "overshoot"])
def test_a_dry_run_makes_the_contract_checks_too(third_party, tmp_path, mode):
    """``--dry-run`` plans with the checks a run makes before training: a float dataset
    (or one on a 0..19 scale) fails the dry run with exit 2 and the run's one line."""
    result = gtbench("run", *FAST, "--methods", "finetune", "--datasets", f"tp-data:mode={mode}",
                     "--dry-run", results=tmp_path)  # fmt: skip
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "dataset 'tp-data'" in lines[0], result.output
    assert "would run" not in result.output and not list(tmp_path.glob("runs/*"))
    good = gtbench("run", *FAST, "--methods", "finetune", "--datasets", "tp-data",
                   "--dry-run", results=tmp_path)  # fmt: skip
    assert good.exit_code == 0 and "would run" in good.output, good.output


def test_the_sweep_refuses_a_broken_source_before_training(third_party, tmp_path):
    result = gtbench("run", *FAST, "--methods", "finetune", "--sources", "tp-source:mode=grey",
                     results=tmp_path)  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "source 'tp-source'" in result.output and "2×1×32×32" in result.output
    assert not list(tmp_path.glob("runs/*/record.json"))


def test_the_registry_wide_tests_catch_a_broken_plugin(third_party, monkeypatch):
    monkeypatch.setattr(ThirdPartyDataset, "example_params", {"mode": "dim"})
    with pytest.raises(PluginError, match="values only reach 15"):
        test_every_plugin.test_every_dataset_meets_its_contract("tp-data")
    monkeypatch.setattr(ThirdPartySource, "example_params", {"mode": "res16"})
    with pytest.raises(PluginError, match="2×3×16×16"):
        test_every_plugin.test_every_source_meets_its_contract("tp-source")
