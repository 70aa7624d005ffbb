"""How far one cell's numbers move with the CPU instruction set, on this machine.

Runs one cell (default: the default suite's finetune, seed 0) once per setting, each in
a fresh process with a cache of its own (so the reference features are computed under
that setting too), and prints its FID, KID, the difference to the native run, the
recorded ``cpu_capability`` and the time. The settings force the instruction sets of
torch's kernels (``ATEN_CPU_CAPABILITY``), oneDNN's and MKL's, emulate an AVX2 host on
an AVX-512 one, and run ``--portable-cpu`` with and without further caps: the figures
behind docs/results.md "Reproducibility: what is bit-identical".

    python perf/isa_spread.py                       # ~3-4 min on 2 cores
    python perf/isa_spread.py --methods source-only --settings native,avx2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gtbench.results.provenance import ISA_VARIABLES

ROOT = Path(__file__).resolve().parents[1]
SETTINGS: dict[str, tuple[dict[str, str], list[str]]] = {
    "native": ({}, []),
    "avx2": ({"ATEN_CPU_CAPABILITY": "avx2"}, []),
    "default": ({"ATEN_CPU_CAPABILITY": "default"}, []),
    "emulated-avx2-host": (
        {
            "ATEN_CPU_CAPABILITY": "avx2",
            "ONEDNN_MAX_CPU_ISA": "AVX2",
            "MKL_ENABLE_INSTRUCTIONS": "AVX2",
        },
        [],
    ),
    "portable": ({}, ["--portable-cpu"]),
    "portable+mkl-avx2": ({"MKL_ENABLE_INSTRUCTIONS": "AVX2"}, ["--portable-cpu"]),
}


def downloads() -> Path | None:
    """A folder of already fetched downloads (wheels) to seed each fresh cache with."""
    configured = os.environ.get("GTBENCH_CACHE", "").strip()
    for cache in (configured, ROOT / ".gtbench-cache", Path.home() / ".cache" / "gtbench"):
        if cache and (Path(cache) / "downloads").is_dir():
            return Path(cache) / "downloads"
    return None


def run(name: str, cell: list[str], work: Path) -> dict:
    variables, flags = SETTINGS[name]
    cache, results = work / f"{name}-cache", work / f"{name}-results"
    seed = downloads()
    if seed is not None:
        shutil.copytree(seed, cache / "downloads")
    # only this setting's variables: the native run is native whatever the shell set
    env = {k: v for k, v in os.environ.items() if k not in ISA_VARIABLES}
    env.update(OMP_NUM_THREADS="1", GTBENCH_CACHE=str(cache), **variables)
    command = [sys.executable, "-c", "from gtbench.cli.main import main; main()", "run",
               *cell, "--launcher", "local", "--results", str(results), *flags]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{name}: gtbench run failed:\n{done.stderr[-2000:]}")
    (path,) = results.glob("runs/*/record.json")
    record = json.loads(path.read_text())
    record["_wall"] = wall
    record["_cpu"] = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="finetune")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--suite", default="default")
    parser.add_argument("--settings", default=",".join(SETTINGS))
    args = parser.parse_args()
    names = [name.strip() for name in args.settings.split(",") if name.strip()]
    unknown = sorted(set(names) - set(SETTINGS))
    if unknown:
        raise SystemExit(f"unknown setting {unknown[0]!r} (have: {', '.join(SETTINGS)})")
    cell = ["--suite", args.suite, "--methods", args.methods, "--seeds", args.seeds]
    with tempfile.TemporaryDirectory(prefix="gtbench-isa-") as folder:
        records = {name: run(name, cell, Path(folder)) for name in names}
    first = records[names[0]]
    hardware = first["environment"].get("hardware", {})
    print(f"cell {first['run_id']} ({' '.join(cell)}); {hardware.get('cpu')} "
          f"[{hardware.get('cpu_id')}]")  # fmt: skip
    print(f"{'setting':<20} {'capability':<10} {'FID':>20} {'ΔFID':>10} {'Δ %':>8} "
          f"{'KID':>12} {'train_s':>8} {'eval_s':>7} {'cpu_s':>6}  same as {names[0]}")  # fmt: skip
    base = first["metrics"]
    for name, record in records.items():
        metrics, timings = record["metrics"], record["timings"]
        delta = metrics["fid"] - base["fid"]
        print(
            f"{name:<20} {record['environment']['hardware']['cpu_capability']:<10} "
            f"{metrics['fid']:>20.13f} {delta:>+10.4f} {100 * delta / base['fid']:>+8.3f} "
            f"{metrics['kid_mean']:>12.4f} {timings['train_s']:>8.2f} {timings['eval_s']:>7.2f} "
            f"{record['_cpu']:>6.1f}  {metrics == base}"
        )


if __name__ == "__main__":
    main()
