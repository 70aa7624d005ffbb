"""StyleGAN2: rosinality state-dict layout, checkpoint round trip, block views, errors."""

from __future__ import annotations

import argparse
import copy
import math
import pickle
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from gtbench.errors import GtbenchError
from gtbench.plugin import registry
from gtbench_plugins.sources.stylegan2.checkpoint import CheckpointError, PickleRefusedError
from gtbench_plugins.sources.stylegan2.networks import (
    ModulatedConv2d,
    StyleGAN2Discriminator,
    StyleGAN2Generator,
)
from gtbench_plugins.sources.stylegan2.plugin import ESTIMATED_CENTRE

SMALL = {"channel_max": 32}  # 32 px with 32 channels: fast on one CPU thread


# ----------------------------------------------------------------- published layout


def published_widths(cm: int) -> dict[int, int]:
    """rosinality model.py's channel table."""
    return {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * cm, 128: 128 * cm,
            256: 64 * cm, 512: 32 * cm, 1024: 16 * cm}  # fmt: skip


def expected_g(size: int, cm: int, style_dim: int = 512, n_mlp: int = 8) -> dict[str, tuple]:
    """Key → shape of rosinality's ``Generator(size, style_dim, n_mlp, cm).state_dict()``,
    written from the published architecture (not from gtbench's code)."""
    ch = published_widths(cm)
    keys: dict[str, tuple] = {}
    for i in range(1, n_mlp + 1):  # style.0 is PixelNorm
        keys[f"style.{i}.weight"] = (style_dim, style_dim)
        keys[f"style.{i}.bias"] = (style_dim,)
    keys["input.input"] = (1, ch[4], 4, 4)

    def styled(prefix: str, cin: int, cout: int, up: bool) -> None:
        keys[f"{prefix}.conv.weight"] = (1, cout, cin, 3, 3)
        if up:
            keys[f"{prefix}.conv.blur.kernel"] = (4, 4)
        keys[f"{prefix}.conv.modulation.weight"] = (cin, style_dim)
        keys[f"{prefix}.conv.modulation.bias"] = (cin,)
        keys[f"{prefix}.noise.weight"] = (1,)
        keys[f"{prefix}.activate.bias"] = (cout,)

    def to_rgb(prefix: str, cin: int, up: bool) -> None:
        keys[f"{prefix}.bias"] = (1, 3, 1, 1)
        if up:
            keys[f"{prefix}.upsample.kernel"] = (4, 4)
        keys[f"{prefix}.conv.weight"] = (1, 3, cin, 1, 1)
        keys[f"{prefix}.conv.modulation.weight"] = (cin, style_dim)
        keys[f"{prefix}.conv.modulation.bias"] = (cin,)

    styled("conv1", ch[4], ch[4], False)
    to_rgb("to_rgb1", ch[4], False)
    log_size = int(math.log2(size))
    cin = ch[4]
    for i in range(3, log_size + 1):  # the convs ModuleList, then the to_rgbs one
        cout = ch[2**i]
        styled(f"convs.{2 * (i - 3)}", cin, cout, True)
        styled(f"convs.{2 * (i - 3) + 1}", cout, cout, False)
        cin = cout
    for i in range(3, log_size + 1):
        to_rgb(f"to_rgbs.{i - 3}", ch[2**i], True)
    for layer in range((log_size - 2) * 2 + 1):
        side = 2 ** ((layer + 5) // 2)
        keys[f"noises.noise_{layer}"] = (1, 1, side, side)
    return keys


def expected_d(size: int, cm: int) -> dict[str, tuple]:
    ch = published_widths(cm)
    keys: dict[str, tuple] = {
        "convs.0.0.weight": (ch[size], 3, 1, 1),
        "convs.0.1.bias": (ch[size],),
    }
    cin = ch[size]
    for n, i in enumerate(range(int(math.log2(size)), 2, -1), start=1):
        cout = ch[2 ** (i - 1)]
        keys |= {
            f"convs.{n}.conv1.0.weight": (cin, cin, 3, 3),
            f"convs.{n}.conv1.1.bias": (cin,),
            f"convs.{n}.conv2.0.kernel": (4, 4),
            f"convs.{n}.conv2.1.weight": (cout, cin, 3, 3),
            f"convs.{n}.conv2.2.bias": (cout,),
            f"convs.{n}.skip.0.kernel": (4, 4),
            f"convs.{n}.skip.1.weight": (cout, cin, 1, 1),
        }
        cin = cout
    keys |= {
        "final_conv.0.weight": (ch[4], cin + 1, 3, 3),
        "final_conv.1.bias": (ch[4],),
        "final_linear.0.weight": (ch[4], ch[4] * 16),
        "final_linear.0.bias": (ch[4],),
        "final_linear.1.weight": (1, ch[4]),
        "final_linear.1.bias": (1,),
    }
    return keys


def shapes(module: torch.nn.Module) -> dict[str, tuple]:
    """Key → shape of the state dict, less gtbench's persistent ``latent_avg`` buffer
    (rosinality stores it beside ``g_ema``; it is checked on its own)."""
    state = module.state_dict()
    return {key: tuple(value.shape) for key, value in state.items() if key != "latent_avg"}


def test_256px_config_f_matches_published_layout() -> None:
    generator = StyleGAN2Generator(256, channel_multiplier=2)
    discriminator = StyleGAN2Discriminator(256, channel_multiplier=2)
    assert shapes(generator) == expected_g(256, 2)
    # same order too; latent_avg, the generator's own buffer, comes first
    assert list(generator.state_dict()) == ["latent_avg", *expected_g(256, 2)]
    assert generator.state_dict()["latent_avg"].shape == (512,)
    assert shapes(discriminator) == expected_d(256, 2)
    assert len(discriminator.state_dict()) == 50
    # parameter counts (buffers — blur kernels, noise maps — excluded)
    assert sum(p.numel() for p in generator.parameters()) == 30_034_338
    assert sum(p.numel() for p in discriminator.parameters()) == 28_864_129
    assert generator.n_latent == 14 and generator.num_layers == 13


@pytest.mark.parametrize(("size", "cm"), [(32, 2), (64, 1), (128, 2)])
def test_other_configurations_match_published_layout(size: int, cm: int) -> None:
    assert shapes(StyleGAN2Generator(size, channel_multiplier=cm, n_mlp=2)) == expected_g(
        size, cm, n_mlp=2
    )
    assert shapes(StyleGAN2Discriminator(size, channel_multiplier=cm)) == expected_d(size, cm)


# ----------------------------------------------------------------- numerics


def fused_modconv(conv: ModulatedConv2d, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """The per-sample-weight grouped convolution of the paper (reference for the
    input-scaling form the networks use)."""
    batch, cin, height, width = x.shape
    style = conv.modulation(w).view(batch, 1, cin, 1, 1)
    weight = conv.scale * conv.weight * style  # B × out × in × k × k
    if conv.demodulate:
        weight = weight * torch.rsqrt(weight.square().sum([2, 3, 4]) + 1e-8).view(
            batch, -1, 1, 1, 1
        )
    k = conv.kernel_size
    if conv.upsample:
        weight = weight.transpose(1, 2).reshape(batch * cin, conv.out_channel, k, k)
        out = F.conv_transpose2d(x.reshape(1, batch * cin, height, width), weight, stride=2,
                                 groups=batch)  # fmt: skip
        return conv.blur(out.view(batch, conv.out_channel, *out.shape[2:]))
    weight = weight.reshape(batch * conv.out_channel, cin, k, k)
    out = F.conv2d(x.reshape(1, batch * cin, height, width), weight, padding=conv.padding,
                   groups=batch)  # fmt: skip
    return out.view(batch, conv.out_channel, height, width)


@pytest.mark.parametrize(("upsample", "demodulate", "k"), [(False, True, 3), (True, True, 3),
                                                           (False, False, 1)])  # fmt: skip
def test_modulated_conv_equals_grouped_form(upsample: bool, demodulate: bool, k: int) -> None:
    torch.manual_seed(0)
    conv = ModulatedConv2d(8, 6, k, 16, demodulate=demodulate, upsample=upsample).double()
    with torch.no_grad():
        conv.modulation.bias.normal_()  # make styles differ per channel
    x, w = torch.randn(3, 8, 5, 5).double(), torch.randn(3, 16).double()
    torch.testing.assert_close(conv(x, w), fused_modconv(conv, x, w))


def small_networks(seed: int = 0) -> tuple[StyleGAN2Generator, StyleGAN2Discriminator]:
    torch.manual_seed(seed)
    return StyleGAN2Generator(32, **SMALL), StyleGAN2Discriminator(32, **SMALL)


def test_forward_features_and_block_views() -> None:
    generator, discriminator = small_networks()
    assert generator.block_names() == ["mapping", "4x4", "8x8", "16x16", "32x32"]
    assert discriminator.block_names() == ["from_rgb", "32x32", "16x16", "8x8", "4x4"]
    z = generator.sample_latent(4, generator=torch.Generator().manual_seed(0))
    image, features = generator.forward_features(z)
    assert image.shape == (4, 3, 32, 32) and image.dtype == torch.float32
    assert [tuple(f.shape[1:]) for f in features] == [(512,), (32, 4, 4), (32, 8, 8),
                                                      (32, 16, 16), (32, 32, 32)]  # fmt: skip
    logits, d_features = discriminator.forward_features(image)
    assert logits.shape == (4, 1) and len(d_features) == 5
    assert d_features[1].shape[-1] == 16
    for network in (generator, discriminator):
        # blocks are views: no duplicate keys, and they cover every parameter exactly
        assert not any(key.startswith("blocks.") for key in network.state_dict())
        in_blocks = {id(p) for block in network.blocks.values() for p in block.parameters()}
        assert in_blocks == {id(p) for p in network.parameters()}
        copied = copy.deepcopy(network)
        first = next(iter(copied.blocks.values()))
        assert {id(p) for p in first.parameters()} <= {id(p) for p in copied.parameters()}
    generator.blocks["4x4"].requires_grad_(False)
    assert not generator.conv1.conv.weight.requires_grad and not generator.input.input.requires_grad
    assert generator.convs[0].conv.weight.requires_grad


def test_stddev_group_and_odd_batches() -> None:
    _, discriminator = small_networks()
    for batch in (1, 3, 6, 8):
        assert discriminator(torch.randn(batch, 3, 32, 32)).shape == (batch, 1)


def test_training_step_with_r1_backpropagates() -> None:
    generator, discriminator = small_networks()
    real = torch.randn(2, 3, 32, 32, requires_grad=True)
    (grad,) = torch.autograd.grad(discriminator(real).sum(), real, create_graph=True)
    (
        F.softplus(-discriminator(generator(torch.randn(2, 512)))).mean() + grad.square().sum()
    ).backward()
    assert generator.style[1].weight.grad is not None
    assert discriminator.convs[1].conv2[1].weight.grad is not None


# ----------------------------------------------------------------- checkpoints


def rosinality_state(generator: StyleGAN2Generator) -> dict[str, torch.Tensor]:
    """The generator's state as rosinality saves it: without ``latent_avg``."""
    return {k: v for k, v in generator.state_dict().items() if k != "latent_avg"}


def save_rosinality(path: Path, generator: StyleGAN2Generator, discriminator, **extra) -> Path:
    payload = {"g": rosinality_state(generator), "d": discriminator.state_dict(),
               "g_ema": rosinality_state(generator), **extra}  # fmt: skip
    torch.save(payload, path)
    return path


def test_rosinality_checkpoint_round_trip(tmp_path: Path) -> None:
    generator, discriminator = small_networks(seed=3)
    latent_avg = torch.randn(1, 512)
    namespace = argparse.Namespace(size=32, channel_multiplier=2, lr=0.002)
    path = save_rosinality(tmp_path / "small.pt", generator, discriminator,
                           latent_avg=latent_avg, args=namespace,
                           g_optim={"state": {}, "param_groups": []})  # fmt: skip
    source = registry.sources().create(f"stylegan2:ckpt={path}")
    info = source.info
    assert (info.resolution, info.latent_shape, info.has_discriminator) == (32, (512,), True)
    assert info.architecture == "stylegan2"
    networks = source.load()
    loaded, loaded_d = networks.generator, networks.discriminator
    assert isinstance(loaded, StyleGAN2Generator) and loaded_d is not None
    assert torch.equal(loaded.latent_avg, latent_avg.reshape(-1))
    assert networks.notes == {"latent_avg": "checkpoint"}
    z = torch.randn(3, 512, generator=torch.Generator().manual_seed(1))
    for network in (generator, loaded):
        network.randomize_noise = False  # the stored noise maps: deterministic output
    with torch.no_grad():
        image, image_loaded = generator(z), loaded(z)
        assert torch.equal(image, image_loaded)
        assert torch.equal(discriminator(image), loaded_d(image))
        # truncation 0 collapses every sample onto latent_avg
        loaded.truncation = 0.0
        trunc = loaded(z)
        assert torch.allclose(trunc[0], trunc[1], atol=1e-5)
        from_avg = generator.forward_features(latent_avg, input_is_latent=True)[0]
        torch.testing.assert_close(trunc[:1], from_avg)
    fresh = source.load(pretrained=False).generator
    assert not torch.equal(fresh.input.input, loaded.input.input)
    assert isinstance(source.new_discriminator(), StyleGAN2Discriminator)


def test_config_inference(tmp_path: Path) -> None:
    from gtbench_plugins.sources.stylegan2.checkpoint import infer_config

    state = StyleGAN2Generator(128, style_dim=64, n_mlp=2, channel_multiplier=1,
                               channel_max=256).state_dict()  # fmt: skip
    assert infer_config(state) == {"size": 128, "style_dim": 64, "n_mlp": 2,
                                   "channel_max": 256, "channel_multiplier": 1}  # fmt: skip
    generator, _ = small_networks()
    torch.save({"g_ema": rosinality_state(generator)}, tmp_path / "g_only.pt")
    source = registry.sources().create(f"stylegan2:ckpt={tmp_path / 'g_only.pt'}")
    assert not source.info.has_discriminator
    with pytest.warns(UserWarning, match="no latent_avg"):
        assert source.load().discriminator is None
    wrong = registry.sources().create(f"stylegan2:ckpt={tmp_path / 'g_only.pt'},size=64")
    with pytest.raises(CheckpointError, match="size=32"):
        wrong.info  # noqa: B018


def test_checkpoint_without_latent_avg_warns_and_records_the_estimated_centre(
    tmp_path: Path,
) -> None:
    """A rosinality training snapshot has no latent_avg: the loader warns, estimates the
    centre as the mean of mapping(z) over 4096 seeded z, and says so in its notes."""
    generator, discriminator = small_networks(seed=5)
    path = save_rosinality(tmp_path / "snapshot.pt", generator, discriminator)
    source = registry.sources().create(f"stylegan2:ckpt={path}")
    with pytest.warns(UserWarning, match="has no latent_avg"):
        networks = source.load()
    z = torch.randn(4096, 512, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = generator.style(z).mean(0)  # computed here, not by mean_latent
    torch.testing.assert_close(networks.generator.latent_avg, expected)
    assert expected.abs().max() > 1e-3  # not the all-zero centre of the old loader
    assert networks.notes["latent_avg"] == ESTIMATED_CENTRE and "4096" in ESTIMATED_CENTRE
    # an exported g_ema that carries its own centre is used as is, without a warning
    carried = generator.state_dict() | {"latent_avg": torch.full((512,), 0.25)}
    torch.save({"g_ema": carried}, tmp_path / "carried.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = registry.sources().create(f"stylegan2:ckpt={tmp_path / 'carried.pt'}").load()
    assert torch.equal(loaded.generator.latent_avg, torch.full((512,), 0.25))


def test_random_mode_needs_no_file() -> None:
    spec = "stylegan2:ckpt=random,size=32,channel_max=32"
    source = registry.sources().create(spec + ",truncation=0.7")
    assert source.info.resolution == 32 and source.info.has_discriminator
    networks = source.load()
    assert networks.generator.truncation == 0.7 and networks.generator.latent_avg.any()
    assert networks.notes["latent_avg"] == f"random init: {ESTIMATED_CENTRE}"
    again = registry.sources().create(spec).load()
    assert torch.equal(again.generator.input.input, networks.generator.input.input)


def one_line_error(source_spec: str, kind: type[Exception] = CheckpointError) -> str:
    source = registry.sources().create(source_spec)
    with pytest.raises(kind) as caught:
        source.load()
    message = str(caught.value)
    assert isinstance(caught.value, GtbenchError)
    assert "\n" not in message and message
    return message


def test_corrupt_truncated_and_wrong_format(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(bytes(range(256)) * 10)
    assert "not a PyTorch checkpoint" in one_line_error(f"stylegan2:ckpt={garbage}")

    generator, discriminator = small_networks()
    good = save_rosinality(tmp_path / "good.pt", generator, discriminator)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert "truncated" in one_line_error(f"stylegan2:ckpt={truncated}")

    state = generator.state_dict()
    del state["conv1.noise.weight"]
    state["style.1.weight"] = torch.zeros(512, 7)
    state["extra.weight"] = torch.zeros(1)
    torch.save({"g_ema": state}, tmp_path / "mismatch.pt")
    message = one_line_error(f"stylegan2:ckpt={tmp_path / 'mismatch.pt'}")
    assert "1 missing: conv1.noise.weight" in message
    assert "1 unexpected: extra.weight" in message
    assert "style.1.weight (512, 7) vs (512, 512)" in message

    torch.save({"generator": state}, tmp_path / "other.pt")
    assert "no 'g_ema'" in one_line_error(f"stylegan2:ckpt={tmp_path / 'other.pt'}")
    torch.save([1, 2], tmp_path / "list.pt")
    assert "not a rosinality-format" in one_line_error(f"stylegan2:ckpt={tmp_path / 'list.pt'}")
    one_line_error(f"stylegan2:ckpt={tmp_path / 'absent.pt'}", GtbenchError)
    one_line_error("stylegan2", GtbenchError)


class _Payload:
    """Unpickling this creates ``marker``: proof that a pickle's code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("writer", ["pickle", "torch", "pkl"])
def test_pickle_with_code_is_refused_and_never_runs(tmp_path: Path, writer: str) -> None:
    marker = tmp_path / "code-ran"
    payload = {"g_ema": _Payload(marker)}
    path = tmp_path / ("model.pkl" if writer == "pkl" else "model.pt")
    if writer == "torch":
        torch.save(payload, path)
    else:
        with open(path, "wb") as handle:
            pickle.dump(payload, handle, protocol=2)
    assert not marker.exists()
    message = one_line_error(f"stylegan2:ckpt={path}", PickleRefusedError)
    assert "allow_pickle=true" in message and "arbitrary code" in message
    assert not marker.exists()


def test_speed_options_keep_outputs() -> None:
    """channels_last matches fp32 closely; bf16 autocast runs (R1 included), float32 out."""
    spec = "stylegan2:ckpt=random,size=32,channel_max=32"
    base = registry.sources().create(spec).load()
    fast = registry.sources().create(spec + ",channels_last=true").load()
    bf16 = registry.sources().create(spec + ",precision=bf16").load()
    z = torch.randn(2, 512, generator=torch.Generator().manual_seed(0))
    for networks in (base, fast, bf16):
        networks.generator.randomize_noise = False
    with torch.no_grad():
        image = base.generator(z)
        torch.testing.assert_close(fast.generator(z), image, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(fast.discriminator(image), base.discriminator(image),
                                   atol=1e-4, rtol=1e-4)  # fmt: skip
        low = bf16.generator(z)
    assert low.dtype == torch.float32 and (low - image).abs().mean() < 0.1
    real = image.clone().requires_grad_(True)
    logits = bf16.discriminator(real)
    assert logits.dtype == torch.float32
    (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    grad.square().sum().backward()
    assert bf16.discriminator.final_linear[1].weight.grad is not None
