"""The trainer step's speed options, side by side in one run, on a real cell.

Trains the default cell (``animals-dcgan32`` → ``animals-cat``, 10 shots, seed 0, 32 px
DCGAN, batch 16, ``finetune``) or the debug cell (``--cell debug``: the 16 px random
source on synthetic discs, batch 8) with the gtbench trainer under each variant:

- thread settings: ``torch.set_num_threads`` 1 / 2, ``set_num_interop_threads`` 1, and
  two 1-thread processes at once (what the ``process`` launcher does on 2 cores) against
  one 2-thread process (per-cell throughput of the machine, not of one process);
- ``channels_last`` networks and shots;
- ``torch.compile`` (``nn.Module.compile`` on every block; the R1 penalty's double
  backward cannot go through a compiled graph, so compiled variants run without R1 and
  are compared with the uncompiled trainer without R1), its compile time apart;
- the R1 interval (lazy regularisation: every 1, 4 = default, 16 steps, off);
- the batch shape (8, 16, 32 images: ms per step and per image).

Each variant runs in a fresh process (thread settings can be set once per process),
rounds alternate the variants so that the machine's background load hits all alike, and
the median round is printed with its ratio to the baseline (1 thread, the defaults), in
wall time and in CPU time (the process's; steadier than wall time when other work shares
the cores, but blind to what threads spend waiting).
The options that change numbers (R1 interval, batch) are marked so. ``--profile`` also
prints the top operators of a baseline step (torch.profiler) and a coarse breakdown of
the step into its parts.

    nice -n 10 python perf/trainer_options.py [--cell default|debug] [--steps 30]
        [--rounds 3] [--only NAME,NAME] [--profile]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# name -> (settings, changes numbers?)
VARIANTS: dict[str, tuple[dict[str, Any], bool]] = {
    "baseline (1 thread)": ({}, False),
    "2 threads": ({"threads": 2}, False),
    "1 thread + interop 1": ({"interop": 1}, False),
    "2 threads + interop 1": ({"threads": 2, "interop": 1}, False),
    "2 procs x 1 thread (per cell)": ({"pair": True}, False),
    "channels_last": ({"channels_last": True}, False),
    "no R1": ({"r1_every": 0}, True),
    "no R1 + compiled": ({"r1_every": 0, "compile": True}, True),
    "R1 every 1": ({"r1_every": 1}, True),
    "R1 every 16": ({"r1_every": 16}, True),
    "batch 8": ({"batch": 8}, True),
    "batch 32": ({"batch": 32}, True),
}
BASELINE = "baseline (1 thread)"


def _cell(name: str) -> tuple[Any, Any, Any, Any, int]:
    """(source networks' G, D, shots in [-1, 1], method, default batch) of the cell."""
    import torch

    from gtbench.launch.runner import MatchedTarget
    from gtbench.plugin import registry
    from gtbench.plugin.images import to_unit_range

    source_name, dataset_name, batch = (
        ("animals-dcgan32", "animals-cat", 16) if name == "default" else ("debug", "debug", 8)
    )
    source = registry.sources().create(source_name)
    dataset = registry.datasets().create(dataset_name)
    info = source.info
    target = MatchedTarget(dataset, info.resolution, info.channels)
    split = target.split(10, 0)
    shots = to_unit_range(target.images()[list(split.train)])
    torch.manual_seed(0)
    networks = source.load(pretrained=True)
    return (
        networks.generator,
        networks.discriminator,
        shots,
        registry.methods().create("finetune"),
        batch,
    )


def child(cell: str, settings: dict[str, Any], steps: int, warm: int) -> dict[str, Any]:
    """Time ``steps`` trainer steps after ``warm`` warm-up steps under ``settings``."""
    import torch

    if settings.get("interop"):
        torch.set_num_interop_threads(settings["interop"])
    torch.set_num_threads(settings.get("threads", 1))
    from gtbench.train.trainer import TrainConfig, build_context, train

    generator, discriminator, shots, method, batch = _cell(cell)
    batch = settings.get("batch", batch)
    r1_every = settings.get("r1_every", 4)
    config = TrainConfig(
        iters=warm,
        batch_size=batch,
        r1_gamma=1.0 if r1_every else 0.0,
        r1_every=max(r1_every, 1),
        check_every=10,
    )
    if settings.get("channels_last"):
        generator = generator.to(memory_format=torch.channels_last)
        discriminator = discriminator.to(memory_format=torch.channels_last)
        shots = shots.contiguous(memory_format=torch.channels_last)
    if settings.get("compile"):
        import torch._dynamo

        # one code object serves every block: one compiled graph per block and grad mode
        torch._dynamo.config.recompile_limit = 64
        for network in (generator, discriminator):
            for block in network.blocks.values():
                block.compile(dynamic=False)
    device = torch.device("cpu")
    clock = time.perf_counter()
    ctx = build_context(generator, discriminator, shots, config, 0, device)
    train(ctx, method)
    warm_s = time.perf_counter() - clock
    timed = replace(config, iters=steps)
    ctx = build_context(ctx.generator, ctx.discriminator, shots, timed, 1, device)
    clock, cpu = time.perf_counter(), time.process_time()
    train(ctx, method)
    seconds, cpu = time.perf_counter() - clock, time.process_time() - cpu
    return {
        "ms_step": seconds / steps * 1000,
        "cpu_ms_step": cpu / steps * 1000,
        "batch": batch,
        "warm_s": warm_s,
    }


def run_child(cell: str, name: str, steps: int, warm: int) -> list[dict[str, Any]]:
    settings = VARIANTS[name][0]
    command = [sys.executable, __file__, "--child", json.dumps(settings), "--cell", cell]
    command += ["--steps", str(steps), "--warm", str(warm)]
    env = {**os.environ, "OMP_NUM_THREADS": str(settings.get("threads", 1))}
    copies = 2 if settings.get("pair") else 1
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) for _ in range(copies)
    ]
    results = []
    for process in processes:
        out, _ = process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"variant {name!r} failed")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def profile(cell: str, steps: int) -> None:
    """Top operators of the trainer (torch.profiler) and a coarse breakdown of a step."""
    import torch
    import torch.nn.functional as F
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    torch.set_num_threads(1)
    from gtbench.train.trainer import TrainConfig, build_context, ema_beta, train, update_ema

    generator, discriminator, shots, method, batch = _cell(cell)
    config = TrainConfig(iters=steps, batch_size=batch, check_every=10)
    ctx = build_context(generator, discriminator, shots, config, 0, torch.device("cpu"))
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        train(ctx, method)
    print(f"\ntop operators over {steps} steps (1 thread, self CPU time):")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))

    g, d = ctx.generator, ctx.discriminator
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.0, 0.99))
    g_ema = ctx.g_ema
    parts: dict[str, float] = {}

    def lap(name: str, clock: float) -> float:
        now = time.perf_counter()
        parts[name] = parts.get(name, 0.0) + now - clock
        return now

    rng = torch.Generator().manual_seed(0)
    for index in range(steps):
        clock = time.perf_counter()
        z = torch.randn((batch, *g.latent_shape), generator=rng)
        with torch.no_grad():
            fake = g(z)
        real = ctx.sample_real(batch)
        clock = lap("G forward (no grad) + draw shots", clock)
        loss_d = F.softplus(d(fake).flatten(1).mean(1)).mean()
        loss_d = loss_d + F.softplus(-d(real).flatten(1).mean(1)).mean()
        clock = lap("D forward real + fake", clock)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        clock = lap("D backward", clock)
        if index % 4 == 0:
            x = real.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(d(x).flatten(1).mean(1).sum(), x, create_graph=True)
            (grad.square().flatten(1).sum(1).mean() * 2).backward()
            clock = lap("R1 (every 4th step, amortised)", clock)
        opt_d.step()
        clock = lap("Adam D", clock)
        z = torch.randn((batch, *g.latent_shape), generator=rng)
        loss_g = F.softplus(-d(g(z)).flatten(1).mean(1)).mean()
        clock = lap("G forward + D forward", clock)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward(inputs=list(g.parameters()))
        clock = lap("G backward (through D)", clock)
        opt_g.step()
        clock = lap("Adam G", clock)
        update_ema(g_ema, g, ema_beta(config, (index + 1) * batch, False))
        lap("EMA", clock)
    total = sum(parts.values())
    print(f"coarse breakdown of a bare step of the same work ({total / steps * 1000:.1f} ms/step):")
    for name, seconds in parts.items():
        print(f"  {name:36s} {seconds / steps * 1000:7.2f} ms  {seconds / total:6.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cell", choices=("default", "debug"), default="default")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warm", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated variant names")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("GTBENCH_CACHE", str(ROOT / ".gtbench-cache"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.child is not None:
        print(json.dumps(child(args.cell, json.loads(args.child), args.steps, args.warm)))
        return
    names = [n for n in VARIANTS if not args.only or n in args.only.split(",")]
    if BASELINE not in names:
        names.insert(0, BASELINE)
    rounds: dict[str, list[list[dict[str, Any]]]] = {name: [] for name in names}
    for round_index in range(args.rounds):
        for name in names if round_index % 2 == 0 else list(reversed(names)):
            rounds[name].append(run_child(args.cell, name, args.steps, args.warm))
    import torch

    print(
        f"torch {torch.__version__}, {os.cpu_count()} cores (shared with other work: ratios "
        f"from one run, not absolute speeds), cell {args.cell}, {args.steps} timed steps "
        f"after {args.warm}, median of {args.rounds} alternating rounds"
    )
    base = statistics.median(r[0]["ms_step"] for r in rounds[BASELINE])
    print(
        f"{'variant':32s} {'ms/step':>8s} {'ms/image':>9s} {'speed vs base':>14s} "
        f"{'CPU ms/step':>11s} {'CPU vs base':>11s} {'warm-up s':>9s}  numbers"
    )
    base_cpu = statistics.median(r[0]["cpu_ms_step"] for r in rounds[BASELINE])
    for name in names:
        first = [r[0] for r in rounds[name]]
        ms = statistics.median(r["ms_step"] for r in first)
        batch = first[0]["batch"]
        warm = statistics.median(r["warm_s"] for r in first)
        # throughput of the machine in steps: a pair of processes does two steps at once
        copies = len(rounds[name][0])
        throughput = (
            copies
            * base
            / statistics.median(
                statistics.mean(r["ms_step"] for r in pair) for pair in rounds[name]
            )
        )
        cpu = statistics.median(r["cpu_ms_step"] for r in first)
        changes = "change" if VARIANTS[name][1] else "same"
        print(
            f"{name:32s} {ms:8.1f} {ms / batch:9.2f} {throughput:14.2f} {cpu:11.1f} "
            f"{base_cpu / cpu:11.2f} {warm:9.1f}  {changes}"
        )
    if args.profile:
        profile(args.cell, args.steps)


if __name__ == "__main__":
    main()
