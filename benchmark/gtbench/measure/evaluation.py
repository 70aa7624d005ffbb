"""Evaluation of an adapted generator: FID and KID by torch-fidelity, plus memorisation and
diversity measured in the same feature space.

The protocol (docs/protocol.md): ``n_samples`` generated images are
compared with the target's evaluation set, which is disjoint from the K training shots;
the training shots are used only for the memorisation and diversity metrics. Reference
features are cached on disk keyed by the image content and the extractor's identity,
never by a name, so a cache entry can never be read for other data or other weights.

This module knows nothing about particular models, datasets or extractors: it talks to
them only through the plugin base classes and torch-fidelity's extractor registry.
"""

from __future__ import annotations

import inspect
import io
import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.metric_fid import (
    KEY_METRIC_FID,
    fid_features_to_statistics,
    fid_statistics_to_metric,
)
from torch_fidelity.metric_kid import (
    KEY_METRIC_KID_MEAN,
    KEY_METRIC_KID_STD,
    kid_features_to_metric,
)
from torch_fidelity.utils import create_feature_extractor

from gtbench.errors import UsageError
from gtbench.files.atomic import atomic_write_bytes
from gtbench.measure.eval_settings import PROTOCOL_VERSION, EvalSettings
from gtbench.measure.feature_identity import reference_keys
from gtbench.plugin.base import Dataset, Extractor
from gtbench.plugin.images import as_rgb, match_format, to_uint8
from gtbench.plugin.networks import Generator

if TYPE_CHECKING:
    from gtbench.measure.adaptation import DomainClassifier

__all__ = [
    "PROTOCOL_VERSION",
    "EvalSettings",
    "Evaluation",
    "Progress",
    "evaluate",
    "evaluated_channels",
    "extract_features",
    "fid_from_features",
    "fid_invalid_reason",
    "generate_images",
    "intra_cluster_diversity",
    "kid_from_features",
    "load_feature_extractor",
    "memorisation_metrics",
    "reference_features",
]

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]

# Above this many features per side, KID falls back to torch-fidelity's per-subset loop:
# the whole-set kernel matrices would need n² float64 each.
KID_WHOLE_KERNEL_MAX = 4096
REFERENCE_DIR = "reference"  # reference features: <cache>/reference/<cache key>.pt
DISTANCE = "cosine"  # 1 - cosine similarity, for memorisation and diversity
DISTANCE_NOTE = "cosine distance (1 - cosine similarity) in the extractor's feature space"
DIVERSITY_NOTE = (
    "intra-cluster diversity (after CDC's intra-LPIPS): each sample is assigned to its nearest "
    "training shot; mean pairwise distance within every cluster of >= 2 samples, averaged "
    "over those clusters"
)
MEMORISATION_NOTE = (
    "mem_closer_to_train: fraction of samples nearer to a training shot than to any "
    "evaluation image (copies: 1); mem_nn_train_dist: mean distance of a sample to its "
    "nearest shot (copies: 0); mem_nn_train_ratio: that mean over the same mean for the "
    "evaluation images (held-out real images; < 1: samples hug the shots more than they do)"
)


@dataclass
class Evaluation:
    """Metrics of one evaluation and the settings that produced them (both go in the record)."""

    metrics: dict[str, float]  # and ``fid_valid`` (bool)
    settings: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- images


def _accepts_truncation(generator: Generator) -> bool:
    accepted = inspect.signature(generator.forward).parameters.values()
    return any(p.name == "truncation" or p.kind is p.VAR_KEYWORD for p in accepted)


@contextmanager
def _truncation(generator: Generator, truncation: float | None) -> Iterator[dict[str, Any]]:
    """Keyword arguments for the forward pass that apply ``truncation``.

    A generator either takes ``truncation=`` in ``forward`` or carries a ``truncation``
    attribute (set here for the duration and restored after)."""
    if truncation is None:
        yield {}
    elif _accepts_truncation(generator):
        yield {"truncation": truncation}
    elif isinstance(getattr(generator, "truncation", None), (int, float)):
        previous = generator.truncation
        generator.truncation = float(truncation)
        try:
            yield {}
        finally:
            generator.truncation = previous
    else:
        raise UsageError(f"generator {type(generator).__name__} does not support truncation")


def generate_images(
    generator: Generator,
    n: int,
    *,
    seed: int,
    device: torch.device,
    batch_size: int = 64,
    truncation: float | None = None,
    progress: Progress | None = None,
) -> torch.Tensor:
    """``n`` samples as uint8 N×C×H×W on the CPU, identical for a seed whatever the batch size.

    Every random draw comes from ``seed``: the latents are drawn up front on the CPU from
    ``torch.Generator().manual_seed(seed)``, then one seed per sample from the same
    generator for the draws a forward pass makes itself (:meth:`Generator.sample_noise`:
    StyleGAN2's noise maps). Draws a generator still makes from torch's global RNG come
    from that RNG seeded with ``seed`` for this call and restored afterwards, so
    generating never shifts the caller's random stream. The generator runs in eval mode
    under ``no_grad`` and its previous mode is restored afterwards."""
    if n < 1:
        raise UsageError(f"cannot generate {n} images: n must be at least 1")
    device = torch.device(device)
    rng = torch.Generator().manual_seed(seed)
    latents = generator.sample_latent(n, generator=rng, device="cpu")
    noise_seeds = torch.randint(0, 2**63 - 1, (n,), generator=rng).tolist()
    was_training = generator.training
    generator.eval()
    batches = []
    try:
        with (
            torch.random.fork_rng(devices=_rng_devices(device)),
            torch.no_grad(),
            _truncation(generator, truncation) as extra,
        ):
            _seed_global_rng(seed, device)
            for start in range(0, n, batch_size):
                z = latents[start : start + batch_size].to(device)
                noise = generator.sample_noise(
                    noise_seeds[start : start + batch_size], device=device
                )
                batches.append(to_uint8(generator(z, **extra, **noise)).cpu())
                if progress is not None:
                    progress("generate", min(start + batch_size, n), n)
    finally:
        generator.train(was_training)
    return torch.cat(batches)


def _seed_global_rng(seed: int, device: torch.device) -> None:
    """Seed torch's CPU RNG and, generating on a GPU, that GPU's (the ones forked)."""
    torch.random.default_generator.manual_seed(seed)
    if device.type == "cuda":
        with torch.cuda.device(device):
            torch.cuda.manual_seed(seed)


def _rng_devices(device: torch.device) -> list[int]:
    """The CUDA devices whose RNG state generating on ``device`` may use (none on a CPU)."""
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


# --------------------------------------------------------------------------- features

_EXTRACTOR_CACHE: dict[tuple[str, ...], FeatureExtractorBase] = {}


def load_feature_extractor(extractor: Extractor, device: torch.device) -> FeatureExtractorBase:
    """The torch-fidelity network of ``extractor`` on ``device`` (kept for the process: the
    second evaluation with the same extractor does not rebuild or reload it)."""
    device = torch.device(device)
    name, layer, kwargs = (
        extractor.fidelity_name(),
        extractor.feature_layer(),
        extractor.fidelity_kwargs(),
    )
    key = (name, layer, repr(sorted(kwargs.items())), extractor.identity(), str(device))
    if key not in _EXTRACTOR_CACHE:
        cuda = device.type == "cuda"
        with torch.cuda.device(device) if cuda else nullcontext():
            module = create_feature_extractor(name, [layer], cuda=cuda, verbose=False, **kwargs)
        _EXTRACTOR_CACHE.clear()  # one network at a time: they can be large
        _EXTRACTOR_CACHE[key] = module.to(device)
    return _EXTRACTOR_CACHE[key]


def extract_features(
    module: FeatureExtractorBase,
    images: torch.Tensor,
    *,
    device: torch.device,
    batch_size: int = 64,
    progress: Progress | None = None,
    stage: str = "features",
) -> torch.Tensor:
    """Features (N×D, on the CPU) of uint8 images, for the single layer ``module`` provides."""
    n = len(images)
    chunks = []
    with torch.no_grad():
        for start in range(0, n, batch_size):
            batch = as_rgb(images[start : start + batch_size]).to(device)
            (features,) = module(batch)
            chunks.append(features.reshape(len(batch), -1).cpu())
            if progress is not None:
                progress(stage, min(start + batch_size, n), n)
    if not chunks:
        return torch.zeros((0, 0))
    return torch.cat(chunks)


# --------------------------------------------------------------------------- reference cache


def _load_cached(path: Path, digest: str, n: int) -> torch.Tensor | None:
    """The cached features, or None when absent, corrupt or not for this key."""
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        features = payload["features"]
        if payload["digest"] != digest or features.dim() != 2 or len(features) != n:
            raise ValueError("entry does not match its key")
    except Exception as error:  # any unreadable entry is recomputed, never fatal
        log.warning("ignoring unreadable feature cache %s (%s); recomputing", path, error)
        return None
    return features


def _save_atomic(path: Path, payload: dict[str, Any]) -> None:
    """Serialise in memory, then the one atomic writer: readers see all or nothing."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def cached_features(
    path: Path, digest: str, n: int, compute: Callable[[], torch.Tensor], **payload: Any
) -> tuple[torch.Tensor, bool]:
    """``n`` features from the disk cache entry ``path`` (keyed by ``digest``), or
    ``compute()``'d and written there with ``payload`` beside them; True on a hit. A
    read-only cache slows the next run, nothing more."""
    features = _load_cached(path, digest, n)
    if features is not None:
        return features, True
    features = compute()
    try:
        _save_atomic(path, {**payload, "digest": digest, "features": features})
    except OSError as error:
        log.warning("could not write feature cache %s: %s", path, error)
    return features, False


def reference_cache_path(cache_dir: str | Path, key: str) -> Path:
    """Where the reference features of ``key`` (a record's ``eval.reference_cache_key``) live."""
    return Path(cache_dir) / REFERENCE_DIR / f"{key}.pt"


def reference_features(
    dataset: Dataset,
    extractor: Extractor,
    module: FeatureExtractorBase,
    *,
    cache_dir: Path,
    device: torch.device,
    batch_size: int = 64,
    progress: Progress | None = None,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Features of ``dataset.evaluation_images()``, read from or written to the disk cache.

    Returns the features and what to record about the cache (hit or miss, file, key)."""
    images = dataset.evaluation_images()
    info = dataset.info
    reference_key, digest, identity = reference_keys(
        dataset.content_hash(),
        images,
        extractor,
        resolution=info.resolution,
        channels=int(images.shape[1]),  # grey where a grey target is judged in grey
        device=device,
    )
    features, hit = cached_features(
        reference_cache_path(cache_dir, digest),
        digest,
        len(images),
        lambda: extract_features(
            module,
            images,
            device=device,
            batch_size=batch_size,
            progress=progress,
            stage="features-reference",
        ),
        reference_key=reference_key,
        features_of=identity,
        dataset=dataset.name,
    )
    status = "hit" if hit else "miss"
    # the keys, not the file: a record names no path of the machine that made it
    info = {
        "reference_cache": status,
        "reference_key": reference_key,
        "reference_cache_key": digest,
        "feature_identity": identity,
    }
    return features, info


# --------------------------------------------------------------------------- metrics


def fid_from_features(features_1: torch.Tensor, features_2: torch.Tensor) -> float:
    """FID between two feature sets by torch-fidelity's statistics and metric functions."""
    stats_1 = fid_features_to_statistics(features_1.detach().cpu().double())
    stats_2 = fid_features_to_statistics(features_2.detach().cpu().double())
    return float(fid_statistics_to_metric(stats_1, stats_2, verbose=False)[KEY_METRIC_FID])


def fid_invalid_reason(n_reference: int, n_generated: int, feature_dim: int) -> str | None:
    """Why FID between ``n_reference`` evaluation and ``n_generated`` generated images is
    not a valid measure in a ``feature_dim``-dimensional feature space, or None when it is.

    Each side's covariance needs full rank: from n <= d images it is singular, and the
    number then mostly reflects the sample size, not the images. Both sides count (a
    250-sample training curve in 256-d features is as invalid as 200 reference images).
    KID (unbiased at any size) is the measure to read, rank and select by."""
    short = [
        f"{n} {side} images"
        for n, side in ((n_reference, "evaluation"), (n_generated, "generated"))
        if n <= feature_dim
    ]
    if short:
        return (
            f"{' and '.join(short)} in a {feature_dim}-d feature space: the covariance is "
            "rank-deficient (n <= d), so FID is not a valid measure; rank by KID"
        )
    return None


def kid_from_features(
    features_1: torch.Tensor,
    features_2: torch.Tensor,
    *,
    subsets: int,
    subset_size: int,
    seed: int,
) -> tuple[float, float]:
    """KID mean and std: torch-fidelity's estimator (cubic polynomial kernel
    ``(x·y/d + 1)³``, unbiased MMD² per subset, subsets drawn by
    ``numpy.random.RandomState(seed)`` in torch-fidelity's order).

    Why not call torch-fidelity directly: its loop recomputes three m×m kernel matrices
    per subset (100 subsets of 1000 features cost seconds on a CPU core). Here each kernel
    matrix is computed once for the whole sets and every subset's sums are read from it
    with 0/1 masks; the values equal ``kid_features_to_metric`` within float64 rounding
    (tested). Sets above ``KID_WHOLE_KERNEL_MAX`` use torch-fidelity's loop."""
    rng_seed = seed % 2**32
    x = features_1.detach().cpu().double()
    y = features_2.detach().cpu().double()
    if max(len(x), len(y)) > KID_WHOLE_KERNEL_MAX:
        out = kid_features_to_metric(
            x,
            y,
            kid_subsets=subsets,
            kid_subset_size=subset_size,
            rng_seed=rng_seed,
            verbose=False,
        )
        return float(out[KEY_METRIC_KID_MEAN]), float(out[KEY_METRIC_KID_STD])
    if subset_size > min(len(x), len(y)) or subset_size < 2:
        raise UsageError(
            f"KID subset size {subset_size} must be between 2 and the smaller set "
            f"({len(x)} and {len(y)} features)"
        )
    rng = np.random.RandomState(rng_seed)
    mask_x = torch.zeros(subsets, len(x), dtype=torch.float64)
    mask_y = torch.zeros(subsets, len(y), dtype=torch.float64)
    for i in range(subsets):  # the draws in torch-fidelity's order: set 1, then set 2
        mask_x[i, torch.from_numpy(rng.choice(len(x), subset_size, replace=False))] = 1.0
        mask_y[i, torch.from_numpy(rng.choice(len(y), subset_size, replace=False))] = 1.0
    d = x.shape[1]

    def kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a @ b.T / d + 1.0) ** 3

    def masked_sum(mask_a: torch.Tensor, k: torch.Tensor, mask_b: torch.Tensor) -> torch.Tensor:
        return ((mask_a @ k) * mask_b).sum(dim=1)  # per subset: sum of k over a × b

    k_xx, k_yy = kernel(x, x), kernel(y, y)
    off_xx = masked_sum(mask_x, k_xx, mask_x) - mask_x @ k_xx.diagonal()
    off_yy = masked_sum(mask_y, k_yy, mask_y) - mask_y @ k_yy.diagonal()
    sum_xy = masked_sum(mask_x, kernel(x, y), mask_y)
    m = subset_size
    mmd = (off_xx + off_yy) / (m * (m - 1)) - 2.0 * sum_xy / (m * m)
    return float(mmd.mean()), float(mmd.std(correction=0))


def cosine_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise 1 - cosine similarity (float64), |a|×|b|."""
    a = F.normalize(a.double(), dim=1)
    b = F.normalize(b.double(), dim=1)
    return (1.0 - a @ b.T).clamp_min(0.0)


def nearest(
    a: torch.Tensor, b: torch.Tensor, chunk: int = 1024
) -> tuple[torch.Tensor, torch.Tensor]:
    """For each row of ``a``: the distance to its nearest row of ``b`` and that row's index."""
    distances, indices = [], []
    for start in range(0, len(a), chunk):
        d, i = cosine_distances(a[start : start + chunk], b).min(dim=1)
        distances.append(d)
        indices.append(i)
    return torch.cat(distances), torch.cat(indices)


def intra_cluster_diversity(features: torch.Tensor, assignment: torch.Tensor, k: int) -> float:
    """Mean over clusters (of >= 2 members) of the mean pairwise distance inside a cluster;
    NaN when no cluster has two members."""
    values = []
    for cluster in range(k):
        members = features[assignment == cluster]
        m = len(members)
        if m < 2:
            continue
        d = cosine_distances(members, members)
        values.append(float((d.sum() - d.diagonal().sum()) / (m * (m - 1))))
    return sum(values) / len(values) if values else math.nan


def memorisation_metrics(
    fake: torch.Tensor, train: torch.Tensor, real: torch.Tensor
) -> dict[str, float]:
    """How close samples are to the K training shots, with held-out real images as the yard
    stick, plus the diversity metrics that use the same nearest-shot assignment."""
    nan = math.nan
    names = (
        "mem_closer_to_train",
        "mem_nn_train_dist",
        "mem_nn_train_ratio",
        "intra_cluster_diversity",
        "intra_cluster_diversity_real",
        "shot_coverage",
    )
    if len(train) == 0 or len(real) == 0:
        return dict.fromkeys(names, nan)
    d_train, assignment = nearest(fake, train)
    d_real, _ = nearest(fake, real)
    real_to_train, real_assignment = nearest(real, train)
    baseline = float(real_to_train.mean())
    return {
        "mem_closer_to_train": float((d_train < d_real).double().mean()),
        "mem_nn_train_dist": float(d_train.mean()),
        "mem_nn_train_ratio": float(d_train.mean()) / baseline if baseline > 0 else nan,
        "intra_cluster_diversity": intra_cluster_diversity(fake, assignment, len(train)),
        "intra_cluster_diversity_real": intra_cluster_diversity(real, real_assignment, len(train)),
        "shot_coverage": len(set(assignment.tolist())) / len(train),
    }


# --------------------------------------------------------------------------- evaluate


def evaluated_channels(dataset: Dataset) -> int:
    """The channels a target judges samples in: those of its evaluation images. Grey for a
    grey target of a colour source (:func:`~gtbench.plugin.images.compared_channels`):
    samples, shots and the adaptation classifier's images are brought to it (channel
    mean), so colour the target cannot show never enters a measure."""
    return int(dataset.evaluation_images().shape[1])


def evaluate(
    generator: Generator,
    dataset: Dataset,
    train_images: torch.Tensor,
    extractor: Extractor,
    settings: EvalSettings,
    *,
    seed: int,
    device: torch.device,
    cache_dir: Path,
    progress: Progress | None = None,
    domain: DomainClassifier | None = None,
) -> Evaluation:
    """Generate ``settings.n_samples`` images and measure them against ``dataset``'s
    evaluation set (FID, KID), against ``train_images`` (memorisation, diversity) and,
    given a ``domain`` classifier, how far they moved to the target (adaptation)."""
    device = torch.device(device)
    if settings.n_samples < 2:
        raise UsageError(f"n_samples must be at least 2 for FID/KID, got {settings.n_samples}")
    extractor.check_available()
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    info = dataset.info
    raw = generate_images(
        generator,
        settings.n_samples,
        seed=seed,
        device=device,
        batch_size=settings.batch_size,
        progress=progress,
    )
    generated_shape = tuple(raw.shape[1:])
    channels = evaluated_channels(dataset)
    fake_images = match_format(raw, channels, info.resolution)
    train_images = match_format(train_images, channels, info.resolution)
    timings["generate_s"], clock = time.perf_counter() - clock, time.perf_counter()

    module = load_feature_extractor(extractor, device)
    common = {"device": device, "batch_size": settings.batch_size, "progress": progress}
    real, cache_info = reference_features(
        dataset, extractor, module, cache_dir=Path(cache_dir), **common
    )
    timings["reference_s"], clock = time.perf_counter() - clock, time.perf_counter()
    fake = extract_features(module, fake_images, stage="features-generated", **common)
    train = extract_features(module, train_images, stage="features-train", **common)
    timings["features_s"], clock = time.perf_counter() - clock, time.perf_counter()

    kid_size = min(settings.kid_subset_size, len(real), len(fake))
    if kid_size < 2:
        raise UsageError(
            f"KID needs at least 2 evaluation and 2 generated images; the evaluation set of "
            f"dataset {dataset.name!r} has {len(real)}"
        )
    if progress is not None:
        progress("metrics", 0, 1)
    kid_mean, kid_std = kid_from_features(
        fake, real, subsets=settings.kid_subsets, subset_size=kid_size, seed=seed
    )
    metrics = {
        "fid": fid_from_features(fake, real),
        "kid_mean": kid_mean,
        "kid_std": kid_std,
        "fid_train": fid_from_features(fake, train) if len(train) >= 2 else math.nan,
        **memorisation_metrics(fake, train, real),
    }
    if domain is not None:
        metrics.update(domain.measure(fake))
    fid_invalid = fid_invalid_reason(len(real), len(fake), int(real.shape[1]))
    metrics["fid_valid"] = fid_invalid is None
    if progress is not None:
        progress("metrics", 1, 1)
    timings["metrics_s"] = time.perf_counter() - clock

    recorded = {
        "extractor": extractor.name,
        "extractor_identity": extractor.identity(),
        "is_metric": extractor.is_metric,
        "fidelity_extractor": extractor.fidelity_name(),
        "feature_layer": extractor.feature_layer(),
        "feature_dim": int(real.shape[1]),
        "n_samples": settings.n_samples,
        "n_reference": len(real),
        "fid_valid": fid_invalid is None,
        "fid_valid_reason": fid_invalid
        or f"{len(real)} evaluation and {len(fake)} generated images > {real.shape[1]} "
        "feature dimensions",
        "n_train": len(train),
        "kid_subset_size": kid_size,
        "kid_subset_size_requested": settings.kid_subset_size,
        "kid_subsets": settings.kid_subsets,
        "kid_rng_seed": seed % 2**32,
        "sample_seed": seed,
        "generated_shape": list(generated_shape),
        "evaluated_shape": [channels, info.resolution, info.resolution],
        **(
            {"evaluated_in": "grey: the target is grey, the samples' channel mean is compared"}
            if channels < generated_shape[0]
            else {}
        ),
        "distance": DISTANCE,
        "distance_note": DISTANCE_NOTE,
        "diversity": DIVERSITY_NOTE,
        "memorisation": MEMORISATION_NOTE,
        "fid_train_note": "FID against the K training shots (rank-deficient for small K)",
        "device": str(device),
        "cuda": device.type == "cuda",
        "timings": timings,
        **cache_info,
        **(domain.settings() if domain is not None else {}),
    }
    return Evaluation(metrics=metrics, settings=recorded)
