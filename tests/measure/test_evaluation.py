"""The evaluation module: FID/KID against an independent numpy/scipy computation, the
reference-feature cache, KID subset clamping, batch-size independence, memorisation."""

from __future__ import annotations

import math
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import scipy.linalg
import torch

from gtbench.api import Dataset, DatasetInfo, Extractor, Generator
from gtbench.errors import MissingAssetError, UsageError
from gtbench.measure.evaluation import (
    EvalSettings,
    evaluate,
    extract_features,
    generate_images,
    intra_cluster_diversity,
    kid_from_features,
    load_feature_extractor,
    memorisation_metrics,
    reference_cache_path,
    reference_features,
)
from gtbench_plugins.datasets.debug import DebugDataset
from gtbench_plugins.extractors.debug import DebugExtractor
from gtbench_plugins.sources.debug import DebugSource

CPU = torch.device("cpu")


class ArrayDataset(Dataset):
    """A dataset over a given tensor, so a test can change the content under the same name."""

    name = "array"

    def __init__(self, images: torch.Tensor, pool: int = 40) -> None:
        super().__init__()
        self._images = images
        self._pool = pool

    @property
    def info(self) -> DatasetInfo:
        n, c, h, _ = self._images.shape
        return DatasetInfo(h, c, n, self._pool)

    def images(self) -> torch.Tensor:
        return self._images


class ReplayGenerator(Generator):
    """Outputs images from a fixed set (a perfect memoriser of that set)."""

    def __init__(self, images: torch.Tensor) -> None:
        super().__init__()
        self.latent_shape = (1,)
        self.register_buffer("stored", images.float() / 127.5 - 1.0)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        index = (z[:, 0].abs() * 1e4).long() % len(self.stored)
        return self.stored[index]


def make_dataset(**params: object) -> DebugDataset:
    dataset = DebugDataset(**params)
    dataset.name = "debug"
    return dataset


def make_extractor() -> DebugExtractor:
    extractor = DebugExtractor()
    extractor.name = "debug"
    return extractor


def train_shots(dataset: Dataset, shots: int = 10, seed: int = 0) -> torch.Tensor:
    return dataset.images()[list(dataset.split(shots, seed).train)]


@pytest.fixture(scope="module")
def generator() -> Generator:
    return DebugSource().load().generator


def run(generator, dataset, cache_dir: Path, **settings) -> object:
    return evaluate(
        generator,
        dataset,
        train_shots(dataset),
        make_extractor(),
        EvalSettings(**{"n_samples": 100, "kid_subsets": 5, **settings}),
        seed=3,
        device=CPU,
        cache_dir=cache_dir,
    )


# --------------------------------------------------------------------------- references


def reference_fid(a: np.ndarray, b: np.ndarray) -> float:
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(cov_a @ cov_b).real
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(covmean))


def reference_kid(
    a: np.ndarray, b: np.ndarray, subsets: int, size: int, seed: int
) -> tuple[float, float]:
    """Unbiased MMD² with the cubic polynomial kernel (x·y/d + 1)³, subsets drawn as
    torch-fidelity documents (one RandomState, first set then second set per subset)."""
    rng = np.random.RandomState(seed)
    d = a.shape[1]
    values = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), size, replace=False)]
        y = b[rng.choice(len(b), size, replace=False)]
        k_xx, k_yy, k_xy = ((p @ q.T / d + 1) ** 3 for p, q in ((x, x), (y, y), (x, y)))
        off = size * (size - 1)
        mmd = (k_xx.sum() - np.trace(k_xx)) / off + (k_yy.sum() - np.trace(k_yy)) / off
        values.append(mmd - 2 * k_xy.mean())
    return float(np.mean(values)), float(np.std(values))


def features_of(images: torch.Tensor) -> np.ndarray:
    module = load_feature_extractor(make_extractor(), CPU)
    return extract_features(module, images, device=CPU).double().numpy()


# --------------------------------------------------------------------------- tests


def test_fid_and_kid_equal_independent_numpy_scipy_computation(generator, tmp_path):
    dataset = make_dataset()
    result = run(generator, dataset, tmp_path, n_samples=200, kid_subsets=20, kid_subset_size=50)
    fake = features_of(generate_images(generator, 200, seed=3, device=CPU))
    real = features_of(dataset.evaluation_images())
    assert fake.shape == (200, 128) and real.shape == (160, 128)

    fid = reference_fid(fake, real)
    kid_mean, kid_std = reference_kid(fake, real, subsets=20, size=50, seed=3)
    assert result.metrics["fid"] == pytest.approx(fid, rel=1e-6)
    assert result.metrics["kid_mean"] == pytest.approx(kid_mean, rel=1e-6)
    assert result.metrics["kid_std"] == pytest.approx(kid_std, rel=1e-6)
    train = features_of(train_shots(dataset))
    assert result.metrics["fid_train"] == pytest.approx(reference_fid(fake, train), rel=1e-6)


@pytest.mark.parametrize(("n_1", "n_2", "size"), [(300, 211, 211), (120, 400, 50), (9, 9, 9)])
def test_kid_equals_torch_fidelitys_per_subset_loop(n_1, n_2, size, monkeypatch):
    """The whole-kernel computation against torch-fidelity's own loop, and the fallback
    for large sets (forced here) against both."""
    from torch_fidelity.metric_kid import kid_features_to_metric

    from gtbench.measure import evaluation

    g = torch.Generator().manual_seed(n_1)
    a = torch.randn(n_1, 32, generator=g, dtype=torch.float64) * 2 + 0.3
    b = torch.randn(n_2, 32, generator=g, dtype=torch.float64)
    out = kid_features_to_metric(
        a, b, kid_subsets=30, kid_subset_size=size, rng_seed=7, verbose=False
    )
    expected = (out["kernel_inception_distance_mean"], out["kernel_inception_distance_std"])
    fast = evaluation.kid_from_features(a, b, subsets=30, subset_size=size, seed=7)
    assert fast == pytest.approx(expected, rel=1e-10, abs=1e-12)
    assert fast == pytest.approx(reference_kid(a.numpy(), b.numpy(), 30, size, 7), rel=1e-10)
    monkeypatch.setattr(evaluation, "KID_WHOLE_KERNEL_MAX", 4)
    assert evaluation.kid_from_features(a, b, subsets=30, subset_size=size, seed=7) == expected


def test_kid_refuses_a_subset_larger_than_a_set():
    with pytest.raises(UsageError, match="subset size 11"):
        kid_from_features(torch.zeros(10, 3), torch.zeros(20, 3), subsets=2, subset_size=11, seed=0)


def test_settings_record_extractor_sizes_and_distance(generator, tmp_path):
    settings = run(generator, make_dataset(), tmp_path).settings
    assert settings["extractor"] == "debug"
    assert settings["feature_layer"] == "conv3"
    assert settings["n_samples"] == 100 and settings["n_reference"] == 160
    assert settings["n_train"] == 10
    assert settings["distance"] == "cosine"
    assert settings["reference_cache"] == "miss"


@pytest.mark.parametrize(("n_samples", "requested", "used"), [(50, 1000, 50), (300, 1000, 160)])
def test_kid_subset_size_is_clamped_and_recorded(generator, tmp_path, n_samples, requested, used):
    result = run(
        generator, make_dataset(), tmp_path, n_samples=n_samples, kid_subset_size=requested
    )
    assert result.settings["kid_subset_size"] == used
    assert result.settings["kid_subset_size_requested"] == requested
    assert math.isfinite(result.metrics["kid_mean"])


def test_reference_cache_hits_then_misses_when_the_content_changes(generator, tmp_path):
    images = make_dataset().images().clone()
    first = run(generator, ArrayDataset(images), tmp_path)
    second = run(generator, ArrayDataset(images.clone()), tmp_path)
    assert (first.settings["reference_cache"], second.settings["reference_cache"]) == (
        "miss",
        "hit",
    )
    assert second.metrics == first.metrics

    pool = set(ArrayDataset(images).shot_pool())
    index = next(i for i in range(len(images)) if i not in pool)
    changed = images.clone()
    changed[index] = 255 - changed[index]  # one evaluation image differs; same name and size
    third = run(generator, ArrayDataset(changed), tmp_path)
    assert third.settings["reference_cache"] == "miss"
    assert third.settings["reference_key"] != first.settings["reference_key"]
    assert third.metrics["fid"] != first.metrics["fid"]
    assert len(list(tmp_path.glob("reference/*.pt"))) == 2
    for result in (first, third):  # entries are named by their key; records hold the key
        assert reference_cache_path(tmp_path, result.settings["reference_cache_key"]).is_file()
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary file


def cached_reference(dataset: Dataset, cache_dir: Path) -> tuple[torch.Tensor, dict]:
    module = load_feature_extractor(make_extractor(), CPU)
    return reference_features(dataset, make_extractor(), module, cache_dir=cache_dir, device=CPU)


@pytest.mark.parametrize("garbage", [b"", b"not a torch file", b"PK\x03\x04truncated"])
def test_corrupt_cache_file_is_recomputed_not_fatal(tmp_path, garbage):
    features, info = cached_reference(make_dataset(), tmp_path)
    reference_cache_path(tmp_path, info["reference_cache_key"]).write_bytes(garbage)
    again, info = cached_reference(make_dataset(), tmp_path)
    assert info["reference_cache"] == "miss"
    assert torch.equal(again, features)
    assert cached_reference(make_dataset(), tmp_path)[1]["reference_cache"] == "hit"


def test_cache_entry_with_wrong_content_is_not_read(tmp_path):
    _, info = cached_reference(make_dataset(), tmp_path)
    path = reference_cache_path(tmp_path, info["reference_cache_key"])
    payload = torch.load(path, weights_only=True)
    payload["features"] = payload["features"][:5]  # a truncated entry under the right name
    torch.save(payload, path)
    assert cached_reference(make_dataset(), tmp_path)[1]["reference_cache"] == "miss"


def test_cache_key_follows_content_and_extractor_not_names(tmp_path):
    _, info = cached_reference(make_dataset(), tmp_path)
    renamed = make_dataset()
    renamed.name = "another-name"
    assert cached_reference(renamed, tmp_path)[1]["reference_cache"] == "hit"
    other_layer = DebugExtractor(layer="conv2")
    other_layer.name = "debug"
    module = load_feature_extractor(other_layer, CPU)
    _, info2 = reference_features(
        make_dataset(), other_layer, module, cache_dir=tmp_path, device=CPU
    )
    assert info2["reference_cache"] == "miss"
    assert info2["reference_key"] != info["reference_key"]


class BumpedDebugExtractor(DebugExtractor):
    """The debug extractor at another plugin version, same weights and name."""

    version = "99"


def test_cache_key_covers_the_whole_feature_identity_and_the_reference_key_does_not_move(
    tmp_path, monkeypatch
):
    """Another extractor version, torch-fidelity version, dtype or resize mode is another
    cache entry (issue 19: a bumped extractor once read old features back); the recorded
    ``reference_key``, the reference set the leaderboard groups by, stays what it was."""
    import hashlib
    import json

    from gtbench.measure import feature_identity
    from gtbench.plugin import images
    from gtbench.plugin.images import tensor_sha256

    dataset = make_dataset()
    _, info = cached_reference(dataset, tmp_path)
    identity = info["feature_identity"]
    assert identity["version"] == str(DebugExtractor.version)
    assert identity["distribution"] == "gtbench" and identity["distribution_version"]
    assert identity["torch_fidelity"] and identity["dtype"] == "torch.float32"
    assert identity["preprocessing"] == {
        "resize": "bicubic-antialias",
        "resolution": 16,
        "channels": 3,
        "to_rgb": "repeat",
    }
    extractor = make_extractor()
    format_1 = {  # the key records have held since the first cache format
        "format": 1,
        "dataset_content": dataset.content_hash(),
        "evaluation_images": tensor_sha256(dataset.evaluation_images()),
        "resolution": 16,
        "extractor": extractor.identity(),
        "fidelity_extractor": extractor.fidelity_name(),
        "feature_layer": extractor.feature_layer(),
    }
    expected = hashlib.sha256(json.dumps(format_1, sort_keys=True).encode()).hexdigest()
    assert info["reference_key"] == expected

    bumped = BumpedDebugExtractor()
    bumped.name = "debug"
    module = load_feature_extractor(bumped, CPU)
    _, other = reference_features(dataset, bumped, module, cache_dir=tmp_path, device=CPU)
    assert other["reference_cache"] == "miss"
    assert other["reference_key"] == info["reference_key"]
    assert other["reference_cache_key"] != info["reference_cache_key"]

    changes = [
        lambda: monkeypatch.setattr(feature_identity, "_version", lambda package: "0.0-other"),
        lambda: monkeypatch.setattr(torch, "get_default_dtype", lambda: torch.float64),
        lambda: monkeypatch.setattr(images, "RESIZE_MODE", "bilinear"),
    ]
    seen = {info["reference_cache_key"], other["reference_cache_key"]}
    for change in changes:
        change()
        _, again = cached_reference(dataset, tmp_path)
        assert again["reference_cache"] == "miss"
        assert again["reference_key"] == info["reference_key"]
        assert again["reference_cache_key"] not in seen
        seen.add(again["reference_cache_key"])


def test_results_do_not_depend_on_batch_size(generator, tmp_path):
    small = run(generator, make_dataset(), tmp_path / "a", batch_size=7)
    large = run(generator, make_dataset(), tmp_path / "b", batch_size=64)
    for name, value in large.metrics.items():
        assert small.metrics[name] == pytest.approx(value, rel=1e-6), name


def test_generate_images_is_deterministic_and_restores_mode(generator):
    generator.train()
    a = generate_images(generator, 20, seed=5, device=CPU, batch_size=3)
    b = generate_images(generator, 20, seed=5, device=CPU, batch_size=20)
    c = generate_images(generator, 20, seed=6, device=CPU)
    assert a.dtype == torch.uint8 and a.shape == (20, 3, 16, 16)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert generator.training


def test_grey_images_stay_grey_and_are_evaluated(tmp_path):
    grey = DebugSource(channels=1).load().generator
    assert generate_images(grey, 4, seed=0, device=CPU).shape == (4, 1, 16, 16)
    result = run(grey, make_dataset(channels=1), tmp_path)
    assert math.isfinite(result.metrics["fid"])
    colour = DebugSource(channels=3).load().generator
    converted = run(colour, make_dataset(channels=1), tmp_path)
    assert converted.settings["generated_shape"] == [3, 16, 16]
    assert converted.settings["evaluated_shape"] == [1, 16, 16]
    assert converted.settings["reference_cache"] == "hit"


def test_memorisation_high_for_copies_of_the_shots_low_for_unseen_images(tmp_path):
    dataset = make_dataset()
    shots = train_shots(dataset)
    split = set(dataset.split(10, 0).train)
    unseen = dataset.images()[[i for i in dataset.shot_pool() if i not in split]]

    copies = run(ReplayGenerator(shots), dataset, tmp_path).metrics
    assert copies["mem_closer_to_train"] == 1.0
    assert copies["mem_nn_train_dist"] < 1e-9
    assert copies["mem_nn_train_ratio"] < 1e-6

    fresh = run(ReplayGenerator(unseen), dataset, tmp_path).metrics
    assert fresh["mem_closer_to_train"] < 0.3
    assert fresh["mem_nn_train_ratio"] > 0.5


def test_diversity_is_zero_for_a_collapsed_generator_and_positive_otherwise(tmp_path):
    dataset = make_dataset()
    collapsed = run(ReplayGenerator(train_shots(dataset)[:1]), dataset, tmp_path).metrics
    assert collapsed["intra_cluster_diversity"] < 1e-9
    assert collapsed["shot_coverage"] == pytest.approx(0.1)
    varied = run(ReplayGenerator(dataset.evaluation_images()), dataset, tmp_path).metrics
    assert varied["intra_cluster_diversity"] > 1e-4
    assert varied["shot_coverage"] > 0.5


def test_progress_reports_every_stage(generator, tmp_path):
    seen: dict[str, tuple[int, int]] = {}
    evaluate(
        generator,
        make_dataset(),
        train_shots(make_dataset()),
        make_extractor(),
        EvalSettings(n_samples=50, kid_subsets=5),
        seed=0,
        device=CPU,
        cache_dir=tmp_path,
        progress=lambda stage, done, total: seen.__setitem__(stage, (done, total)),
    )
    assert seen["generate"] == (50, 50)
    assert seen["features-reference"] == (160, 160)
    assert seen["features-generated"] == (50, 50)
    assert seen["features-train"] == (10, 10)


class UnavailableExtractor(Extractor):
    name = "unavailable"
    parameters: ClassVar = {}

    def fidelity_name(self) -> str:
        raise AssertionError("must not be reached")

    def feature_layer(self) -> str:
        return "x"

    def check_available(self) -> None:
        raise MissingAssetError("weights missing: put them somewhere")


def test_missing_extractor_assets_fail_before_any_work(generator, tmp_path):
    with pytest.raises(MissingAssetError, match="weights missing"):
        evaluate(
            generator,
            make_dataset(),
            train_shots(make_dataset()),
            UnavailableExtractor(),
            EvalSettings(n_samples=10),
            seed=0,
            device=CPU,
            cache_dir=tmp_path,
        )
    assert not list(tmp_path.iterdir())


class TruncatableGenerator(Generator):
    """Scales its output by a ``truncation`` attribute, as the StyleGAN2 source does."""

    def __init__(self) -> None:
        super().__init__()
        self.latent_shape = (3,)
        self.truncation = 1.0

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return (z.tanh() * self.truncation).view(-1, 3, 1, 1).expand(-1, 3, 2, 2)


def test_truncation_is_applied_then_restored_or_refused():
    truncatable = TruncatableGenerator()
    full = generate_images(truncatable, 8, seed=0, device=CPU)
    none = generate_images(truncatable, 8, seed=0, device=CPU, truncation=0.0)
    assert not torch.equal(full, none) and (none == 128).all()
    assert truncatable.truncation == 1.0
    with pytest.raises(UsageError, match="does not support truncation"):
        generate_images(DebugSource().load().generator, 2, seed=0, device=CPU, truncation=0.5)


def test_intra_cluster_diversity_by_hand_and_memorisation_without_shots():
    features = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0], [1.0, 1.0], [1.0, 1.0]])
    assignment = torch.tensor([0, 0, 1, 2, 2])
    # cluster 0: one orthogonal pair (distance 1); cluster 1: alone (skipped); 2: identical
    assert intra_cluster_diversity(features, assignment, 3) == pytest.approx(0.5)
    assert math.isnan(intra_cluster_diversity(features[:1], assignment[:1], 3))
    empty = memorisation_metrics(features, features[:0], features)
    assert all(math.isnan(v) for v in empty.values())


@pytest.mark.parametrize(("size", "valid"), [(168, False), (169, True)])
def test_fid_is_flagged_not_valid_when_reference_images_do_not_exceed_feature_dim(
    generator, tmp_path, size, valid
):
    """128-d debug features: 128 evaluation images give a singular reference covariance
    (FID flagged, reason recorded), 129 do not; KID is computed either way."""
    # pool 40: size - 40 evaluated; 200 generated, above the 128 dimensions
    result = run(generator, make_dataset(size=size), tmp_path, n_samples=200)
    assert result.settings["n_reference"] == size - 40 and result.settings["feature_dim"] == 128
    assert result.metrics["fid_valid"] is valid and result.settings["fid_valid"] is valid
    reason = result.settings["fid_valid_reason"]
    assert ("rank-deficient" in reason and "128-d" in reason) is not valid
    assert math.isfinite(result.metrics["kid_mean"])


@pytest.mark.parametrize(
    ("n_reference", "n_generated", "short"),
    [
        (200, 128, ["128 generated"]),
        (128, 200, ["128 evaluation"]),
        (100, 50, ["100 evaluation", "50 generated"]),
        (129, 129, []),
    ],
)
def test_fid_validity_looks_at_both_sides(n_reference, n_generated, short):
    from gtbench.measure.evaluation import fid_invalid_reason

    reason = fid_invalid_reason(n_reference, n_generated, 128)
    assert (reason is None) is (not short)
    for part in short:
        assert part in reason


def test_records_say_whether_the_extractor_is_a_metric(generator, tmp_path):
    assert run(generator, make_dataset(), tmp_path).settings["is_metric"] is False  # debug
    assert Extractor.is_metric is True  # the default of every other extractor


def test_a_grey_target_judges_colour_samples_in_grey_so_colour_does_not_count(tmp_path):
    """A grey target of a colour source (the face pair) is compared in grey: samples
    tinted without changing their channel mean score exactly as their grey versions, while
    a target declared as colour (grey repeated) is moved by the tint."""
    from gtbench.launch.runner import MatchedTarget

    rng = torch.Generator().manual_seed(0)
    grey = (torch.rand(120, 1, 16, 16, generator=rng) * 160 + 48).round().to(torch.uint8)
    target = MatchedTarget(ArrayDataset(grey), 16, 3)
    assert target.images().shape[1] == 3  # training sees the source's channels
    assert target.evaluation_images().shape[1] == 1  # evaluation stays grey
    split = target.split(10, 0)
    assert target.shot_eval_overlap(split) == 0
    shots = target.images()[list(split.train)]
    samples = grey[80:]
    tint = torch.tensor([40, -40, 0]).view(1, 3, 1, 1)
    tinted = (samples.int() + tint).to(torch.uint8)  # same channel mean as the grey image
    assert torch.equal(tinted.float().mean(1, keepdim=True).round().to(torch.uint8), samples)

    def measure(dataset, images):
        return evaluate(
            ReplayGenerator(images), dataset, shots, make_extractor(),
            EvalSettings(n_samples=60, kid_subsets=5), seed=3, device=CPU, cache_dir=tmp_path,
        )  # fmt: skip

    plain = measure(target, samples.repeat(1, 3, 1, 1))
    coloured = measure(target, tinted)
    assert coloured.metrics["kid_mean"] == plain.metrics["kid_mean"]
    assert coloured.metrics["fid"] == plain.metrics["fid"]
    assert coloured.settings["evaluated_shape"] == [1, 16, 16]
    assert "grey" in coloured.settings["evaluated_in"]
    as_colour = MatchedTarget(ArrayDataset(grey.repeat(1, 3, 1, 1)), 16, 3)
    assert as_colour.evaluation_images().shape[1] == 3
    assert measure(as_colour, tinted).metrics["kid_mean"] != plain.metrics["kid_mean"]
    assert "evaluated_in" not in measure(as_colour, tinted).settings


def test_the_grey_comparison_is_in_the_identity_only_where_it_applies():
    """Evaluating in fewer channels than the source's changes the matched content hash
    (so the run id); every cell whose source and target share a channel count keeps it."""
    from gtbench.launch.runner import MatchedTarget
    from gtbench.plan.identity import matched_content_hash
    from gtbench.plugin.images import compared_channels

    assert compared_channels(3, 1) == compared_channels(1, 3) == 1
    assert compared_channels(3, 3) == 3
    assert matched_content_hash("h", 32, 1, 1) == matched_content_hash("h", 32, 1)
    assert matched_content_hash("h", 64, 3, 3) == matched_content_hash("h", 64, 3)
    assert matched_content_hash("h", 64, 3, 1) != matched_content_hash("h", 64, 3)
    grey = ArrayDataset(torch.zeros(50, 1, 8, 8, dtype=torch.uint8))
    expected = matched_content_hash(grey.content_hash(), 8, 3, 1)
    assert MatchedTarget(grey, 8, 3).content_hash() == expected
