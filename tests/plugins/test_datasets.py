"""The built-in target datasets: shapes, deterministic splits, disjoint evaluation sets,
the Animal-Shape labels, and the folder dataset's file handling.

The Animal-Shape tests fetch the ``animal-mnist`` wheel from PyPI into the gtbench cache
on first run (2.6 MB) and reuse it afterwards."""

from __future__ import annotations

import io
import pickle
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gtbench.api import Dataset, DatasetInfo, FewShotSplit, image_sha256s
from gtbench.errors import GtbenchError, PluginError
from gtbench.plugin import registry
from gtbench_plugins.datasets import animals
from gtbench_plugins.datasets.animals import CLASS_NAMES, load_animal_shapes
from gtbench_plugins.datasets.folder import FolderDataset

BUILTIN = {
    # spec: (size, resolution, channels, pool, validation, evaluation)
    "animals-cat": (1000, 32, 1, 100, 200, 697),  # 3 evaluation cats copy pool cats: left out
    "animals-others": (9000, 32, 1, 1000, 0, 7939),  # 61 copies of pool silhouettes left out
    "lfw-faces": (100, 64, 1, 30, 0, 70),
    "digits": (1797, 32, 1, 100, 300, 1397),
}


def _create(spec: str) -> Dataset:
    return registry.datasets().create(spec)


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_builtin_dataset_shapes(name: str) -> None:
    size, res, channels, pool, validation, n_eval = BUILTIN[name]
    dataset = _create(name)
    info = dataset.info
    assert (info.size, info.resolution, info.channels, info.shot_pool) == (
        size,
        res,
        channels,
        pool,
    )
    assert info.validation == validation
    images = dataset.images()
    assert images.dtype == torch.uint8
    assert tuple(images.shape) == (size, channels, res, res)
    assert dataset.images() is images  # cached in memory
    assert images.float().std() > 10  # real content, not a blank
    assert tuple(dataset.evaluation_images().shape) == (n_eval, channels, res, res)


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_splits_are_deterministic_and_disjoint_from_evaluation(name: str) -> None:
    """Disjoint by content, not only by index: no evaluation image equals, byte for byte,
    any shot-pool (or validation) image, so no shot of any seed is ever evaluated."""
    dataset = _create(name)
    size, _, _, pool_size, _, _ = BUILTIN[name]
    pool = set(dataset.shot_pool())
    assert len(pool) == pool_size
    held = set(dataset.validation_indices() or [])
    images = dataset.images()
    hashes = image_sha256s(images)
    pooled = {hashes[i] for i in pool | held}
    evaluation = [i for i in range(size) if i not in pool | held and hashes[i] not in pooled]
    assert torch.equal(dataset.evaluation_images(), images[evaluation])
    assert not pooled & set(image_sha256s(dataset.evaluation_images()))
    fresh = _create(name)
    for shots in (1, 5, 10, pool_size):
        draws = {seed: dataset.split(shots, seed).train for seed in range(5)}
        for seed, train in draws.items():
            assert len(train) == len(set(train)) == shots
            assert set(train) <= pool  # so never in the evaluation set
            assert fresh.split(shots, seed).train == train
        if shots < pool_size:
            assert len(set(draws.values())) > 1  # seeds give different shots
    assert dataset.shot_eval_overlap(dataset.split(min(10, pool_size), 0)) == 0
    with pytest.raises(ValueError, match="cannot draw"):
        dataset.split(pool_size + 1, 0)


def test_copies_of_pool_images_leave_the_evaluation_set() -> None:
    """The base class compares content: an image outside the pool that equals a pool image
    is not evaluated; ``shot_eval_overlap`` counts shots equal to evaluation images."""
    base = torch.arange(12, dtype=torch.uint8).view(12, 1, 1, 1).expand(12, 1, 2, 2)

    class Copies(Dataset):
        name = "copies"

        def __init__(self, images: torch.Tensor) -> None:
            super().__init__()
            self._images = images.contiguous()

        @property
        def info(self) -> DatasetInfo:
            return DatasetInfo(2, 1, len(self._images), 4)

        def images(self) -> torch.Tensor:
            return self._images

    plain = Copies(base)
    pool = plain.shot_pool()
    outside = [i for i in range(12) if i not in pool]
    copied = base.clone()
    copied[outside[0]] = base[pool[0]]  # an evaluation candidate equal to a pool image
    dataset = Copies(copied)
    assert len(plain.evaluation_images()) == 8 and len(dataset.evaluation_images()) == 7
    assert not any(torch.equal(image, base[pool[0]]) for image in dataset.evaluation_images())

    class OwnEvaluation(Copies):
        def evaluation_images(self) -> torch.Tensor:
            return self._images  # includes the pool: what a careless eval folder does

    leaky = OwnEvaluation(base)
    assert leaky.shot_eval_overlap(leaky.split(3, 0)) == 3
    assert leaky.shot_eval_overlap(FewShotSplit(train=())) == 0
    assert not leaky.allows_overlap()


def test_resolution_and_channels_parameters() -> None:
    grey = _create("lfw-faces:res=32").images()
    colour = _create("lfw-faces:res=32,channels=3").images()
    assert grey.shape == (100, 1, 32, 32) and colour.shape == (100, 3, 32, 32)
    assert torch.equal(colour, grey.repeat(1, 3, 1, 1))
    assert _create("digits:res=16,channels=3").images().shape == (1797, 3, 16, 16)
    spec = "animals-cat:res=64,pool=10,validation=0"
    assert _create(spec).evaluation_images().shape == (990, 1, 64, 64)


def test_animal_shapes_arrays_and_label_order() -> None:
    images, labels = load_animal_shapes()
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and np.bincount(labels).tolist() == [1000] * 10
    assert not images.flags.writeable
    assert CLASS_NAMES[2] == "cat" and len(CLASS_NAMES) == 10
    # Silhouette shapes confirm the names (checked by eye on rendered samples too):
    # giraffes are by far the tallest, bears/cows/elephants wider than tall.
    mask = images > 127
    height = mask.any(axis=2).sum(axis=1)
    width = np.maximum(mask.any(axis=1).sum(axis=1), 1)
    aspect = [float(np.median(height[labels == c] / width[labels == c])) for c in range(10)]
    assert int(np.argmax(aspect)) == CLASS_NAMES.index("giraffe") and max(aspect) > 1.8
    for name in ("bear", "cow", "elephant"):
        assert aspect[CLASS_NAMES.index(name)] < 0.85
    assert aspect[CLASS_NAMES.index("cat")] > 1.0


def test_cat_held_out_of_others() -> None:
    images, labels = load_animal_shapes()
    cats = _create("animals-cat:res=28").images()
    assert torch.equal(cats[:, 0], torch.from_numpy(images[labels == 2].copy()))
    others = _create("animals-others:res=28").images()
    assert others.shape == (9000, 1, 28, 28)
    cat_bytes = {bytes(img) for img in cats[:, 0].numpy()}
    assert not any(bytes(img) in cat_bytes for img in others[:, 0].numpy())


def test_animals_others_classes_parameter() -> None:
    two = _create("animals-others:classes=dog+bear,pool=100")
    assert two.info.size == 2000 and two.images().shape == (2000, 1, 32, 32)
    with pytest.raises(PluginError, match="held-out"):
        _create("animals-others:classes=cat")
    with pytest.raises(PluginError, match="unknown class 'unicorn'"):
        _create("animals-others:classes=unicorn")


def test_restricted_unpickler_refuses_code() -> None:
    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            import os

            return (os.system, ("echo pwned",))

    payload = pickle.dumps(Evil())
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        animals._NumpyOnlyUnpickler(io.BytesIO(payload)).load()
    array = np.arange(6, dtype=np.int64).reshape(2, 3)
    loaded = animals._NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(array))).load()
    assert np.array_equal(loaded, array)


def test_assets_are_declared() -> None:
    for name in ("animals-cat", "animals-others"):
        declared = registry.datasets().get(name).assets
        assert {a.sha256 for a in declared} == {
            "aeebf3d9de4552d6fd2d5701424e1a5b9020f8e5115d68df9db252f2f53ce2ce"
        }
        assert all(a.pypi == "animal-mnist==0.4" and a.member for a in declared)
    for name in ("lfw-faces", "digits", "folder"):
        assert registry.datasets().get(name).assets == ()


# --------------------------------------------------------------------------- folder


def _gradient(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    array = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    return Image.fromarray(array)


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "train"
    (folder / "sub").mkdir(parents=True)
    _gradient(40, 30, 0).save(folder / "b.png")
    _gradient(32, 32, 1).save(folder / "a.jpg", quality=95)
    _gradient(20, 50, 2).save(folder / "sub" / "c.webp")
    Image.fromarray(np.full((16, 16), 200, np.uint8)).save(folder / "d_grey.png")
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:8, :, 3] = 255  # top half opaque red, bottom transparent
    Image.fromarray(rgba).save(folder / "e_alpha.png")
    _gradient(24, 24, 3).save(folder / "f.jpeg")
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden.png").write_bytes(b"junk")
    return folder


EXPECTED_ORDER = ["a.jpg", "b.png", "d_grey.png", "e_alpha.png", "f.jpeg", "sub/c.webp"]


def _names(dataset: FolderDataset, root: Path) -> list[str]:
    return [Path(name).relative_to(root).as_posix() for name in dataset.files]


def test_folder_reads_sorted_images(image_folder: Path) -> None:
    dataset = FolderDataset(path=str(image_folder), res=16, pool=3)
    images = dataset.images()
    assert images.shape == (6, 3, 16, 16) and images.dtype == torch.uint8
    assert _names(dataset, image_folder) == EXPECTED_ORDER
    grey = images[EXPECTED_ORDER.index("d_grey.png")]
    assert int(grey.min()) == int(grey.max()) == 200
    alpha = images[EXPECTED_ORDER.index("e_alpha.png")]
    assert alpha[0, :4].float().mean() > 250 and alpha[:, -4:].float().max() < 5  # on black
    assert dataset.info.shot_pool == 3 and dataset.evaluation_images().shape[0] == 3
    one = FolderDataset(path=str(image_folder), res=16, channels=1, pool=3).images()
    assert one.shape == (6, 1, 16, 16)


def test_folder_registered_with_spec(image_folder: Path) -> None:
    dataset = _create(f'folder:path="{image_folder}",res=8,resize=lanczos,crop=none')
    assert dataset.images().shape == (6, 3, 8, 8)
    assert dataset.info.shot_pool == 3  # default: half the images


def test_folder_crop_and_resize_policies(image_folder: Path) -> None:
    def load(**kw: object) -> torch.Tensor:
        return FolderDataset(path=str(image_folder), res=16, **kw).images()

    centre, stretch = load(), load(crop="none")
    bicubic, lanczos = load(resize="bicubic"), load(resize="LANCZOS")
    assert not torch.equal(centre, stretch) and not torch.equal(bicubic, lanczos)
    with pytest.raises(ValueError, match="resize must be one of"):
        FolderDataset(path=str(image_folder), resize="nearest")
    with pytest.raises(ValueError, match="crop must be one of"):
        FolderDataset(path=str(image_folder), crop="random")
    with pytest.raises(ValueError, match="does not exist"):
        FolderDataset(path=str(image_folder / "missing"))
    with pytest.raises(ValueError, match="needs path"):
        FolderDataset()


def test_folder_splits_deterministic_and_disjoint(image_folder: Path) -> None:
    dataset = FolderDataset(path=str(image_folder), res=8, pool=4)
    pool = set(dataset.shot_pool())
    for seed in range(4):
        train = dataset.split(2, seed).train
        assert set(train) <= pool
        assert FolderDataset(path=str(image_folder), res=8, pool=4).split(2, seed).train == train
    assert dataset.evaluation_images().shape[0] == 2
    with pytest.raises(GtbenchError, match="leaves no evaluation image"):
        _ = FolderDataset(path=str(image_folder), res=8, pool=6).info


def test_folder_zip_matches_folder(image_folder: Path, tmp_path: Path) -> None:
    archive = tmp_path / "train.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for file in sorted(image_folder.rglob("*")):
            if file.is_file():
                bundle.write(file, f"train/{file.relative_to(image_folder).as_posix()}")
        bundle.writestr("__MACOSX/train/._a.jpg", b"resource fork")
    from_zip = FolderDataset(path=str(archive), res=16, pool=3)
    from_folder = FolderDataset(path=str(image_folder), res=16, pool=3)
    assert torch.equal(from_zip.images(), from_folder.images())
    assert from_zip.files[0] == f"{archive}:train/a.jpg"


@pytest.fixture
def folder_with_corrupt(image_folder: Path) -> Path:
    data = io.BytesIO()
    _gradient(32, 32, 9).save(data, format="JPEG")
    (image_folder / "broken.jpg").write_bytes(data.getvalue()[:200])  # truncated
    return image_folder


def test_folder_corrupt_image_fails_naming_the_file(folder_with_corrupt: Path) -> None:
    dataset = FolderDataset(path=str(folder_with_corrupt), res=8)
    with pytest.raises(GtbenchError) as caught:
        dataset.images()
    message = str(caught.value)
    assert str(folder_with_corrupt / "broken.jpg") in message
    assert "on_corrupt=skip" in message and "\n" not in message


def test_folder_corrupt_image_skipped_with_warning(folder_with_corrupt: Path) -> None:
    dataset = FolderDataset(path=str(folder_with_corrupt), res=8, on_corrupt="skip")
    with pytest.warns(UserWarning, match="broken.jpg"):
        images = dataset.images()
    assert images.shape[0] == 6 and dataset.info.size == 6
    assert "broken.jpg" not in " ".join(dataset.files)


def test_folder_eval_path(image_folder: Path, tmp_path: Path) -> None:
    evaluation = tmp_path / "eval"
    evaluation.mkdir()
    for seed in range(3):
        _gradient(30, 30, 100 + seed).save(evaluation / f"{seed}.png")
    dataset = FolderDataset(path=str(image_folder), eval_path=str(evaluation), res=16)
    assert dataset.info.shot_pool == dataset.info.size == 6  # every training image
    assert sorted(dataset.shot_pool()) == list(range(6))
    assert dataset.split(6, 0).train == tuple(range(6))
    assert dataset.evaluation_images().shape == (3, 3, 16, 16)
    assert len(dataset.eval_files) == 3
    plain = FolderDataset(path=str(image_folder), res=16)
    assert dataset.content_hash() != plain.content_hash()
    capped = FolderDataset(path=str(image_folder), eval_path=str(evaluation), res=16, pool=2)
    assert capped.info.shot_pool == 2


def test_folder_empty_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(GtbenchError, match="no readable"):
            FolderDataset(path=str(tmp_path / "empty")).images()


def _folder_cell(tmp_path: Path, dataset: dict) -> dict:
    """Run one tiny cell (debug source and extractor) on a folder target; its record."""
    from gtbench.launch.runner import run_cell
    from gtbench.plan.cells import plan_suite
    from gtbench.plan.suite import load_suite
    from gtbench.results.records import load_record

    suite = load_suite("debug")
    suite.datasets, suite.methods, suite.shots = [dataset], ["finetune"], [6]
    suite.train.update(iters=1, batch_size=2)
    suite.eval.update(n_samples=12, kid_subset_size=3)
    outcome = run_cell(plan_suite(suite).cells[0], tmp_path / "results")
    return load_record(tmp_path / "results", outcome.run_id)


def test_folder_eval_path_overlap_is_an_error_unless_allowed(image_folder, tmp_path):
    """A shot that is also an evaluation image (same file in both folders) stops the run
    with one line naming the dataset and the count; ``allow_overlap=true`` runs it and the
    record keeps the count. Compared at the resolution the images are judged at."""
    evaluation = tmp_path / "eval"
    evaluation.mkdir()
    (evaluation / "copy.png").write_bytes((image_folder / "b.png").read_bytes())
    for seed in range(3):
        _gradient(30, 30, 100 + seed).save(evaluation / f"{seed}.png")
    spec = {"name": "folder", "path": str(image_folder), "eval_path": str(evaluation), "res": 16}
    record = _folder_cell(tmp_path / "strict", spec)
    assert record["status"] == "failed" and record["shot_eval_overlap"] == 1
    assert record["error"] == (
        "GtbenchError: dataset 'folder': 1 of the 6 shots are also evaluation images (same "
        "content); remove them or pass allow_overlap=true"
    )
    assert record["timings"].get("train_s") is None  # refused before any training
    allowed = _folder_cell(tmp_path / "allowed", {**spec, "allow_overlap": True})
    assert allowed["status"] == "ok" and allowed["shot_eval_overlap"] == 1
    (evaluation / "copy.png").unlink()
    clean = _folder_cell(tmp_path / "clean", spec)
    assert clean["status"] == "ok" and clean["shot_eval_overlap"] == 0
