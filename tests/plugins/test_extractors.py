"""The built-in extractors: the debug network, Inception from a local file (with a stand-in
weights file of the right shapes and random values) and timm backbones from a local file
(with a tiny random-initialised timm model)."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest
import torch
from torch_fidelity.utils import create_feature_extractor

from gtbench.errors import MissingAssetError, PluginError
from gtbench.measure.evaluation import (
    EvalSettings,
    evaluate,
    extract_features,
    load_feature_extractor,
)
from gtbench.plugin import registry
from gtbench_plugins.datasets.debug import DebugDataset
from gtbench_plugins.sources.debug import DebugSource

CPU = torch.device("cpu")


def create(spec: str):
    return registry.extractors().create(spec)


def images(n: int = 6, size: int = 16, channels: int = 3, seed: int = 0) -> torch.Tensor:
    rng = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, channels, size, size), generator=rng, dtype=torch.uint8)


# --------------------------------------------------------------------------- debug


def test_debug_extractor_is_deterministic_and_batch_size_independent():
    extractor = create("debug")
    name, layer = extractor.fidelity_name(), extractor.feature_layer()
    first = create_feature_extractor(name, [layer], cuda=False, verbose=False)
    second = create_feature_extractor(name, [layer], cuda=False, verbose=False)
    x = images(20)
    (a,) = first(x)
    (b,) = second(x)
    assert a.shape == (20, 128) and torch.equal(a, b)
    module = load_feature_extractor(extractor, CPU)
    by_three = extract_features(module, x, device=CPU, batch_size=3)
    assert torch.allclose(by_three, a, rtol=0, atol=1e-6)


@pytest.mark.parametrize(("layer", "dim"), [("conv1", 32), ("conv2", 64), ("conv3", 128)])
def test_debug_extractor_layers(layer, dim):
    module = load_feature_extractor(create(f"debug:layer={layer}"), CPU)
    assert extract_features(module, images(4, size=24), device=CPU).shape == (4, dim)


def test_debug_extractor_rejects_an_unknown_layer():
    with pytest.raises(PluginError, match="unknown layer 'conv9'"):
        create("debug:layer=conv9").feature_layer()


def test_only_the_debug_extractor_is_not_a_metric():
    """Random features rank nothing: `debug` says so; every other built-in is a metric."""
    reg = registry.extractors()
    flags = {name: reg.get(name).is_metric for name in reg.names()}
    assert flags.pop("debug") is False
    assert flags and all(flags.values()), flags


def test_run_output_labels_debug_numbers_not_a_metric(tmp_path):
    from tests.helpers import FAST, gtbench

    result = gtbench("run", *FAST, "--methods", "source-only", results=tmp_path)
    assert result.exit_code == 0, result.output
    assert "(debug extractor: not a metric)" in result.output


# --------------------------------------------------------------------------- inception


@pytest.fixture(scope="module")
def inception_standin(tmp_path_factory) -> Path:
    """A state dict with the shapes torch-fidelity's Inception wants and random values.

    Built by constructing the network with its download and load switched off."""
    import torch_fidelity.feature_extractor_inceptionv3 as inception

    cls = inception.FeatureExtractorInceptionV3
    with (
        mock.patch.object(inception, "load_state_dict_from_url", return_value={}),
        mock.patch.object(cls, "load_state_dict", return_value=None),
    ):
        torch.manual_seed(0)
        network = cls("inception-v3-compat", ["2048"])
    path = tmp_path_factory.mktemp("inception") / "standin.pth"
    torch.save(network.state_dict(), path)
    return path


@pytest.fixture
def no_inception_weights(monkeypatch, tmp_path):
    monkeypatch.delenv("GTBENCH_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))


def test_inception_without_weights_says_how_to_provide_them(no_inception_weights, tmp_path):
    extractor = create("inception-v3-compat")
    with pytest.raises(MissingAssetError) as caught:
        extractor.check_available()
    message = str(caught.value)
    assert "\n" not in message
    assert "https://github.com/toshas/torch-fidelity/releases/download/" in message
    assert str(tmp_path / "torch-home" / "hub" / "checkpoints") in message
    assert "inception-v3-compat:weights=PATH" in message
    assert "GTBENCH_INCEPTION_WEIGHTS" in message


def test_inception_with_a_missing_file_names_it(no_inception_weights, tmp_path):
    missing = tmp_path / "nowhere.pth"
    with pytest.raises(MissingAssetError, match=f"{missing} does not exist"):
        create(f"inception-v3-compat:weights={missing}").check_available()


def test_inception_loads_a_local_weights_file(no_inception_weights, inception_standin):
    extractor = create(f"inception-v3-compat:weights={inception_standin}")
    extractor.check_available()
    assert extractor.fidelity_kwargs() == {"feature_extractor_weights_path": str(inception_standin)}
    module = load_feature_extractor(extractor, CPU)
    expected = torch.load(inception_standin, weights_only=True)
    assert torch.equal(module.state_dict()["fc.weight"], expected["fc.weight"])
    features = extract_features(module, images(3, channels=1), device=CPU)
    assert features.shape == (3, 2048) and torch.isfinite(features).all()


def test_inception_finds_weights_by_env_var_or_hub_cache(
    no_inception_weights, inception_standin, monkeypatch, tmp_path
):
    from gtbench_plugins.extractors.inception import FILENAME, hub_checkpoint

    monkeypatch.setenv("GTBENCH_INCEPTION_WEIGHTS", str(inception_standin))
    assert create("inception-v3-compat").weights_path() == inception_standin
    monkeypatch.delenv("GTBENCH_INCEPTION_WEIGHTS")
    cached = hub_checkpoint()
    assert cached.name == FILENAME and str(tmp_path) in str(cached)
    cached.parent.mkdir(parents=True)
    cached.symlink_to(inception_standin)
    extractor = create("inception-v3-compat")
    extractor.check_available()
    assert extractor.weights_path() == cached


def test_inception_download_address_is_torch_fidelitys():
    """The plugin writes the URL out (listing plugins must not import torch-fidelity)."""
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    from gtbench_plugins.extractors import inception

    assert inception.URL_INCEPTION_V3 == URL_INCEPTION_V3


def test_inception_identity_follows_the_weights_content(no_inception_weights, tmp_path):
    a, b = tmp_path / "a.pth", tmp_path / "b.pth"
    a.write_bytes(b"weights one")
    b.write_bytes(b"weights one")
    same = create(f"inception-v3-compat:weights={a}").identity()
    assert same == create(f"inception-v3-compat:weights={b}").identity()
    b.write_bytes(b"weights two")
    assert same != create(f"inception-v3-compat:weights={b}").identity()


# --------------------------------------------------------------------------- timm


@pytest.fixture(scope="module")
def timm_weights(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    """A random-initialised ``test_vit`` (0.4 M parameters) saved as safetensors."""
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(0)
    state = timm.create_model("test_vit", pretrained=False).state_dict()
    path = tmp_path_factory.mktemp("timm") / "test_vit.safetensors"
    save_file(state, str(path))
    return path, state


def test_timm_loads_local_weights_and_extracts_pooled_features(timm_weights):
    path, state = timm_weights
    extractor = create(f"timm:model=test_vit,weights={path}")
    extractor.check_available()
    module = load_feature_extractor(extractor, CPU)
    loaded = module.network.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items() if not k.startswith("head"))
    assert module.input_size == (160, 160)  # the model's data config
    features = extract_features(module, images(3, size=20), device=CPU)
    assert features.shape == (3, 64) and torch.isfinite(features).all()


def test_timm_size_resamples_position_embeddings(timm_weights):
    path, _ = timm_weights
    module = load_feature_extractor(create(f"timm:model=test_vit,weights={path},size=32"), CPU)
    assert module.input_size == (32, 32)
    assert extract_features(module, images(2), device=CPU).shape == (2, 64)


def test_timm_errors_are_one_clear_line(timm_weights, tmp_path):
    path, _ = timm_weights
    with pytest.raises(MissingAssetError, match="needs local weights for test_vit") as caught:
        create("timm:model=test_vit").check_available()
    assert "huggingface.co/timm/test_vit" in str(caught.value)
    assert "timm:model=test_vit,weights=PATH" in str(caught.value)
    with pytest.raises(PluginError, match="did you mean 'test_vit'"):
        create(f"timm:model=test_vitt,weights={path}").check_available()
    with pytest.raises(MissingAssetError, match="does the file belong to this model") as caught:
        load_feature_extractor(create(f"timm:model=test_resnet,weights={path}"), CPU)
    assert "\n" not in str(caught.value)


def test_timm_extractor_runs_a_whole_evaluation(timm_weights, tmp_path):
    path, _ = timm_weights
    dataset = DebugDataset()
    dataset.name = "debug"
    result = evaluate(
        DebugSource().load().generator,
        dataset,
        dataset.images()[list(dataset.split(5, 0).train)],
        create(f"timm:model=test_vit,weights={path},size=32"),
        EvalSettings(n_samples=20, kid_subsets=3),
        seed=0,
        device=CPU,
        cache_dir=tmp_path,
    )
    assert result.settings["extractor"] == "timm"
    assert result.settings["extractor_identity"].startswith("timm:test_vit:size=32:sha256=")
    assert result.settings["kid_subset_size"] == 20
    flags = {"fid_valid"}
    assert all(isinstance(v, float) for k, v in result.metrics.items() if k not in flags)
    assert isinstance(result.metrics["fid_valid"], bool)
