"""How far an adapted generator's samples moved from the source domain to the target.

FID alone cannot say whether a generator adapted: a generator that still draws the
source's animals and one that draws blurry cats can score alike. A classifier in the
extractor's feature space separates the *source domain* (real images of the source's
pretraining set where the source names it, else samples of the pretrained generator) from
the *target domain* (the target's shot pool and validation images, never its evaluation
images). ``adaptation`` is the share of a generator's samples it assigns to the target;
``adaptation_prob`` their mean target probability.

The classifier is the :data:`NEIGHBOURS` nearest neighbours by cosine distance (the
distance of the memorisation and diversity measures), distance-weighted, over equally
many images of each domain (a fixed draw of the larger side). A linear classifier was
measured first: on the silhouette → cat pair it put 44-59 % of fine-tuning's 5000-step
samples, which are all cats to the eye, in the source domain (generated images are off
both real distributions, and a linear boundary fitted to real images leaves them on the
wrong side); the neighbour vote put 92-97 % there, and 15 % of the source's own samples
(its floor, shown by the ``source-only`` row).

The classifier is trusted only when its cross-validated balanced accuracy reaches
:data:`MIN_ACCURACY`; the record says so (``adaptation_valid``) and the tables leave an
untrusted share out.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gtbench.measure import evaluation as ev
from gtbench.measure.feature_identity import (
    CACHE_FORMAT,
    canonical_json,
    digest,
    feature_identity,
)
from gtbench.plugin import registry
from gtbench.plugin.base import Dataset, Extractor, Source
from gtbench.plugin.images import match_format
from gtbench.plugin.spec import PluginSpec

log = logging.getLogger(__name__)

__all__ = [
    "FOLDS",
    "MIN_ACCURACY",
    "SOURCE_SAMPLES",
    "SOURCE_SEED",
    "DomainClassifier",
    "domain_classifier",
    "fit_domain_classifier",
    "source_domain",
]

MIN_ACCURACY = 0.9  # cross-validated balanced accuracy below this: the share is not reported
SOURCE_SAMPLES = 1000  # samples of the pretrained source generator (the source domain)
SOURCE_SEED = 777_001  # their latents: apart from every cell's sample seed
FOLDS = 5
NEIGHBOURS = 10
NOTE = (
    f"share of samples whose {NEIGHBOURS} nearest neighbours (cosine distance in the "
    "extractor's features, distance-weighted, equally many images per domain) vote target; "
    "the target side is the target's shot pool and validation images (never its evaluation "
    "images)"
)


@dataclass(frozen=True)
class DomainClassifier:
    """A fitted source-vs-target classifier and how far it can be trusted."""

    model: Any  # sklearn pipeline (unit-normalised features + k nearest neighbours)
    accuracy: float  # cross-validated balanced accuracy (nan when not fitted)
    n_source: int
    n_target: int
    reason: str | None = None  # why it is not valid, None when it is
    source_side: str = ""  # what stood for the source domain

    @property
    def valid(self) -> bool:
        return self.reason is None

    def measure(self, features: torch.Tensor) -> dict[str, float]:
        """``adaptation`` (share assigned to the target) and ``adaptation_prob``; both nan
        when the classifier is not trusted (:attr:`reason` says why)."""
        if not self.valid:
            return {"adaptation": math.nan, "adaptation_prob": math.nan}
        probability = self.model.predict_proba(_as_numpy(features))[:, 1]
        return {
            "adaptation": float(np.mean(probability > 0.5)),
            "adaptation_prob": float(np.mean(probability)),
        }

    def settings(self) -> dict[str, Any]:
        """What the record keeps about the classifier (beside the metrics)."""
        return {
            "adaptation_accuracy": self.accuracy,
            "adaptation_valid": self.valid,
            "adaptation_reason": self.reason
            or f"cross-validated balanced accuracy {self.accuracy:.3f} ≥ {MIN_ACCURACY}",
            "adaptation_n_source": self.n_source,
            "adaptation_n_target": self.n_target,
            "adaptation_source_side": self.source_side,
            "adaptation_note": NOTE,
        }


def _as_numpy(features: torch.Tensor) -> np.ndarray:
    return features.detach().to("cpu", torch.float64).numpy()


def fit_domain_classifier(
    source: torch.Tensor, target: torch.Tensor, *, seed: int = 0
) -> DomainClassifier:
    """Fit on ``source`` (label 0) and ``target`` (label 1) features, the larger side cut
    to the smaller's size by a fixed draw (``seed``); accuracy from stratified
    ``FOLDS``-fold cross-validation, then one fit on everything."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer

    size = min(len(source), len(target))
    draw = np.random.default_rng(seed)
    if len(source) > size:
        source = source[np.sort(draw.choice(len(source), size, replace=False))]
    if len(target) > size:
        target = target[np.sort(draw.choice(len(target), size, replace=False))]
    n_source, n_target = len(source), len(target)
    if min(n_source, n_target) < 2 * FOLDS:
        return DomainClassifier(
            None,
            math.nan,
            n_source,
            n_target,
            f"too few images to train it ({n_source} source, {n_target} target; "
            f"needs {2 * FOLDS} of each)",
        )
    x = np.concatenate([_as_numpy(source), _as_numpy(target)])
    y = np.concatenate([np.zeros(n_source, dtype=int), np.ones(n_target, dtype=int)])
    model = make_pipeline(
        Normalizer(), KNeighborsClassifier(min(NEIGHBOURS, n_target // 2), weights="distance")
    )
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=seed)
    accuracy = float(np.mean(cross_val_score(model, x, y, cv=folds, scoring="balanced_accuracy")))
    model.fit(x, y)
    reason = None
    if accuracy < MIN_ACCURACY:
        reason = (
            f"cross-validated balanced accuracy {accuracy:.3f} < {MIN_ACCURACY}: the features "
            "do not separate source from target"
        )
    return DomainClassifier(model, accuracy, n_source, n_target, reason)


ADAPTATION_DIR = "adaptation"  # source-sample features: <cache>/adaptation/<digest>.pt
# per process: a worker running many cells of one target fits its classifier once
_DOMAIN_DATASETS: dict[str, tuple[Dataset, str]] = {}
_CLASSIFIERS: dict[tuple[str, str, str], DomainClassifier] = {}


def source_domain(
    source: Source, target: Dataset, *, device: torch.device, batch_size: int = 64
) -> tuple[dict[str, Any], Callable[[], torch.Tensor]]:
    """The source side of the classifier: its identity (``n`` images) and a function
    giving those images at the target's format, in the channels it judges samples in.

    Real images of the source's domain when the source names its dataset
    (:attr:`Source.domain_dataset`: a fixed draw of them); otherwise samples of the
    pretrained generator, which a classifier may also tell from real images by their
    look alone (blur, artefacts), so the share then reads lower than the pictures."""
    info = target.info
    channels = ev.evaluated_channels(target)  # grey for a grey target of a colour source
    name = source.domain_dataset
    if name:
        if name not in _DOMAIN_DATASETS:  # its content hash loads every image: once a process
            dataset = registry.datasets().create(PluginSpec(name, {}))
            _DOMAIN_DATASETS[name] = (dataset, dataset.content_hash())
        dataset, content = _DOMAIN_DATASETS[name]
        n = min(SOURCE_SAMPLES, dataset.info.size)
        identity = {"dataset": name, "content": content, "n": n}

        def real_images() -> torch.Tensor:
            images = dataset.images()
            order = torch.randperm(
                len(images), generator=torch.Generator().manual_seed(SOURCE_SEED)
            )
            picked = images[order[:n]]
            return match_format(picked, channels, info.resolution)

        return identity, real_images
    identity = {
        "samples_of": source.name,
        "class": f"{type(source).__module__}.{type(source).__qualname__}",
        "params": source.params,
        "version": source.version,
        "n": SOURCE_SAMPLES,
    }

    def samples() -> torch.Tensor:
        generator = source.load(pretrained=True).generator
        raw = ev.generate_images(
            generator, SOURCE_SAMPLES, seed=SOURCE_SEED, device=device, batch_size=batch_size
        )
        return match_format(raw, channels, info.resolution)

    return identity, samples


def domain_classifier(
    source_identity: dict[str, Any],
    source_images: Callable[[], torch.Tensor],
    target: Dataset,
    extractor: Extractor,
    *,
    device: torch.device,
    cache_dir: Path,
    batch_size: int = 64,
    progress: ev.Progress | None = None,
) -> DomainClassifier:
    """The source-vs-target classifier of a (source side, target, extractor) triple.

    The source side's features are cached on disk by its identity and the whole feature
    identity (:func:`gtbench.measure.feature_identity.feature_identity`: extractor version,
    weights, torch-fidelity, dtype, device type, the target's format) — ``source_images``
    runs only on a miss; the target side is the target's shot pool and validation images,
    at the format the generator is judged in (``target`` is the matched target)."""
    info = target.info
    channels = ev.evaluated_channels(target)  # the samples are judged in these channels
    fields = {
        "format": CACHE_FORMAT,
        "source_samples": SOURCE_SAMPLES,
        "source_seed": SOURCE_SEED,
        "source": source_identity,
        "features": feature_identity(
            extractor, resolution=info.resolution, channels=channels, device=device
        ),
    }
    key = digest(fields)
    path = Path(cache_dir) / ADAPTATION_DIR / f"{key}.pt"
    memo = (key, target.content_hash(), str(path))
    if memo in _CLASSIFIERS:
        return _CLASSIFIERS[memo]
    module = ev.load_feature_extractor(extractor, device)
    common = {"device": device, "batch_size": batch_size, "progress": progress}
    source, _ = ev.cached_features(
        path,
        key,
        int(source_identity["n"]),
        lambda: ev.extract_features(module, source_images(), stage="features-source", **common),
        key=canonical_json(fields),
    )
    indices = target.shot_pool() + (target.validation_indices() or [])
    target_images = match_format(target.images()[indices], channels, info.resolution)
    target_features = ev.extract_features(
        module, target_images, stage="features-target-domain", **common
    )
    classifier = fit_domain_classifier(source, target_features)
    classifier = dataclasses.replace(classifier, source_side=_side(source_identity))
    if len(_CLASSIFIERS) > 8:
        _CLASSIFIERS.clear()
    _CLASSIFIERS[memo] = classifier
    return classifier


def _side(identity: dict[str, Any]) -> str:
    if "dataset" in identity:
        return f"real images of the source's domain (dataset {identity['dataset']})"
    return "samples of the pretrained source generator (the source names no domain dataset)"
