"""``gtbench fetch [NAME...]``: pre-fetch plugins' assets into the cache.

For air-gapped clusters: run it on a machine with internet (or a package registry), then
copy the cache folder (``$GTBENCH_CACHE``) to the cluster. With no names it fetches the
assets of every installed plugin; a name may be any plugin of any kind.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import click

from gtbench.errors import GtbenchError
from gtbench.files.assets import CACHE_ENV, Asset, cache_dir, fetch, is_cached

__all__ = ["collect_assets", "fetch_command"]


def collect_assets(names: Sequence[str]) -> tuple[dict[Asset, list[str]], list[str]]:
    """Assets of the named plugins (all plugins when empty), each with the plugins that
    declare it, and the errors of plugins that failed to load.

    Raises ``click.UsageError`` for a name no plugin kind knows."""
    from gtbench.plugin.registry import KINDS, registry

    wanted: list[tuple[str, str]] = []
    if names:
        for name in names:
            kinds = [kind for kind in KINDS if name in registry(kind).entries]
            if not kinds:
                everything = sorted({n for kind in KINDS for n in registry(kind).names()})
                import difflib

                close = difflib.get_close_matches(name, everything, n=3, cutoff=0.5)
                hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
                raise click.UsageError(f"no plugin named {name!r}{hint}")
            wanted += [(kind, name) for kind in kinds]
    else:
        wanted = [(kind, name) for kind in KINDS for name in registry(kind).names()]

    found: dict[Asset, list[str]] = {}
    broken: list[str] = []
    for kind, name in wanted:
        try:
            plugin = registry(kind).get(name)
        except GtbenchError as error:
            broken.append(str(error))
            continue
        for asset in getattr(plugin, "assets", ()) or ():
            owners = found.setdefault(asset, [])
            if name not in owners:
                owners.append(name)
    return found, broken


@click.command("fetch")
@click.argument("names", nargs=-1)
@click.option(
    "--cache",
    type=click.Path(file_okay=False),
    default=None,
    help=f"cache folder (default ${CACHE_ENV} or ~/.cache/gtbench)",
)
@click.option("--check", is_flag=True, help="only report what is cached; download nothing")
def fetch_command(names: tuple[str, ...], cache: str | None, check: bool) -> None:
    """Download and verify the weights and data of the named plugins (default: all)."""
    previous = os.environ.get(CACHE_ENV)
    if cache:
        os.environ[CACHE_ENV] = cache
    try:
        _fetch(names, check)
    finally:
        if cache:
            if previous is None:
                os.environ.pop(CACHE_ENV, None)
            else:
                os.environ[CACHE_ENV] = previous


def _fetch(names: Sequence[str], check: bool) -> None:
    assets, broken = collect_assets(names)
    for message in broken:
        click.echo(f"broken  {message}", err=True)
    if not assets:
        click.echo(f"no assets to fetch (cache: {cache_dir()})")
        raise SystemExit(1 if broken else 0)
    failed = 0
    total = len(assets)
    click.echo(f"{total} asset(s), cache {cache_dir()}")
    for number, (asset, owners) in enumerate(assets.items(), start=1):
        prefix = f"[{number}/{total}] {asset.name} ({', '.join(owners)})"
        cached = is_cached(asset)
        if check:
            state = "cached" if cached else "missing"
            click.echo(f"{prefix}: {state}")
            failed += not cached
            continue
        if not cached:
            click.echo(f"{prefix}: downloading {asset.pypi or asset.urls[0]} ...", err=True)
        start = time.perf_counter()
        try:
            path = fetch(asset)
        except GtbenchError as error:
            failed += 1
            click.echo(f"{prefix}: FAILED {error}")
            continue
        how = "cached" if cached else f"downloaded in {time.perf_counter() - start:.1f} s"
        click.echo(f"{prefix}: ok, {how}, sha256 {asset.sha256[:12]}…, {path}")
    if failed or broken:
        raise SystemExit(1)
