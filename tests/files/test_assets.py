"""Asset fetching: sha256 verification, atomic cache, offline reuse, one-line errors."""

from __future__ import annotations

import hashlib
import http.server
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from gtbench.api import Dataset, DatasetInfo
from gtbench.cli.fetch import fetch_command
from gtbench.errors import MissingAssetError
from gtbench.files import assets as assets_module
from gtbench.files.assets import (
    CACHE_ENV,
    OFFLINE_ENV,
    Asset,
    cache_dir,
    cached_path,
    download_path,
    fetch,
    instructions,
    is_cached,
)
from gtbench.plugin import registry

PAYLOAD = b"some weights" * 1000
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()
WRONG_SHA = "0" * 64


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(folder))
    monkeypatch.delenv(OFFLINE_ENV, raising=False)
    return folder


@pytest.fixture
def source_file(tmp_path: Path) -> Path:
    path = tmp_path / "served" / "weights.bin"
    path.parent.mkdir()
    path.write_bytes(PAYLOAD)
    return path


def _no_network(*args: object, **kwargs: object) -> Path:
    raise AssertionError("the network was used although the asset is cached")


def _unreachable(*args: object, **kwargs: object) -> Path:
    raise assets_module._DownloadError("pip download thing failed: network is unreachable")


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob(".*")] if folder.exists() else []


def test_cache_dir_from_env(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cache_dir() == cache
    monkeypatch.delenv(CACHE_ENV)
    assert cache_dir() == Path.home() / ".cache" / "gtbench"


def test_asset_validation() -> None:
    with pytest.raises(ValueError, match="PyPI requirement or a URL"):
        Asset("a", "a.bin", PAYLOAD_SHA)
    with pytest.raises(ValueError, match="sha256"):
        Asset("a", "a.bin", "abc", urls=("file:///x",))
    with pytest.raises(ValueError, match="plain file name"):
        Asset("a", "../a.bin", PAYLOAD_SHA, urls=("file:///x",))
    with pytest.raises(ValueError, match="relative path"):
        Asset("a", "a.whl", PAYLOAD_SHA, pypi="a==1", member="../../etc/passwd")


def test_url_download_is_verified_and_cached(source_file: Path, cache: Path) -> None:
    asset = Asset("weights", "weights.bin", PAYLOAD_SHA, urls=(source_file.as_uri(),))
    assert not is_cached(asset)
    path = fetch(asset)
    assert path == cache / "downloads" / "weights.bin" == download_path(asset)
    assert path.read_bytes() == PAYLOAD
    assert is_cached(asset)
    assert _leftovers(cache) == []


def test_http_download_from_local_server(tmp_path: Path, source_file: Path) -> None:
    directory = str(source_file.parent)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=directory, **kwargs)  # type: ignore[misc]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/weights.bin"
        asset = Asset("weights", "weights.bin", PAYLOAD_SHA, urls=(url,))
        assert fetch(asset).read_bytes() == PAYLOAD
    finally:
        server.shutdown()
        server.server_close()


def test_sha256_mismatch_is_deleted_and_rejected(source_file: Path, cache: Path) -> None:
    asset = Asset("weights", "weights.bin", WRONG_SHA, urls=(source_file.as_uri(),))
    with pytest.raises(MissingAssetError) as caught:
        fetch(asset)
    message = str(caught.value)
    assert "\n" not in message
    assert PAYLOAD_SHA in message and WRONG_SHA in message and "deleted" in message
    assert not download_path(asset).exists()
    assert _leftovers(cache) == []


def test_cached_file_is_reused_offline(source_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asset = Asset("weights", "weights.bin", PAYLOAD_SHA, urls=(source_file.as_uri(),))
    first = fetch(asset)
    source_file.unlink()  # the "server" is gone
    monkeypatch.setattr(assets_module, "_url_download", _no_network)
    monkeypatch.setattr(assets_module, "_pip_download", _no_network)
    assets_module._VERIFIED.clear()  # as in a fresh process: the file is re-hashed
    assert fetch(asset) == first
    monkeypatch.setenv(OFFLINE_ENV, "1")
    assert fetch(asset, download=False).read_bytes() == PAYLOAD


def test_corrupt_cached_file_is_replaced(source_file: Path) -> None:
    asset = Asset("weights", "weights.bin", PAYLOAD_SHA, urls=(source_file.as_uri(),))
    target = download_path(asset)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"truncated")
    assert fetch(asset).read_bytes() == PAYLOAD


def test_missing_without_network_says_how_to_provide(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asset = Asset("face-weights", "thing-1.0-py3-none-any.whl", PAYLOAD_SHA, pypi="thing==1.0")
    monkeypatch.setattr(assets_module, "_pip_download", _unreachable)
    with pytest.raises(MissingAssetError) as caught:
        fetch(asset)
    message = str(caught.value)
    assert "\n" not in message
    assert "network is unreachable" in message
    assert "python -m pip download --no-deps --ignore-requires-python thing==1.0" in message
    assert str(download_path(asset)) in message
    assert PAYLOAD_SHA in message
    assert message.endswith(instructions(asset))


def test_offline_env_never_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    asset = Asset("a", "a.bin", PAYLOAD_SHA, urls=("http://127.0.0.1:9/a.bin",))
    monkeypatch.setattr(assets_module, "_url_download", _no_network)
    monkeypatch.setenv(OFFLINE_ENV, "1")
    with pytest.raises(MissingAssetError, match="no network use allowed.*http://127.0.0.1:9"):
        fetch(asset)


def _wheel(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    return path


@pytest.fixture
def fake_pypi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """A stand-in for `pip download`: copies a locally built wheel; records calls."""
    wheel = _wheel(
        tmp_path / "built.whl", {"pkg/__init__.py": b"", "pkg/data/weights.tar": PAYLOAD}
    )
    calls: list[str] = []

    def download(requirement: str, filename: str, workdir: Path) -> Path:
        calls.append(requirement)
        target = workdir / filename
        target.write_bytes(wheel.read_bytes())
        return target

    monkeypatch.setattr(assets_module, "_pip_download", download)
    yield calls


def _wheel_sha(tmp_path: Path) -> str:
    return hashlib.sha256((tmp_path / "built.whl").read_bytes()).hexdigest()


def test_pypi_member_is_extracted_once(fake_pypi: list[str], tmp_path: Path, cache: Path) -> None:
    sha = _wheel_sha(tmp_path)
    asset = Asset(
        "w", "pkg-1.0-py3-none-any.whl", sha, pypi="pkg==1.0", member="pkg/data/weights.tar"
    )
    path = fetch(asset)
    assert path == cached_path(asset)
    assert path == cache / "extracted" / sha[:16] / "pkg" / "data" / "weights.tar"
    assert path.read_bytes() == PAYLOAD
    assert fetch(asset) == path
    other = Asset("i", "pkg-1.0-py3-none-any.whl", sha, pypi="pkg==1.0", member="pkg/__init__.py")
    assert fetch(other).read_bytes() == b""
    assert fake_pypi == ["pkg==1.0"]  # one download serves both members
    assert _leftovers(cache) == []


def test_missing_member_is_an_error(fake_pypi: list[str], tmp_path: Path) -> None:
    asset = Asset(
        "w", "pkg-1.0-py3-none-any.whl", _wheel_sha(tmp_path), pypi="pkg==1.0", member="pkg/x"
    )
    with pytest.raises(MissingAssetError, match="no member 'pkg/x'"):
        fetch(asset)


def test_pypi_falls_back_to_urls(source_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(assets_module, "_pip_download", _unreachable)
    asset = Asset(
        "weights", "weights.bin", PAYLOAD_SHA, pypi="thing==1", urls=(source_file.as_uri(),)
    )
    assert fetch(asset).read_bytes() == PAYLOAD


# --------------------------------------------------------------------------- gtbench fetch


@pytest.fixture
def plugin_with_asset(source_file: Path) -> Iterator[Asset]:
    asset = Asset("test-weights", "weights.bin", PAYLOAD_SHA, urls=(source_file.as_uri(),))

    class WithAsset(Dataset):
        assets = (asset,)

        @property
        def info(self) -> DatasetInfo:
            return DatasetInfo(8, 1, 2, 1)

        def images(self):  # type: ignore[no-untyped-def]
            raise NotImplementedError

    registry.reset()
    registry.datasets().register("asset-test-plugin", WithAsset)
    yield asset
    registry.reset()


def test_fetch_command(plugin_with_asset: Asset) -> None:
    runner = CliRunner()
    checked = runner.invoke(fetch_command, ["asset-test-plugin", "--check"])
    assert checked.exit_code == 1 and "test-weights (asset-test-plugin): missing" in checked.output
    done = runner.invoke(fetch_command, ["asset-test-plugin"])
    assert done.exit_code == 0, done.output
    assert "test-weights (asset-test-plugin): ok, downloaded" in done.output
    assert str(download_path(plugin_with_asset)) in done.output
    again = runner.invoke(fetch_command, ["asset-test-plugin"])
    assert again.exit_code == 0 and "ok, cached" in again.output
    unknown = runner.invoke(fetch_command, ["asset-test-plugn"])
    assert unknown.exit_code == 2 and "did you mean 'asset-test-plugin'" in unknown.output


def test_fetch_command_reports_failure(
    plugin_with_asset: Asset, source_file: Path, tmp_path: Path
) -> None:
    source_file.unlink()
    result = CliRunner().invoke(
        fetch_command, ["asset-test-plugin", "--cache", str(tmp_path / "elsewhere")]
    )
    assert result.exit_code == 1
    assert "FAILED" in result.output and PAYLOAD_SHA in result.output


@pytest.mark.slow
def test_real_pip_download_of_a_wheel(cache: Path) -> None:
    """The real `pip download --no-deps` path, against PyPI (needs a package registry)."""
    asset = Asset(
        "animal-shapes-labels",
        "animal_mnist-0.4-py3-none-any.whl",
        "aeebf3d9de4552d6fd2d5701424e1a5b9020f8e5115d68df9db252f2f53ce2ce",
        pypi="animal-mnist==0.4",
        member="animal_mnist/data/Animal_MNIST/animal_label_version_3.gz",
    )
    path = fetch(asset)
    assert path.is_file() and path.stat().st_size == 336
    assert sorted(p.name for p in (cache / "downloads").iterdir()) == [asset.filename]


def _run_to_digits(source: str, cache: Path, monkeypatch: pytest.MonkeyPatch) -> tuple:
    """One 2-step cell from ``source`` to digits on the empty offline ``cache``, with the
    process-wide memo of source-domain datasets emptied (an earlier test may have filled
    it from another cache), recording which assets were asked for."""
    from gtbench.measure import adaptation
    from tests.helpers import gtbench

    asked: list[str] = []
    where = assets_module.download_path  # every fetch, however imported, asks it first

    def spy(asset: Asset) -> Path:
        asked.append(asset.name)
        return where(asset)

    monkeypatch.setattr(assets_module, "download_path", spy)
    monkeypatch.setattr(adaptation, "_DOMAIN_DATASETS", {})
    monkeypatch.setattr(adaptation, "_CLASSIFIERS", {})
    monkeypatch.setenv(OFFLINE_ENV, "1")  # a real attempt would fail the run too
    result = gtbench(
        "run", "--sources", source, "--datasets", "digits", "--methods", "finetune",
        "--seeds", "0", "--iters", "2", "--batch-size", "4", "--n-samples", "40",
        "--extractor", "shapes-cnn", "--launcher", "local", "--results", str(cache.parent / "r"),
    )  # fmt: skip
    return result, asked


def test_a_run_outside_the_animal_domain_fetches_no_animal_wheel(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Animal-Shape wheel holds the animal targets and the animal source's domain (the
    adaptation measure's source side): a sweep that touches neither — the debug source to
    digits, on an empty offline cache — plans, trains and evaluates without asking for it."""
    result, asked = _run_to_digits("debug", cache, monkeypatch)
    assert result.exit_code == 0, result.output
    assert not any("animal" in name for name in asked), asked
    assert not (cache / "downloads").exists() or not any((cache / "downloads").iterdir())


def test_the_animal_sources_domain_needs_the_wheel_and_says_so_in_one_line(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From the animal silhouette source even a digits run measures adaptation against the
    source's own domain, the silhouettes: offline without the wheel, the cell fails with
    one line naming the asset and how to fetch it, never a traceback."""
    result, asked = _run_to_digits("animals-dcgan32", cache, monkeypatch)
    assert result.exit_code != 0
    assert "animal-shapes-images" in asked
    failed = [line for line in result.output.splitlines() if "failed" in line and "·" in line]
    assert failed and all("MissingAssetError" in line for line in failed), result.output
    assert "gtbench fetch" in failed[0] and "Traceback" not in result.output
