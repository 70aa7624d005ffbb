"""bf16 on a CPU without native bf16 (emulated, ~20x slower) falls back to fp32 with a
warning and a record note; on a native-bf16 CPU (or a GPU) bf16 stays."""

from __future__ import annotations

import pytest
import torch

from gtbench.plugin import registry
from gtbench_plugins.sources.stylegan2 import precision

TINY_BF16 = "stylegan2:ckpt=random,size=32,channel_max=32,style_dim=64,n_mlp=2,precision=bf16"


@pytest.fixture
def on_cpu(monkeypatch):
    monkeypatch.setenv("GTBENCH_DEVICE", "cpu")


def test_bf16_falls_back_to_fp32_without_native_bf16(on_cpu, monkeypatch):
    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: ())
    with pytest.warns(RuntimeWarning, match="no native bf16"):
        networks = registry.sources().create(TINY_BF16).load()
    assert networks.generator.autocast_dtype is None
    assert networks.discriminator.autocast_dtype is None
    assert networks.notes["precision"].startswith("fp32: bf16 was asked for")
    assert "no native bf16" in precision.cpu_capability()


def test_bf16_stays_on_a_native_bf16_cpu(on_cpu, monkeypatch):
    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: ("amx_bf16",))
    networks = registry.sources().create(TINY_BF16).load()
    assert networks.generator.autocast_dtype is torch.bfloat16
    assert networks.notes["precision"] == "bf16"


def test_bf16_stays_for_a_gpu_run(monkeypatch):
    monkeypatch.setenv("GTBENCH_DEVICE", "cuda")
    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: ())
    assert precision.bf16_fallback_reason() is None
