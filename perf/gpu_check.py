"""GPU check, in one script: what a CUDA machine gives gtbench, as printed figures.

1. One StyleGAN2 training step at 256 px (G+D, Adam) in fp32, bf16, channels_last and
   compiled, through ``perf/stylegan2_step.py`` (one subprocess per variant).
2. A tiny sweep (debug suite) with the ``process`` launcher, one worker per visible GPU:
   wall time, statuses, and the device each worker's cells ran on.
3. One cell evaluated with the Inception extractor on a stand-in for its weights (the
   real architecture with seeded random values: no download), to time the evaluation.

On a machine without CUDA it says so and exits 0 (``--allow-cpu`` runs the same checks
on the CPU at whatever size you give, to try the script itself).

    python perf/gpu_check.py                        # on a CUDA machine
    python perf/gpu_check.py --size 256 --batch 16 --steps 10
    python perf/gpu_check.py --allow-cpu --size 32 --batch 2 --steps 1 --skip-compile

On a bare machine (no network): ``python3 -m pip install --no-deps --no-build-isolation
-e .`` in the repository (entry points are how gtbench finds its plugins), plus the
torch-fidelity wheel if it is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEP_SCRIPT = ROOT / "perf" / "stylegan2_step.py"
VARIANTS = [
    ("fp32", []),
    ("bf16", ["--precision", "bf16"]),
    ("fp32 + channels_last", ["--channels-last"]),
    ("bf16 + channels_last", ["--precision", "bf16", "--channels-last"]),
    ("bf16 + channels_last + compile", ["--precision", "bf16", "--channels-last", "--compile"]),
]


def _run(command: list[str], timeout: float, env: dict[str, str] | None = None):
    """(seconds, completed process or None on timeout)."""
    start = time.perf_counter()
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT
        )
    except subprocess.TimeoutExpired:
        return time.perf_counter() - start, None
    return time.perf_counter() - start, done


def _last_line(done: subprocess.CompletedProcess[str] | None) -> str:
    if done is None:
        return "timed out"
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    tail = lines[-1] if lines else ""
    return tail if done.returncode == 0 else f"FAILED (exit {done.returncode}): {tail}"


def step_timings(args: argparse.Namespace, device: str) -> None:
    print(f"\n== StyleGAN2 step, {args.size} px, batch {args.batch}, {args.steps} timed steps")
    for label, extra in VARIANTS:
        if "--compile" in extra and args.skip_compile:
            print(f"{label:<34} skipped (--skip-compile)")
            continue
        warmup = "3" if "--compile" in extra else "1"
        command = [sys.executable, str(STEP_SCRIPT), "--device", device, "--size",
                   str(args.size), "--batch", str(args.batch), "--steps", str(args.steps),
                   "--warmup", warmup, "--threads", str(args.threads), *extra]  # fmt: skip
        seconds, done = _run(command, args.timeout)
        print(f"{label:<34} {_last_line(done)}  [{seconds:.0f} s with start-up]")


def _fresh_cache(folder: Path) -> dict[str, str]:
    """An empty gtbench cache: the user's stays untouched and statistics are computed."""
    return {**os.environ, "GTBENCH_CACHE": str(folder / "cache")}


def _gtbench(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "gtbench.cli.main", *arguments]


def _records(results: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(results.glob("runs/*/record.json"))]


def tiny_sweep(args: argparse.Namespace, gpus: int, device: str | None, folder: Path) -> None:
    workers = max(1, gpus)
    seeds = ",".join(str(s) for s in range(2 * workers))
    print(f"\n== tiny sweep: debug suite (8 iters), process launcher, {workers} worker(s), "
          f"seeds {seeds}")  # fmt: skip
    results = folder / "sweep"
    command = _gtbench("run", "--suite", "debug", "--methods", "finetune,scratch",
                       "--seeds", seeds, "--iters", "8", "--n-samples", "64",
                       "--launcher", "process", "--workers", str(workers),
                       "--results", str(results))  # fmt: skip
    if device:
        command += ["--device", device]
    seconds, done = _run(command, args.timeout, _fresh_cache(folder))
    records = _records(results)
    statuses: dict[str, int] = {}
    for record in records:
        statuses[record["status"]] = statuses.get(record["status"], 0) + 1
    train = sum(r.get("timings", {}).get("train_s", 0) for r in records)
    print(f"exit {None if done is None else done.returncode}, {len(records)} records {statuses}, "
          f"wall {seconds:.1f} s, summed train {train:.1f} s")  # fmt: skip
    devices = sorted({str(r.get("device")) for r in records})
    print(f"devices recorded: {', '.join(devices)}")
    if done is not None and done.returncode != 0:
        print(_last_line(done))


def _inception_standin(path: Path) -> None:
    """torch-fidelity's InceptionV3 with seeded random weights (download and load off)."""
    from unittest import mock

    import torch
    import torch_fidelity.feature_extractor_inceptionv3 as inception

    cls = inception.FeatureExtractorInceptionV3
    with (
        mock.patch.object(inception, "load_state_dict_from_url", return_value={}),
        mock.patch.object(cls, "load_state_dict", return_value=None),
    ):
        torch.manual_seed(0)
        network = cls("inception-v3-compat", ["2048"])
    torch.save(network.state_dict(), path)


def inception_evaluation(args: argparse.Namespace, device: str | None, folder: Path) -> None:
    print(f"\n== evaluation: Inception stand-in, {args.n_samples} generated images")
    weights = folder / "inception-standin.pth"
    try:
        _inception_standin(weights)
    except Exception as error:  # noqa: BLE001 - reported, the other checks still count
        print(f"FAILED to build the stand-in: {type(error).__name__}: {error}")
        return
    results = folder / "eval"
    command = _gtbench("run", "--suite", "debug", "--methods", "finetune", "--iters", "4",
                       "--extractor", f"inception-v3-compat:weights={weights}",
                       "--n-samples", str(args.n_samples), "--results", str(results))  # fmt: skip
    if device:
        command += ["--device", device]
    seconds, done = _run(command, args.timeout, _fresh_cache(folder))
    for record in _records(results):
        timings, metrics = record.get("timings", {}), record.get("metrics", {})
        print(f"{record['status']}: eval {timings.get('eval_s')} s, train "
              f"{timings.get('train_s')} s, fid {metrics.get('fid')} (random features: a "
              f"timing, not a score), device {record.get('device')}")  # fmt: skip
    print(f"wall {seconds:.1f} s with start-up")
    if done is None or done.returncode != 0:
        print(_last_line(done))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--n-samples", type=int, default=5000)
    parser.add_argument("--timeout", type=float, default=300, help="seconds per subprocess")
    parser.add_argument("--skip-compile", action="store_true")
    parser.add_argument("--allow-cpu", action="store_true", help="run the checks on a CPU")
    args = parser.parse_args()

    import torch

    cuda = torch.cuda.is_available()
    if not cuda and not args.allow_cpu:
        from gtbench_plugins.sources.stylegan2.precision import cpu_capability

        print(f"no CUDA device visible (torch {torch.__version__}, CPU {cpu_capability()}): "
              "nothing to check here; run this on a GPU machine")  # fmt: skip
        return 0
    gpus = torch.cuda.device_count() if cuda else 0
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {gpus} visible GPU(s), "
          f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}")  # fmt: skip
    for index in range(gpus):
        props = torch.cuda.get_device_properties(index)
        print(f"  cuda:{index} {props.name}, {props.total_memory / 2**30:.0f} GiB, "
              f"{props.multi_processor_count} SMs")  # fmt: skip
    device = "cuda" if cuda else "cpu"
    step_timings(args, device)
    with tempfile.TemporaryDirectory(prefix="gtbench-gpu-check-") as folder:
        tiny_sweep(args, gpus, device, Path(folder))
        inception_evaluation(args, device, Path(folder))
    return 0


if __name__ == "__main__":
    sys.exit(main())
