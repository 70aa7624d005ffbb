"""The ``shapes-cnn`` offline extractor is a sensible FID metric and its weights are pinned.

Sanity checks in its feature space, through gtbench's own evaluation functions: two
disjoint halves of a target's real images are far closer than another domain is to that
target, and FID grows monotonically with Gaussian noise and with blur. The Animal-Shape
checks fetch the ``animal-mnist`` wheel into the gtbench cache like the dataset tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from torch_fidelity.utils import create_feature_extractor
from torchvision.transforms.functional import gaussian_blur

from gtbench.api import image_sha256s
from gtbench.api import sha256_file as file_sha256
from gtbench.errors import GtbenchError
from gtbench.measure.evaluation import extract_features, fid_from_features, load_feature_extractor
from gtbench.plugin import registry
from gtbench_plugins.extractors import shapes_cnn, shapes_cnn_net

CPU = torch.device("cpu")
NOISE_LEVELS = (0.0, 4.0, 8.0, 16.0, 32.0)  # std in grey levels (0-255)
BLUR_LEVELS = (0.0, 0.6, 1.0, 1.5, 2.5)  # std in pixels at 32×32


def _dataset(spec: str) -> torch.Tensor:
    return registry.datasets().create(spec).images()


@pytest.fixture(scope="module")
def features():
    module = load_feature_extractor(registry.extractors().create("shapes-cnn"), CPU)
    return lambda images: extract_features(module, images, device=CPU, batch_size=250)


@pytest.fixture(scope="module")
def cats() -> torch.Tensor:
    images = _dataset("animals-cat")  # 1000 × 1 × 32 × 32, never seen by the extractor
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    return images[order]


@pytest.fixture(scope="module")
def cat_halves(features, cats) -> tuple[torch.Tensor, torch.Tensor]:
    """Features of two disjoint halves (500 each) of the cat silhouettes."""
    return features(cats[:500]), features(cats[500:])


def _noisy(images: torch.Tensor, std: float, seed: int = 1) -> torch.Tensor:
    rng = torch.Generator().manual_seed(seed)
    noise = torch.randn(images.shape, generator=rng) * std
    return (images.float() + noise).round().clamp(0, 255).to(torch.uint8)


def _blurred(images: torch.Tensor, sigma: float) -> torch.Tensor:
    if sigma == 0:
        return images
    size = 2 * int(3 * sigma + 0.5) + 1
    out = gaussian_blur(images.float(), [size, size], [sigma, sigma])
    return out.round().clamp(0, 255).to(torch.uint8)


def test_weights_are_pinned_and_match_the_recipe_record():
    assert file_sha256(shapes_cnn.WEIGHTS_PATH) == shapes_cnn.WEIGHTS_SHA256
    record = shapes_cnn.training_record()
    assert record["sha256"] == shapes_cnn.WEIGHTS_SHA256
    assert record["bytes"] == shapes_cnn.WEIGHTS_PATH.stat().st_size < 5_000_000
    assert "cat" not in record["classes"] and record["heldout_accuracy"] > 0.9
    registry.extractors().create("shapes-cnn").check_available()


def test_tampered_weights_give_one_clear_line(tmp_path: Path, monkeypatch):
    tampered = tmp_path / "shapes-cnn.safetensors"
    shutil.copyfile(shapes_cnn.WEIGHTS_PATH, tampered)
    data = bytearray(tampered.read_bytes())
    data[-5] ^= 0xFF
    tampered.write_bytes(bytes(data))
    monkeypatch.setattr(shapes_cnn, "WEIGHTS_PATH", tampered)
    extractor = registry.extractors().create("shapes-cnn")
    with pytest.raises(shapes_cnn.WeightsMismatchError) as caught:
        extractor.check_available()
    message = str(caught.value)
    assert isinstance(caught.value, GtbenchError) and "\n" not in message
    assert "sha256" in message and "train_shapes_cnn" in message
    with pytest.raises(shapes_cnn.WeightsMismatchError):
        create_feature_extractor(
            extractor.fidelity_name(),
            ["fc"],
            cuda=False,
            verbose=False,
            **extractor.fidelity_kwargs(),
        )


def test_layers_shapes_and_batch_size_independence(features, cats):
    x = cats[:20]
    assert features(x).shape == (20, 256)
    module = load_feature_extractor(registry.extractors().create("shapes-cnn"), CPU)
    by_three = extract_features(module, x, device=CPU, batch_size=3)
    assert torch.equal(by_three, features(x))  # bitwise: fixed chunks, whatever the batch
    for batch_size in (1, 7, 64, 100):
        more = cats[:130]
        assert torch.equal(
            extract_features(module, more, device=CPU, batch_size=batch_size),
            extract_features(module, more, device=CPU, batch_size=130),
        )
    threads = torch.get_num_threads()
    try:  # nor on the number of CPU threads (a kernel splits its sums by thread)
        torch.set_num_threads(2)
        assert torch.equal(features(x), by_three)
        assert torch.get_num_threads() == 2  # and the caller's setting is restored
    finally:
        torch.set_num_threads(threads)
    # an image's features do not depend on its position in the chunk
    shifted = extract_features(module, torch.cat([cats[20:25], x]), device=CPU, batch_size=64)
    assert torch.equal(shifted[5:], features(x))
    pool = load_feature_extractor(registry.extractors().create("shapes-cnn:layer=pool"), CPU)
    colour_64 = torch.nn.functional.interpolate(x.float().repeat(1, 3, 1, 1), size=64)
    assert extract_features(pool, colour_64.to(torch.uint8), device=CPU).shape == (20, 96)


def test_fid_between_halves_is_far_below_cross_domain(features, cat_halves):
    half_a, half_b = cat_halves
    within = fid_from_features(half_a, half_b)
    dogs = features(_dataset("animals-others:classes=dog,pool=100")[:500])
    digits = features(_dataset("digits")[:500])
    dog_fid, digit_fid = fid_from_features(dogs, half_b), fid_from_features(digits, half_b)
    print(f"cats: halves {within:.2f}, dogs {dog_fid:.2f}, digits {digit_fid:.2f}")
    assert dog_fid > 4 * within and digit_fid > 20 * within

    faces = _dataset("lfw-faces")  # 100 × 3 × 64 × 64
    faces_a, faces_b = features(faces[::2]), features(faces[1::2])
    face_within = fid_from_features(faces_a, faces_b)
    digits_64 = features(_dataset("digits:res=64,channels=3")[:50])
    face_cross = fid_from_features(digits_64, faces_b)
    print(f"lfw-faces: halves {face_within:.2f}, digits {face_cross:.2f}")
    assert face_cross > 4 * face_within


def test_fid_grows_monotonically_with_noise_and_blur(features, cats, cat_halves):
    reference = cat_halves[0]
    real = cats[500:800]
    noise = [fid_from_features(reference, features(_noisy(real, std))) for std in NOISE_LEVELS]
    blur = [fid_from_features(reference, features(_blurred(real, s))) for s in BLUR_LEVELS]
    print("noise", [round(f, 2) for f in noise], "blur", [round(f, 2) for f in blur])
    assert all(b > a for a, b in zip(noise, noise[1:], strict=False)), noise
    assert all(b > a for a, b in zip(blur, blur[1:], strict=False)), blur


SOURCE_WEIGHTS = (
    Path(shapes_cnn.__file__).resolve().parents[1]
    / "sources"
    / "weights"
    / "animals-dcgan32.safetensors"
)


@pytest.mark.skipif(not SOURCE_WEIGHTS.is_file(), reason="animals-dcgan32 weights not committed")
def test_source_samples_are_far_from_cats(features, cat_halves):
    from gtbench.measure.evaluation import generate_images
    from gtbench.plugin.images import match_format as to_target_format

    generator = registry.sources().create("animals-dcgan32").load().generator
    samples = to_target_format(generate_images(generator, 500, seed=0, device=CPU), 1, 32)
    within = fid_from_features(*cat_halves)
    source = fid_from_features(features(samples), cat_halves[1])
    print(f"cats: halves {within:.2f}, animals-dcgan32 samples {source:.2f}")
    assert source > 3 * within


def test_recipe_is_deterministic_and_reproduces_the_committed_data(tmp_path: Path):
    from gtbench_plugins.extractors import train_shapes_cnn

    first = train_shapes_cnn.train(tmp_path / "a.safetensors", max_steps=2, log=False)
    second = train_shapes_cnn.train(tmp_path / "b.safetensors", max_steps=2, log=False)
    assert first["sha256"] == second["sha256"]
    committed = json.loads(shapes_cnn.WEIGHTS_PATH.with_suffix(".json").read_text())
    assert first["data_sha256"] == committed["data_sha256"]
    # today's recipe and dataset plugins pick exactly the committed list of training images
    assert first["train_images_list_sha256"] == committed["train_images_list_sha256"]
    assert first["excluded_target_images"] == committed["excluded_target_images"]


# Built-in datasets that are not few-shot targets: the silhouette source's pretraining
# set (its classes are training classes by design) and user folders (no data here).
NOT_TARGETS = {"animals-others": "pretraining set of animals-dcgan32", "folder": "user data"}


def _builtin_targets() -> list[str]:
    reg = registry.datasets()
    return [
        name
        for name in reg.names()
        if reg.get(name).__module__.startswith("gtbench_plugins.") and name not in NOT_TARGETS
    ]


def test_training_images_are_disjoint_from_every_builtin_targets_evaluation_images():
    """By content hash at the extractor's input format (32×32, grey repeated to RGB): no
    image shapes-cnn trained on is an evaluation (or validation) image of a built-in target."""
    trained = shapes_cnn.training_image_hashes()
    record = shapes_cnn.training_record()
    listing = shapes_cnn.WEIGHTS_PATH.with_name(record["train_images_list"]).read_text()
    rows = [row for row in listing.splitlines() if row and not row.startswith("#")]
    assert len(rows) == record["train_images"] > 10_000  # one row per image (some are copies)
    assert 10_000 < len(trained) <= len(rows)
    targets = _builtin_targets()
    assert {"animals-cat", "digits", "lfw-faces", "debug"} <= set(targets)
    for name in targets:
        dataset = registry.datasets().create(f"{name}:res=32,channels=3")
        held = [dataset.evaluation_images()]
        if dataset.validation_images() is not None:
            held.append(dataset.validation_images())
        hashes = set(image_sha256s(torch.cat(held)))
        assert hashes and not hashes & trained, f"shapes-cnn trained on {name} evaluation images"
    # the check can fail: the digits' shot pool is trained on, and is found
    digits = registry.datasets().create("digits:res=32,channels=3")
    pool = digits.images()[digits.shot_pool()]
    assert set(image_sha256s(pool)) <= trained


def test_gpu_features_are_plain_float32_and_settings_are_restored():
    """On a GPU, cuDNN would run the convolutions in TF32 by default; the extractor turns
    TF32 off (and picks deterministic algorithms) while it runs, then restores the
    caller's settings. The flags are global, so this needs no GPU to check."""
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    before = (cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark, matmul.allow_tf32)
    try:
        cudnn.allow_tf32, cudnn.benchmark, matmul.allow_tf32 = True, True, True
        with shapes_cnn_net._full_float32(torch.device("cuda")):
            assert not cudnn.allow_tf32 and not matmul.allow_tf32
            assert cudnn.deterministic and not cudnn.benchmark
        assert cudnn.allow_tf32 and cudnn.benchmark and matmul.allow_tf32
    finally:
        cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark, matmul.allow_tf32 = before
