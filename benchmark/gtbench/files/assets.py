"""Fetching weights and data files into gtbench's cache, verified by sha256.

The machines gtbench runs on often reach only a package registry, or nothing at all
(air-gapped clusters). So an asset is described by *how* it can be obtained (a PyPI
requirement downloaded with ``pip download --no-deps`` and/or plain URLs) and by its
sha256; :func:`fetch` downloads it once into the cache folder, reuses the verified copy
offline afterwards, and, when it can neither find nor download it, raises
:class:`~gtbench.errors.MissingAssetError` with one line saying which command to run on
another machine and where to put the file.

Cache layout (``$GTBENCH_CACHE``, default ``~/.cache/gtbench``)::

    downloads/<filename>                     the verified downloaded file (wheel, ...)
    extracted/<sha256[:16]>/<member path>    a member read out of that zip/wheel

This module knows nothing about particular assets: plugins declare theirs in
``Plugin.assets``. Packages are downloaded, never installed: their dependencies (wandb,
tensorflow...) are neither wanted nor needed.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from gtbench.errors import MissingAssetError

__all__ = [
    "CACHE_ENV",
    "OFFLINE_ENV",
    "Asset",
    "cache_dir",
    "cached_path",
    "download_path",
    "fetch",
    "instructions",
    "is_cached",
    "sha256_file",
]

CACHE_ENV = "GTBENCH_CACHE"
OFFLINE_ENV = "GTBENCH_OFFLINE"  # "1": never try the network, use the cache only
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Asset:
    """A file gtbench needs, how to obtain it, and the sha256 that proves it is the one.

    ``sha256`` is that of the downloaded file (the wheel for a PyPI asset). With
    ``member``, :func:`fetch` returns that member of the zip/wheel, extracted once.
    """

    name: str
    filename: str  # name of the downloaded file, e.g. "animal_mnist-0.4-py3-none-any.whl"
    sha256: str
    pypi: str | None = None  # requirement for `pip download --no-deps`, e.g. "pkg==1.0"
    urls: tuple[str, ...] = ()
    member: str | None = None  # path inside the zip/wheel to extract
    description: str = ""

    def __post_init__(self) -> None:
        if not self.pypi and not self.urls:
            raise ValueError(f"asset {self.name!r} needs a PyPI requirement or a URL")
        if len(self.sha256) != 64 or any(c not in "0123456789abcdef" for c in self.sha256):
            raise ValueError(f"asset {self.name!r}: sha256 must be 64 lowercase hex digits")
        if Path(self.filename).name != self.filename or self.filename in {"", ".", ".."}:
            raise ValueError(f"asset {self.name!r}: filename must be a plain file name")
        if self.member is not None:
            parts = PurePosixPath(self.member).parts
            if not parts or self.member.startswith("/") or ".." in parts:
                raise ValueError(f"asset {self.name!r}: member must be a relative path")


# --------------------------------------------------------------------------- locations


def cache_dir() -> Path:
    """The cache folder: ``$GTBENCH_CACHE`` or ``~/.cache/gtbench``."""
    configured = os.environ.get(CACHE_ENV, "").strip()
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "gtbench"


def download_path(asset: Asset) -> Path:
    """Where the downloaded file lives (also where a user copies it by hand)."""
    return cache_dir() / "downloads" / asset.filename


def cached_path(asset: Asset) -> Path:
    """The path :func:`fetch` returns: the download, or its extracted member."""
    if asset.member is None:
        return download_path(asset)
    return cache_dir() / "extracted" / asset.sha256[:16] / PurePosixPath(asset.member)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """sha256 of a file, remembered per (path, size, mtime) so a large file is read once."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _FILE_HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        _FILE_HASHES[key] = digest.hexdigest()
    return _FILE_HASHES[key]


_FILE_HASHES: dict[tuple[str, int, int], str] = {}


# Verified files in this process: path -> (size, mtime_ns); avoids re-hashing per call.
_VERIFIED: dict[Path, tuple[int, int]] = {}


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def _verified(path: Path, sha256: str) -> bool:
    """True when ``path`` exists and has ``sha256``."""
    if not path.is_file():
        return False
    stamp = _stamp(path)
    if _VERIFIED.get(path) == stamp:
        return True
    if sha256_file(path) != sha256:
        return False
    _VERIFIED[path] = stamp
    return True


def is_cached(asset: Asset) -> bool:
    """Whether the asset's download is in the cache and verified (no network used)."""
    return _verified(download_path(asset), asset.sha256)


# --------------------------------------------------------------------------- messages


def _pip_command(requirement: str, dest: str) -> list[str]:
    return [
        "python",
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--ignore-requires-python",
        requirement,
        "-d",
        dest,
    ]


def instructions(asset: Asset) -> str:
    """One line: how to provide the asset by hand on a machine without network."""
    target = download_path(asset)
    if asset.pypi:
        how = f"run `{shlex.join(_pip_command(asset.pypi, '.'))}` on a machine with internet"
    else:
        how = f"download {asset.urls[0]} on a machine with internet"
    return (
        f"{how}, then copy {asset.filename} to {target} (sha256 {asset.sha256}); "
        f"or run `gtbench fetch` there and copy its cache folder (set {CACHE_ENV})"
    )


# --------------------------------------------------------------------------- downloads


class _DownloadError(Exception):
    """One way of obtaining the asset failed (network, missing file, wrong hash)."""


def _offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip() not in {"", "0"}


def _pip_download(requirement: str, filename: str, workdir: Path) -> Path:
    """Run ``pip download --no-deps`` into ``workdir``; return the downloaded file."""
    command = _pip_command(requirement, str(workdir))
    command[0] = sys.executable
    command += ["--disable-pip-version-check", "--no-input", "--retries", "2", "--timeout", "20"]
    if filename.endswith(".whl"):
        command += ["--only-binary", ":all:"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise _DownloadError(f"pip download {requirement} failed: {error}") from None
    if done.returncode != 0:
        lines = [line.strip() for line in (done.stderr or done.stdout).splitlines()]
        last = next((line for line in reversed(lines) if line), f"exit {done.returncode}")
        raise _DownloadError(f"pip download {requirement} failed: {last}")
    expected = workdir / filename
    if expected.is_file():
        return expected
    files = [path for path in workdir.iterdir() if path.is_file()]
    if len(files) == 1:  # a differently spelt file name; the hash check still decides
        return files[0]
    names = ", ".join(sorted(p.name for p in files)) or "nothing"
    raise _DownloadError(f"pip download {requirement} gave {names}, expected {filename}")


def _url_download(url: str, workdir: Path) -> Path:
    """Stream ``url`` into a file in ``workdir``."""
    target = workdir / "download"
    try:
        with urllib.request.urlopen(url, timeout=30) as response, open(target, "wb") as out:
            shutil.copyfileobj(response, out, _CHUNK)
    except (OSError, ValueError) as error:
        raise _DownloadError(f"download {url} failed: {error}") from None
    return target


def _attempts(asset: Asset) -> list[tuple[str, object]]:
    attempts: list[tuple[str, object]] = []
    if asset.pypi:
        attempts.append(("pypi", asset.pypi))
    attempts += [("url", url) for url in asset.urls]
    return attempts


def _download(asset: Asset) -> Path:
    """Download, verify and atomically place the asset's file; raise on failure."""
    target = download_path(asset)
    target.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for how, what in _attempts(asset):
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".fetch-") as tmp:
            workdir = Path(tmp)
            try:
                if how == "pypi":
                    got = _pip_download(str(what), asset.filename, workdir)
                else:
                    got = _url_download(str(what), workdir)
            except _DownloadError as error:
                errors.append(str(error))
                continue
            digest = sha256_file(got)
            if digest != asset.sha256:
                got.unlink()  # never keep a file that is not the asset
                raise MissingAssetError(
                    f"asset {asset.name!r}: the file obtained by {how} {what} has sha256 "
                    f"{digest}, expected {asset.sha256}; it was deleted (the published file "
                    "changed or the download was tampered with)"
                )
            os.replace(got, target)
            _VERIFIED[target] = _stamp(target)
            return target
    raise _DownloadError("; ".join(errors))


def _extract(asset: Asset, archive: Path) -> Path:
    """Extract ``asset.member`` from the verified ``archive`` (atomically, once)."""
    assert asset.member is not None
    target = cached_path(asset)
    if target.is_file():
        return target  # extracted from a verified archive by an atomic rename
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(archive) as bundle:
            try:
                source = bundle.open(asset.member)
            except KeyError:
                raise MissingAssetError(
                    f"asset {asset.name!r}: {asset.filename} has no member {asset.member!r}"
                ) from None
            handle, tmp = tempfile.mkstemp(dir=target.parent, prefix=".extract-")
            try:
                with source, os.fdopen(handle, "wb") as out:
                    shutil.copyfileobj(source, out, _CHUNK)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
    except zipfile.BadZipFile as error:
        raise MissingAssetError(
            f"asset {asset.name!r}: {archive} is not a zip file ({error})"
        ) from None
    return target


def fetch(asset: Asset, *, download: bool = True) -> Path:
    """The local path of ``asset``: from the verified cache, else downloaded and verified.

    Raises :class:`MissingAssetError` (one line, saying how to provide the file) when the
    file is neither cached nor downloadable, or when a download has the wrong sha256.
    ``download=False`` (or ``GTBENCH_OFFLINE=1``) never touches the network.
    """
    archive = download_path(asset)
    if not _verified(archive, asset.sha256):
        stale = archive.exists()
        reason = "no network use allowed" if (not download or _offline()) else ""
        if not reason:
            try:
                archive = _download(asset)
            except _DownloadError as error:
                reason = str(error)
        if reason:
            found = f"{archive} has the wrong sha256" if stale else "it is not in the cache"
            message = f"asset {asset.name!r} is unavailable ({found}; {reason}): "
            raise MissingAssetError(" ".join((message + instructions(asset)).split()))
    if asset.member is None:
        return archive
    return _extract(asset, archive)
