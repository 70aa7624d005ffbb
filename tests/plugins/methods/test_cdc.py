"""CDC: the distance-consistency KL is zero at the start (BatchNorm sources too) and pulls
only the adapted G; the authors' layer range; a patch head smaller than the image, with
its leaky ReLU, that trains; a regulariser strength in the sane band."""

from __future__ import annotations

import math

import pytest
import torch

from gtbench.api import TrainConfig, TrainContext, build_context, train
from gtbench.plugin import registry
from gtbench_plugins.methods.cdc import (
    HEAD_NAME,
    PatchHead,
    feature_blocks,
    generator_features,
    head_receptive_fields,
)

from ._helpers import CONTEXTS, RATIO_BAND, bn_context, drifted_ratio, snapshot


def _buffers(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: b.detach().clone() for name, b in module.named_buffers()}


@pytest.mark.parametrize("source", sorted(CONTEXTS))
def test_kl_is_zero_at_source_and_its_gradient_reaches_only_the_adapted_g(source: str) -> None:
    ctx = CONTEXTS[source]()
    method = registry.methods().create("cdc")
    method.setup(ctx)
    z = ctx.generator.sample_latent(4, generator=ctx.rng)
    buffers = _buffers(ctx.generator), _buffers(ctx.source_generator)
    assert float(method.distance_consistency(ctx, z).detach()) == 0.0  # adapted == source
    with torch.no_grad():
        for parameter in ctx.generator.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    kl = method.distance_consistency(ctx, z)
    assert float(kl.detach()) > 0
    kl.backward()
    grads = [p.grad for p in ctx.generator.parameters()]
    assert any(g is not None and float(g.abs().sum()) > 0 for g in grads)
    for parameter in ctx.source_generator.parameters():
        assert not parameter.requires_grad and parameter.grad is None
    # the comparison leaves every BatchNorm running statistic and mode alone
    for before, network in zip(buffers, (ctx.generator, ctx.source_generator), strict=True):
        after = _buffers(network)
        assert all(torch.equal(after[k], before[k]) for k in before)
    assert ctx.generator.training and not ctx.source_generator.training
    assert all(
        m.track_running_stats
        for m in ctx.generator.modules()
        if isinstance(m, torch.nn.BatchNorm2d)
    )


def _digiface_context(iters: int) -> TrainContext:
    """digiface-dcgan64 (a 3×64×64 BatchNorm DCGAN G; its D if it ships one) with synthetic
    shots."""
    source = registry.sources().create("digiface-dcgan64")
    networks = source.load(pretrained=True)
    discriminator = networks.discriminator or source.new_discriminator()
    real = torch.rand((6, 3, 64, 64), generator=torch.Generator().manual_seed(0)) * 2 - 1
    config = TrainConfig(iters=iters, batch_size=4)
    return build_context(networks.generator, discriminator, real, config, 0, torch.device("cpu"))


@pytest.mark.parametrize("source", ["animals-dcgan32", "digiface-dcgan64"])
def test_kl_is_exactly_zero_at_the_first_generator_step_on_batchnorm_sources(
    source: str,
) -> None:
    ctx = CONTEXTS[source](iters=1) if source in CONTEXTS else _digiface_context(iters=1)
    method = registry.methods().create("cdc:anchor_every=2")  # step 0: anchor latents
    train(ctx, method)  # the first G step has run: G had not moved when the KL was taken
    assert method.extra_metrics(ctx)["cdc_final_kl"] == 0.0


@pytest.mark.parametrize(
    ("source", "blocks"),
    [("debug", ["up8", "up16"]), ("animals-dcgan32", ["up8", "up16"])],
)
def test_layer_range_maps_the_authors_randint(source: str, blocks: list[str]) -> None:
    ctx = CONTEXTS[source]()
    z = ctx.generator.sample_latent(4, generator=ctx.rng)
    features = generator_features(ctx.generator, z)
    names = ctx.generator.block_names()
    assert [names[i] for i in feature_blocks(features, ctx.real)] == blocks


def test_layer_range_on_stylegan2_keeps_the_last_conv_block() -> None:
    source = registry.sources().create(
        "stylegan2:ckpt=random,size=32,channel_max=32,style_dim=64,n_mlp=2"
    )
    generator = source.load(pretrained=False).generator
    z = generator.sample_latent(2)
    image, features = generator.forward_features(z)
    names = generator.block_names()
    assert [names[i] for i in feature_blocks(features, image)] == ["8x8", "16x16", "32x32"]


@pytest.mark.parametrize(
    ("source", "block"), [("debug", "from_rgb"), ("animals-dcgan32", "down16")]
)
def test_patch_head_sees_a_patch_smaller_than_the_image(source: str, block: str) -> None:
    ctx = CONTEXTS[source]()
    method = registry.methods().create("cdc")
    method.setup(ctx)
    names = ctx.discriminator.block_names()
    index = ctx.state["cdc_patch_index"]
    assert names[index] == block
    fields = head_receptive_fields(ctx.discriminator, ctx.real)
    side = ctx.real.shape[-1]
    assert fields[index] < side / 2
    if source == "animals-dcgan32":
        assert fields[names.index("down4")] >= side - 1  # the 4x4 map would see it all
    head = getattr(ctx.discriminator, HEAD_NAME)
    assert isinstance(head, PatchHead)
    x = -torch.ones(1, head.conv.in_channels, 3, 3)
    with torch.no_grad():
        head.conv.weight.fill_(1.0)
        linear = head.conv(x) + head.bias
        assert torch.allclose(head(x), 0.2 * math.sqrt(2) * linear)  # leaky ReLU after


@pytest.mark.parametrize("source", sorted(CONTEXTS))
def test_anchor_and_patch_steps_and_the_patch_head_trains(source: str) -> None:
    class Recording(registry.methods().get("cdc")):  # type: ignore[misc]
        def setup(self, ctx) -> None:  # noqa: ANN001
            super().setup(ctx)
            self.head_start = snapshot(getattr(ctx.discriminator, HEAD_NAME))

    ctx = CONTEXTS[source](iters=5)  # steps 0 and 4 image-level, 1-3 patch-level
    method = Recording()
    method.fit(ctx)
    head = getattr(ctx.discriminator, HEAD_NAME)
    d_params = {id(p) for p in ctx.discriminator.parameters()}
    assert all(id(p) in d_params for p in head.parameters())  # in the trainer's D optimiser
    after = snapshot(head)
    assert any(not torch.equal(after[k], method.head_start[k]) for k in after)
    assert method.extra_metrics(ctx)["cdc_final_kl"] > 0

    out, features = ctx.discriminator.forward_features(ctx.real[:4])
    ctx.step = 4
    assert method.discriminator_logits(ctx, out, features).shape == (4,)
    ctx.step = 1
    assert method.discriminator_logits(ctx, out, features).shape[1] > 1  # one per patch

    ctx.step = 0  # anchor step: latents are the shots' anchors plus N(0, 0.1) noise
    z = method.sample_latent(ctx, 64).flatten(1)
    anchors = ctx.state["cdc_anchors"].flatten(1)
    assert len(anchors) == len(ctx.real)
    nearest = torch.cdist(z, anchors).min(dim=1).values
    assert float(nearest.max()) < 1.5  # ~0.1·√d expected; prior draws are ~√(2d) apart


def test_regulariser_acts_on_a_batchnorm_source() -> None:
    # 13 steps: the measured last 10 % holds one anchor (image-level) and one patch step.
    # The authors' --kl_wt 1000 gives about 7 here (26 over the default suite).
    low, high = RATIO_BAND
    assert low <= drifted_ratio("cdc", steps=13, compress=False) <= high


def _hand_kl(source: list[list[list[float]]], adapted: list[list[list[float]]], rows: list[int]):
    """The authors' loop, by hand: for row i at block rows[i], cos(f_i, f_j) for j ≠ i,
    softmax per row in each generator, then nn.KLDivLoss()(log p_adapted, p_source) =
    mean over the N(N−1) entries of p_s (log p_s − log p_a)."""

    def cos(a: list[float], b: list[float]) -> float:
        dot = sum(x * y for x, y in zip(a, b, strict=True))
        return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))

    def softmax_rows(features: list[list[list[float]]]) -> list[list[float]]:
        out = []
        for i, block in enumerate(rows):
            sims = [cos(features[block][i], features[block][j]) for j in range(len(rows))]
            sims = [s for j, s in enumerate(sims) if j != i]
            total = sum(math.exp(s) for s in sims)
            out.append([math.exp(s) / total for s in sims])
        return out

    p_s, p_a = softmax_rows(source), softmax_rows(adapted)
    entries = [
        ps * (math.log(ps) - math.log(pa))
        for row_s, row_a in zip(p_s, p_a, strict=True)
        for ps, pa in zip(row_s, row_a, strict=True)
    ]
    return sum(entries) / len(entries)


def test_kl_equals_the_hand_computed_softmax_kl_on_a_small_case() -> None:
    """Three samples, two blocks, rows reading different blocks: the distributions and the
    KL's direction (source is the target distribution, as the authors' KLDivLoss call)."""
    from gtbench_plugins.methods.cdc import distance_distributions, kl_consistency

    source = [
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0]],  # block 0: samples 0, 1, 2
        [[0.2, 1.0, 0.5], [1.0, 0.0, -1.0], [0.3, 0.3, 0.9]],  # block 1
    ]
    adapted = [
        [[1.0, 0.2, 0.0], [0.9, 1.0, 0.0], [-1.0, 1.0, 0.5]],
        [[0.2, -1.0, 0.5], [1.0, 0.4, 1.0], [0.0, 0.3, 0.1]],
    ]
    rows = [0, 1, 0]
    log_s = distance_distributions([torch.tensor(b, dtype=torch.float64) for b in source], rows)
    log_a = distance_distributions([torch.tensor(b, dtype=torch.float64) for b in adapted], rows)
    assert log_s.shape == (3, 2)
    assert float(kl_consistency(log_s, log_a)) == pytest.approx(
        _hand_kl(source, adapted, rows), rel=1e-12
    )
    # the reverse direction is a different number here: the test pins which one it is
    assert abs(_hand_kl(source, adapted, rows) - _hand_kl(adapted, source, rows)) > 1e-3
    # one case by pencil: row 0 of the source, cos = (0, 1/√2) → softmax (1, e^{1/√2}) / Σ
    e = math.exp(1 / math.sqrt(2))
    assert log_s[0].exp().tolist() == pytest.approx([1 / (1 + e), e / (1 + e)], rel=1e-12)


def test_generator_loss_is_the_weighted_hand_kl_of_both_generators_features() -> None:
    """End to end on the debug source: the G loss term equals kl_weight × the hand KL of
    the features the two generators give the same latents at the rows' blocks."""
    ctx = CONTEXTS["debug"]()
    method = registry.methods().create("cdc:kl_weight=7")
    method.setup(ctx)
    with torch.no_grad():
        for parameter in ctx.generator.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    state = ctx.rng.get_state()
    term = float(method.generator_loss(ctx, None).detach())  # type: ignore[arg-type]
    ctx.rng.set_state(state)  # replay the draws: the latents, then each row's block
    z = ctx.generator.sample_latent(4, generator=ctx.rng)
    with torch.no_grad():
        source = generator_features(ctx.source_generator, z)
        adapted = generator_features(ctx.generator, z)
    choices = feature_blocks(adapted, ctx.real)
    rows = [choices[k] for k in torch.randint(len(choices), (4,), generator=ctx.rng).tolist()]
    assert term > 0
    as_lists = [[f.flatten(1).double().tolist() for f in fs] for fs in (source, adapted)]
    assert term == pytest.approx(7 * _hand_kl(*as_lists, rows), rel=1e-4)


def test_patch_head_trains_in_a_group_of_its_own_at_the_authors_lr() -> None:
    ctx = CONTEXTS["debug"]()
    method = registry.methods().create("cdc")
    method.setup(ctx)
    head = {id(p) for p in getattr(ctx.discriminator, HEAD_NAME).parameters()}
    rest, own = method.param_groups(ctx, "d")
    assert {id(p) for p in own["params"]} == head and own["lr"] == pytest.approx(0.002 * 16 / 17)
    assert "lr" not in rest and not head & {id(p) for p in rest["params"]}
    assert len(rest["params"]) + len(own["params"]) == len(list(ctx.discriminator.parameters()))
    (group,) = registry.methods().create("cdc:head_lr=0").param_groups(ctx, "d")  # D's lr
    assert len(group["params"]) == len(list(ctx.discriminator.parameters()))


def _kind_ratios(spec: str) -> dict[str, float]:
    ctx = bn_context(iters=16, batch_size=8, check_every=1)  # every G update measured
    method = registry.methods().create(spec)
    train(ctx, method)
    metrics = method.extra_metrics(ctx)
    return {k: metrics[f"cdc_reg_grad_ratio_{k}"] for k in ("image", "patch")}


def test_ratio_split_by_step_kind_and_the_head_lr_strengthens_the_patch_signal() -> None:
    """On image-level (anchor) steps the pretrained D's gradient dwarfs the KL's; on patch
    steps the fresh head's is weak, and the authors' head lr makes it stronger: G gets an
    adversarial signal there, not only the regulariser's."""
    authors, slow = _kind_ratios("cdc"), _kind_ratios("cdc:head_lr=0")
    assert authors["image"] < 0.2 * authors["patch"]  # the kinds are told apart correctly
    assert authors["patch"] < 0.7 * slow["patch"]


def test_r1_on_a_patch_step_goes_through_the_patch_head() -> None:
    """As the authors' lazy R1 pass (``flag=which``, the patch logits' per-image mean):
    step 1 of ``anchor_every=2`` calls the head for D's reals, fakes, R1 and G's fakes."""
    calls = []

    class Counting(registry.methods().get("cdc")):  # type: ignore[misc]
        def setup(self, ctx) -> None:  # noqa: ANN001
            super().setup(ctx)
            head = getattr(ctx.discriminator, HEAD_NAME)
            head.register_forward_hook(lambda m, x, y: calls.append(ctx.step))

    ctx = CONTEXTS["debug"](iters=2, r1_every=1)
    train(ctx, Counting(anchor_every=2))
    assert calls == [1, 1, 1, 1]
    calls.clear()
    train(CONTEXTS["debug"](iters=2, r1_every=2), Counting(anchor_every=2))
    assert calls == [1, 1, 1]  # no R1 at step 1


def test_train_log_has_the_kl_and_the_ratio_by_step_kind(tmp_path) -> None:  # noqa: ANN001
    ctx = CONTEXTS["debug"](iters=8, check_every=2)  # rows start at steps 0, 2, 4, 6
    ctx.log_path = tmp_path / "train_log.csv"
    train(ctx, registry.methods().create("cdc:anchor_every=4"))
    import csv

    with open(ctx.log_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {"cdc_kl", "reg_grad_ratio", "cdc_ratio_image", "cdc_ratio_patch"} <= set(rows[0])
    # first updates of the rows: steps 0, 4 image-level; 2, 6 patch-level
    assert [bool(r["cdc_ratio_image"]) for r in rows] == [True, False, True, False]
    assert [bool(r["cdc_ratio_patch"]) for r in rows] == [False, True, False, True]
    assert all(float(r["reg_grad_ratio"]) >= 0 for r in rows)
