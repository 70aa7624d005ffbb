"""The committed recipe that produces the ``shapes-cnn`` extractor's weights.

Usage::

    python -m gtbench_plugins.extractors.train_shapes_cnn --out weights/shapes-cnn.safetensors

Writes the safetensors file and a JSON sidecar next to it (``.json``: data hashes, seed,
epochs, held-out accuracy, gtbench and torch versions, wall time). Every random draw comes
from seeded generators and training runs on 2 CPU threads with deterministic algorithms,
so the same machine and torch build reproduce the file bit for bit.

Training data (all offline; 34 classes, images prepared at 32×32 with PIL bicubic):

- Animal-Shape silhouettes, the nine **non-cat** classes (cats are the default few-shot
  target and stay unseen, see :mod:`.shapes_cnn`);
- scikit-learn's handwritten digits, 10 classes;
- scikit-image's LFW subset: faces vs non-faces, 2 classes;
- 13 scikit-image sample photos (not the cat photo), 240 random crops each, one class
  per photo: natural textures and colour, which silhouettes and digits lack.

No evaluation image of a built-in target is ever trained on: the recipe builds every
target in :data:`TARGETS` through its dataset plugin at 32×32 RGB and drops every training
image whose content hash (sha256 of its uint8 C×H×W bytes) equals that of a target image
outside the target's shot pool — its evaluation and validation images. Of the digits and
the LFW faces only the shot pools remain; their other images become the held-out accuracy
set of those classes. The
other sources keep a seeded 10 % (LFW non-faces: 20 %) split out of training for the
held-out accuracy. The hashes of every training image are written beside the weights
(``shapes-cnn-train-images.txt``), so a test can check the disjointness.

Augmentation (random affine, flips except for digits, contrast jitter, slight noise)
makes the features robust to small shifts; a second head must recognise which
degradation (none, Gaussian noise σ ∈ {8, 15, 30}/255·2, blur σ ∈ {0.6, 1.2, 2} px) was
applied, so the features also keep track of image quality.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gtbench.api import image_sha256s
from gtbench_plugins.datasets._images import resize_planes
from gtbench_plugins.extractors.shapes_cnn import INPUT_SIZE, ShapesCNN

SEED = 20240607
EPOCHS = 10
BATCH = 128
STEPS_PER_EPOCH = 100
LR = 3e-3
WEIGHT_DECAY = 5e-4
# Random held-out fraction of the images that remain once the targets' evaluation images
# are removed (digits: their evaluation split is the held-out set already).
HOLDOUT = {"animals": 0.1, "digits": 0.0, "lfw": 0.2, "photos": 0.1}
DOMAIN_SHARE = {"animals": 0.45, "digits": 0.1, "lfw": 0.15, "photos": 0.3}  # of each batch
# Built-in few-shot targets (dataset plugin specs at the extractor's input format) whose
# evaluation images must never be trained on.
TARGETS = ("animals-cat", "digits", "lfw-faces")
TRAIN_LIST_SUFFIX = "-train-images.txt"
PHOTOS = (
    "astronaut",
    "coffee",
    "rocket",
    "camera",
    "coins",
    "moon",
    "text",
    "hubble_deep_field",
    "immunohistochemistry",
    "grass",
    "gravel",
    "brick",
    "clock",
)
CROPS_PER_PHOTO = 240
NOISE_SIGMAS = (0.06, 0.12, 0.24)  # on the [-1, 1] scale: about 8, 15 and 30 grey levels
BLUR_SIGMAS = (0.6, 1.2, 2.0)  # pixels at 32×32
CORRUPTIONS = (
    "clean",
    *(f"noise{s}" for s in NOISE_SIGMAS),
    *(f"blur{s}" for s in BLUR_SIGMAS),
)
P_CLEAN = 0.5


@dataclass
class Data:
    """32×32 uint8 RGB images with class and domain labels, split into train and held out."""

    images: torch.Tensor  # N×3×32×32 uint8
    labels: torch.Tensor  # N int64
    domains: torch.Tensor  # N int64, index into DOMAIN_SHARE
    holdout: torch.Tensor  # N bool
    classes: list[str]
    hashes: dict[str, str]
    excluded: dict[str, int]  # per source: images dropped as a target's evaluation image


def _sha(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _grey(planes: np.ndarray) -> np.ndarray:
    """N×H×W (0-255) → N×3×32×32 uint8 by PIL bicubic, grey repeated."""
    return np.repeat(resize_planes(planes, INPUT_SIZE)[:, None], 3, axis=1)


def _photo_crops(image: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """Random square crops (side 12-50 % of the short edge) resized to 32×32, RGB uint8."""
    from PIL import Image

    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    image = image[..., :3]
    height, width = image.shape[:2]
    short = min(height, width)
    picture = Image.fromarray(np.ascontiguousarray(image))
    crops = []
    for _ in range(CROPS_PER_PHOTO):
        side = int(rng.randint(max(16, short // 8), short // 2 + 1))
        top, left = int(rng.randint(0, height - side + 1)), int(rng.randint(0, width - side + 1))
        box = (left, top, left + side, top + side)
        crop = picture.resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BICUBIC, box=box)
        crops.append(np.asarray(crop).transpose(2, 0, 1))
    return np.stack(crops)


def _split(n: int, fraction: float, rng: np.random.RandomState) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[rng.permutation(n)[: int(round(n * fraction))]] = True
    return mask


def target_heldout_hashes() -> dict[str, set[str]]:
    """Per built-in target: content hashes of every image outside its shot pool (its
    evaluation and validation images) at the extractor's input format (32×32, grey repeated
    to 3 channels), built by the dataset plugins themselves."""
    from gtbench_plugins.datasets.animals import AnimalsCat
    from gtbench_plugins.datasets.digits import Digits
    from gtbench_plugins.datasets.lfw import LFWFaces

    plugins = {"animals-cat": AnimalsCat, "digits": Digits, "lfw-faces": LFWFaces}
    hashes = {}
    for name in TARGETS:
        dataset = plugins[name](res=INPUT_SIZE, channels=3)
        pool = set(dataset.shot_pool())
        images = dataset.images()
        held = [i for i in range(len(images)) if i not in pool]
        hashes[name] = set(image_sha256s(images[held]))
    return hashes


def build_data(seed: int = SEED) -> Data:
    """Assemble the training set deterministically from the offline sources."""
    import skimage.data
    from sklearn.datasets import load_digits

    from gtbench_plugins.datasets.animals import CAT, CLASS_NAMES, load_animal_shapes

    rng = np.random.RandomState(seed)
    parts: list[tuple[str, np.ndarray, np.ndarray, list[str]]] = []
    hashes: dict[str, str] = {}

    images, labels = load_animal_shapes()
    keep = labels != CAT
    names = [name for i, name in enumerate(CLASS_NAMES) if i != CAT]
    remap = {old: new for new, old in enumerate(i for i in range(10) if i != CAT)}
    hashes["animal-shapes-images"] = _sha(images)
    hashes["animal-shapes-labels"] = _sha(labels)
    animal_labels = np.array([remap[int(label)] for label in labels[keep]])
    parts.append(("animals", _grey(images[keep]), animal_labels, names))

    digits = load_digits()
    hashes["sklearn-digits"] = _sha(digits.images.astype(np.float64))
    planes = digits.images.astype(np.float64) * (255.0 / 16.0)
    parts.append(
        ("digits", _grey(planes), digits.target.astype(np.int64), [f"digit{d}" for d in range(10)])
    )

    lfw = np.asarray(skimage.data.lfw_subset(), dtype=np.float64)
    hashes["skimage-lfw-subset"] = _sha(lfw)
    lfw_labels = np.array([0] * 100 + [1] * (len(lfw) - 100))
    parts.append(("lfw", _grey(lfw * 255.0), lfw_labels, ["lfw-face", "lfw-nonface"]))

    crops, crop_labels = [], []
    for index, name in enumerate(PHOTOS):
        photo = np.asarray(getattr(skimage.data, name)())
        hashes[f"skimage-{name}"] = _sha(photo)
        crops.append(_photo_crops(photo, rng))
        crop_labels += [index] * CROPS_PER_PHOTO
    parts.append(
        ("photos", np.concatenate(crops), np.array(crop_labels), [f"photo-{p}" for p in PHOTOS])
    )

    forbidden = set().union(*target_heldout_hashes().values())
    all_images, all_labels, all_domains, all_holdout, classes = [], [], [], [], []
    excluded: dict[str, int] = {}
    for domain_index, (domain, part_images, part_labels, part_names) in enumerate(parts):
        hashes_of_part = image_sha256s(torch.from_numpy(np.ascontiguousarray(part_images)))
        banned = np.array([h in forbidden for h in hashes_of_part])
        holdout = banned.copy()
        holdout[~banned] = _split(int((~banned).sum()), HOLDOUT[domain], rng)
        excluded[domain] = int(banned.sum())
        all_images.append(part_images)
        all_labels.append(part_labels + len(classes))
        all_domains.append(np.full(len(part_labels), domain_index))
        all_holdout.append(holdout)
        classes += part_names
    data = Data(
        images=torch.from_numpy(np.concatenate(all_images)).contiguous(),
        labels=torch.from_numpy(np.concatenate(all_labels)).long(),
        domains=torch.from_numpy(np.concatenate(all_domains)).long(),
        holdout=torch.from_numpy(np.concatenate(all_holdout)),
        classes=classes,
        hashes=hashes,
        excluded=excluded,
    )
    hashes["training-set"] = _sha(data.images.numpy()) + "+" + _sha(data.labels.numpy())[:16]
    return data


# --------------------------------------------------------------------------- augmentation


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = (kernel / kernel.sum()).to(x.dtype)
    c = x.shape[1]
    h = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    h = F.conv2d(h, kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(h, kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def corrupt(x: torch.Tensor, levels: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Apply degradation ``levels[i]`` (index into CORRUPTIONS) to image ``i`` of ``x``."""
    out = x.clone()
    for level, sigma in enumerate(NOISE_SIGMAS, start=1):
        rows = levels == level
        if rows.any():
            noise = torch.randn(out[rows].shape, generator=rng)
            out[rows] = out[rows] + sigma * noise
    for level, sigma in enumerate(BLUR_SIGMAS, start=1 + len(NOISE_SIGMAS)):
        rows = levels == level
        if rows.any():
            out[rows] = _gaussian_blur(out[rows], sigma)
    return out


def augment(
    images: torch.Tensor, domains: torch.Tensor, rng: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random affine + flip + contrast + slight noise, then a degradation; returns the
    images (float in [-1, 1], quantised to 8 bits like real inputs) and degradation labels."""
    n = len(images)
    x = images.float() / 127.5 - 1.0
    u = lambda *shape: torch.rand(shape, generator=rng)  # noqa: E731
    angle = (u(n) - 0.5) * math.radians(20)
    scale = 0.87 + 0.26 * u(n)
    flip = torch.where((u(n) < 0.5) & (domains != 1), -1.0, 1.0)  # domain 1: digits
    shift = (u(n, 2) - 0.5) * 0.25
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [
            torch.stack([cos * flip, -sin, shift[:, 0]], 1),
            torch.stack([sin * flip, cos, shift[:, 1]], 1),
        ],
        1,
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    grey = (u(n) < 0.3) & (domains == 3)  # photos sometimes in grey, like the grey targets
    x = torch.where(grey.view(-1, 1, 1, 1), x.mean(1, keepdim=True).expand_as(x), x)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * (0.85 + 0.3 * u(n, 1, 1, 1)) + mean + (u(n, 1, 1, 1) - 0.5) * 0.16
    x = x + 0.015 * u(n, 1, 1, 1) * torch.randn(x.shape, generator=rng)
    clean = u(n) < P_CLEAN
    levels = torch.where(clean, 0, 1 + (u(n) * (len(CORRUPTIONS) - 1)).long())
    x = corrupt(x.clamp(-1, 1), levels, rng)
    x = torch.round((x.clamp(-1, 1) + 1.0) * 127.5) / 127.5 - 1.0
    return x, levels


# --------------------------------------------------------------------------- training


def write_training_list(data: Data, path: Path) -> str:
    """One line per training image: its source and content hash; returns the file's sha256."""
    domains = list(DOMAIN_SHARE)
    lines = [
        "# shapes-cnn training images: source<TAB>sha256 of the uint8 3×32×32 bytes",
        "# written by python -m gtbench_plugins.extractors.train_shapes_cnn",
    ]
    rows = (~data.holdout).nonzero().flatten()
    for row, digest in zip(rows.tolist(), image_sha256s(data.images[rows]), strict=True):
        lines.append(f"{domains[int(data.domains[row])]}\t{digest}")
    path.write_text("\n".join(lines) + "\n")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _sampling_weights(data: Data, train: torch.Tensor) -> torch.Tensor:
    """Per-image weights so each batch mixes the domains by DOMAIN_SHARE."""
    weights = torch.zeros(len(data.labels), dtype=torch.float64)
    for index, share in enumerate(DOMAIN_SHARE.values()):
        rows = train & (data.domains == index)
        weights[rows] = share / rows.sum()
    return weights


@torch.no_grad()
def evaluate(network: ShapesCNN, data: Data, rng: torch.Generator) -> dict[str, float]:
    """Held-out class accuracy (clean images) per domain and degradation accuracy."""
    network.eval()
    rows = data.holdout.nonzero().flatten()
    x = data.images[rows].float() / 127.5 - 1.0
    logits, _ = network(x)
    correct = logits.argmax(1) == data.labels[rows]
    result = {"heldout_accuracy": float(correct.float().mean())}
    for index, domain in enumerate(DOMAIN_SHARE):
        mine = data.domains[rows] == index
        result[f"heldout_accuracy_{domain}"] = float(correct[mine].float().mean())
    levels = torch.arange(len(rows)) % len(CORRUPTIONS)
    degraded = corrupt(x, levels, rng)
    degraded = torch.round((degraded.clamp(-1, 1) + 1.0) * 127.5) / 127.5 - 1.0
    _, corruption_logits = network(degraded)
    result["heldout_degradation_accuracy"] = float(
        (corruption_logits.argmax(1) == levels).float().mean()
    )
    return result


def train(
    out: Path,
    *,
    seed: int = SEED,
    epochs: int = EPOCHS,
    max_steps: int | None = None,
    threads: int = 2,
    log: bool = True,
) -> dict[str, Any]:
    """Train, save ``out`` (safetensors) and ``out.json``; return the JSON record."""
    from importlib.metadata import version as installed_version

    from safetensors.torch import save_file

    started = time.perf_counter()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        torch.manual_seed(seed)
        data = build_data(seed)
        train_rows = ~data.holdout
        network = ShapesCNN(len(data.classes), len(CORRUPTIONS))
        network = network.to(memory_format=torch.channels_last)  # ~1.5x faster on CPU
        total = epochs * STEPS_PER_EPOCH if max_steps is None else max_steps
        optimiser = torch.optim.AdamW(network.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimiser, max_lr=LR, total_steps=total, pct_start=0.15
        )
        rng = torch.Generator().manual_seed(seed)
        weights = _sampling_weights(data, train_rows)
        network.train()
        for step in range(total):
            rows = torch.multinomial(weights, BATCH, replacement=True, generator=rng)
            x, levels = augment(data.images[rows], data.domains[rows], rng)
            logits, corruption_logits = network(x.contiguous(memory_format=torch.channels_last))
            loss = F.cross_entropy(logits, data.labels[rows], label_smoothing=0.1)
            loss = loss + 0.5 * F.cross_entropy(corruption_logits, levels)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            if log and (step + 1) % STEPS_PER_EPOCH == 0:
                elapsed = time.perf_counter() - started
                print(f"step {step + 1}/{total} loss {loss.item():.3f} {elapsed:.0f}s", flush=True)
        metrics = evaluate(network, data, torch.Generator().manual_seed(seed + 1))
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous() for k, v in network.state_dict().items()}
        save_file(state, str(out), metadata={"classes": json.dumps(data.classes)})
        out.chmod(0o644)  # safetensors writes 0600; the file is shipped as package data
        sha = hashlib.sha256(out.read_bytes()).hexdigest()
        train_list = out.with_name(out.stem + TRAIN_LIST_SUFFIX)
        train_list_sha = write_training_list(data, train_list)
        record = {
            "file": out.name,
            "sha256": sha,
            "bytes": out.stat().st_size,
            "recipe": "python -m gtbench_plugins.extractors.train_shapes_cnn --out PATH",
            "seed": seed,
            "epochs": epochs,
            "steps": total,
            "batch_size": BATCH,
            "lr": LR,
            "classes": data.classes,
            "degradations": list(CORRUPTIONS),
            "held_out_of_training": "every image outside the shot pool (evaluation and "
            f"validation images) of the targets {', '.join(TARGETS)} (by content hash at "
            "3x32x32), the whole animal-shapes class 'cat', the skimage chelsea/cat photo",
            "excluded_target_images": data.excluded,
            "train_images_list": train_list.name,
            "train_images_list_sha256": train_list_sha,
            "train_images": int(train_rows.sum()),
            "heldout_images": int(data.holdout.sum()),
            **{k: round(v, 4) for k, v in metrics.items()},
            "data_sha256": data.hashes,
            "gtbench_version": installed_version("gtbench"),
            "torch_version": torch.__version__,
            "python": platform.python_version(),
            "threads": threads,
            "wall_time_s": round(time.perf_counter() - started, 1),
        }
        out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
        return record
    finally:
        torch.set_num_threads(previous_threads)
        torch.use_deterministic_algorithms(deterministic)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="safetensors file to write")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    record = train(args.out, seed=args.seed, epochs=args.epochs, threads=args.threads)
    print(json.dumps({k: record[k] for k in ("sha256", "heldout_accuracy", "wall_time_s")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
