"""The DCGAN architecture and the two real offline sources built on it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from gtbench.errors import MissingAssetError
from gtbench.train.pretrain import load_pretrained, pretrain, pretrain_command
from gtbench_plugins.datasets.debug import DebugDataset
from gtbench_plugins.sources import animals, digiface
from gtbench_plugins.sources.dcgan import (
    DCGANDiscriminator,
    DCGANGenerator,
    dcgan_init_,
    from_main_state_dict,
    to_main_state_dict,
)

# ---------------------------------------------------------------- architecture


@pytest.mark.parametrize("res,channels", [(32, 1), (64, 3)])
def test_dcgan_shapes_and_block_order(res: int, channels: int) -> None:
    g = dcgan_init_(DCGANGenerator(res, channels, latent=100, width=16))
    d = dcgan_init_(DCGANDiscriminator(res, channels, width=16))
    z = g.sample_latent(4)
    assert z.shape == (4, 100, 1, 1)
    image, features = g.forward_features(z)
    assert image.shape == (4, channels, res, res)
    assert [f.shape[-1] for f in features] == [4 * 2**i for i in range(len(features))]
    logit, d_features = d.forward_features(image)
    assert logit.shape == (4, 1, 1, 1)
    assert [f.shape[-1] for f in d_features] == sorted(
        (f.shape[-1] for f in d_features), reverse=True
    )
    assert g.block_names()[-1] == f"up{res}" and d.block_names()[-1] == "logit"


def test_reference_keys_round_trip() -> None:
    g = DCGANGenerator(64, 3, 100, 64)
    main = to_main_state_dict(g)
    assert "main.0.weight" in main and "main.12.weight" in main and "main.1.running_mean" in main
    assert from_main_state_dict(g, main).keys() == g.state_dict().keys()
    with pytest.raises(KeyError, match="only"):
        from_main_state_dict(g, {"main.40.weight": torch.zeros(1)})
    with pytest.raises(KeyError, match="reference DCGAN"):
        from_main_state_dict(g, {"model.0.weight": torch.zeros(1)})


def test_bad_resolution() -> None:
    with pytest.raises(ValueError, match="resolution"):
        DCGANGenerator(48)


# ---------------------------------------------------------------- digiface-dcgan64


@pytest.fixture(scope="module")
def digiface_weights() -> Path:
    from gtbench.files.assets import fetch

    try:
        return fetch(digiface.WEIGHTS)
    except MissingAssetError as error:  # no cache and no registry: nothing to check
        pytest.skip(str(error))


def test_digiface_state_dict_loads_strictly(digiface_weights: Path) -> None:
    state = digiface.read_generator_state(str(digiface_weights))
    assert {"main.0.weight", "main.12.weight"} <= set(state)
    g = DCGANGenerator(64, 3, 100, 64)
    result = g.load_state_dict(from_main_state_dict(g, state), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert sum(p.numel() for p in g.parameters()) == 3_576_704
    assert to_main_state_dict(g).keys() == state.keys()


def test_digiface_source(digiface_weights: Path) -> None:
    source = digiface.DigiFaceSource()
    assert source.info.has_discriminator is False
    assert source.info.latent_shape == (100, 1, 1)
    networks = source.load()
    assert networks.discriminator is None
    g = networks.generator.eval()
    with torch.no_grad():
        x = g(g.sample_latent(8, generator=torch.Generator().manual_seed(0)))
    assert x.shape == (8, 3, 64, 64)
    assert x.min() >= -1 and x.max() <= 1 and x.std() > 0.1  # real images, not a constant
    d = source.new_discriminator()
    assert isinstance(d, DCGANDiscriminator)
    assert d(x).shape == (8, 1, 1, 1)
    again = source.new_discriminator()
    assert all(torch.equal(a, b) for a, b in zip(d.parameters(), again.parameters(), strict=True))
    fresh = source.load(pretrained=False)
    assert fresh.discriminator is not None
    assert not torch.equal(fresh.generator.blocks["up64"][0].weight, g.blocks["up64"][0].weight)


def test_digiface_unreadable_weights(tmp_path: Path) -> None:
    bad = tmp_path / "weights.tar"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(MissingAssetError) as info:
        digiface.read_generator_state(str(bad))
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------- animals-dcgan32


def test_animals_checkpoint_loads_with_pinned_hash() -> None:
    assert animals.CHECKPOINT.is_file(), "committed checkpoint missing"
    assert animals.CHECKPOINT.stat().st_size < 8_000_000
    source = animals.AnimalsSource()
    assert source.checkpoint_path() == (animals.CHECKPOINT, animals.CHECKPOINT_SHA256)
    networks = source.load()
    assert networks.discriminator is not None
    g = networks.generator.eval()
    with torch.no_grad():
        x = g(g.sample_latent(6))
    assert x.shape == (6, 1, 32, 32) and x.min() >= -1 and x.max() <= 1
    assert networks.discriminator(x).shape == (6, 1, 1, 1)
    sidecar = json.loads(animals.CHECKPOINT.with_suffix(".json").read_text())
    assert sidecar["checkpoint_sha256"] == animals.CHECKPOINT_SHA256
    assert animals.CHECKPOINT.with_suffix(".png").is_file()


def test_animals_corrupted_checkpoint_one_line(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.safetensors"
    data = bytearray(animals.CHECKPOINT.read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    source = animals.AnimalsSource(checkpoint=str(corrupt), sha256=animals.CHECKPOINT_SHA256)
    with pytest.raises(MissingAssetError, match="sha256") as info:
        source.load()
    assert "\n" not in str(info.value)

    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 64)
    with pytest.raises(MissingAssetError, match="not a readable safetensors") as info:
        animals.AnimalsSource(checkpoint=str(garbage)).load()
    assert "\n" not in str(info.value)

    with pytest.raises(MissingAssetError, match="does not exist"):
        animals.AnimalsSource(checkpoint=str(tmp_path / "missing.safetensors")).load()


def test_animals_wrong_architecture_one_line(tmp_path: Path) -> None:
    copy = tmp_path / "c.safetensors"
    shutil.copy(animals.CHECKPOINT, copy)
    with pytest.raises(MissingAssetError, match="does not fit") as info:
        animals.AnimalsSource(checkpoint=str(copy), width=32).load()
    assert "\n" not in str(info.value)


def test_animals_fresh_networks_are_seeded() -> None:
    a = animals.AnimalsSource().load(pretrained=False)
    b = animals.AnimalsSource().load(pretrained=False)
    c = animals.AnimalsSource(init_seed=1).load(pretrained=False)
    wa, wb, wc = (n.generator.blocks["up32"][0].weight for n in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


# ---------------------------------------------------------------- pretrain


def test_pretrain_tiny_run_reloads(tmp_path: Path) -> None:
    source = animals.AnimalsSource(width=8, d_width=8)
    source.name = "animals-dcgan32"
    dataset = DebugDataset(size=40)  # 16 px colour: exercises resize and grey conversion
    dataset.name = "debug"
    out = tmp_path / "tiny.safetensors"
    result = pretrain(
        source, dataset, iters=3, batch_size=4, seed=1, out_path=out, log=None, grid_size=4
    )
    assert result.checkpoint == out and out.is_file()
    assert result.grid.is_file() and result.sidecar.is_file()
    record = json.loads(result.sidecar.read_text())
    assert record["iters"] == 3 and record["seed"] == 1 and record["batch_size"] == 4
    assert record["dataset_sha256"] == dataset.content_hash()
    assert record["checkpoint_sha256"] == result.sha256
    assert record["trainer_config"]["beta1"] == 0.5
    assert record["training_shape"] == [1, 32, 32]
    g_state, d_state, metadata = load_pretrained(out, result.sha256)
    assert g_state and d_state and metadata["seed"] == "1"
    reloaded = animals.AnimalsSource(
        checkpoint=str(out), sha256=result.sha256, width=8, d_width=8
    ).load()
    assert reloaded.generator(reloaded.generator.sample_latent(2)).shape == (2, 1, 32, 32)


def test_pretrain_command_rejects_unknown_setting(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        pretrain_command,
        [
            "--source",
            "animals-dcgan32",
            "--dataset",
            "debug",
            "--iters",
            "1",
            "--out",
            str(tmp_path / "x.safetensors"),
            "--set",
            "nonsense=1",
        ],
    )
    assert result.exit_code == 2
    assert "nonsense=1" in result.output
