"""Shared test set-up: a hermetic run.

- ``GTBENCH_CACHE`` points at a fresh folder for the whole session, so no test reads or
  writes the user's cache. It is seeded with the downloads (wheels) already fetched into
  the project's ``.gtbench-cache`` (what ``.ci/run`` fills with ``gtbench fetch``) or
  into the user's own cache; nothing else is copied.
- ``GTBENCH_OFFLINE=1``, ``HF_HUB_OFFLINE=1`` and ``PIP_NO_INDEX=1``: the default run
  never touches the network. Tests that must are marked ``@pytest.mark.network`` and run
  only when asked (``pytest -m network``); for them the offline switches are lifted.
- One thread per test process for torch and for numpy's BLAS/OpenMP pools (2-core
  machines; a pool's size can change a float sum's order); rich tables unfolded.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT_CACHE = ROOT / ".gtbench-cache"  # filled by `.ci/run` (see README "Tests")


def _seed_sources() -> list[Path]:
    """Caches whose downloads may seed the isolated one, first found wins per file."""
    user = os.environ.get("GTBENCH_CACHE", "").strip()
    candidates = [Path(user).expanduser()] if user else []
    candidates += [PROJECT_CACHE, Path.home() / ".cache" / "gtbench"]
    return [c / "downloads" for c in candidates if (c / "downloads").is_dir()]


def _isolated_cache() -> Path:
    cache = Path(tempfile.mkdtemp(prefix="gtbench-test-cache-"))
    downloads = cache / "downloads"
    downloads.mkdir()
    for folder in _seed_sources():
        for file in folder.iterdir():
            target = downloads / file.name
            if file.is_file() and not file.name.startswith(".") and not target.exists():
                shutil.copy2(file, target)  # verified by sha256 again when fetched
    return cache


# Set at import time, before any test module (or worker process it spawns) reads them.
TEST_CACHE = _isolated_cache()
os.environ["GTBENCH_CACHE"] = str(TEST_CACHE)
os.environ["GTBENCH_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["PIP_NO_INDEX"] = "1"  # a pip run by a test (the example plugin) stays local
os.environ["COLUMNS"] = "200"  # rich tables unfolded in captured output
for _pool in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_pool] = "1"  # before numpy loads its BLAS; inherited by spawned workers

import torch  # noqa: E402

torch.set_num_threads(1)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(TEST_CACHE, ignore_errors=True)


@pytest.fixture(autouse=True)
def _network_only_when_marked(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """Tests marked ``network`` may download; every other test sees GTBENCH_OFFLINE=1."""
    if request.node.get_closest_marker("network") is not None:
        monkeypatch.delenv("GTBENCH_OFFLINE", raising=False)
        monkeypatch.delenv("PIP_NO_INDEX", raising=False)
    yield


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="write tests/golden/numbers.json from this run instead of comparing with it "
        "(in the commit that bumps the version of whatever moved the numbers)",
    )
