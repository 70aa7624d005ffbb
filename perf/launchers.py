"""Wall time of one 8-cell debug sweep under each launcher, and its speed-up over ``local``.

    python perf/launchers.py                 # local, process x2, submitit-local, ray
    python perf/launchers.py --iters 200 --launchers local,ray

The sweep is the debug suite's scratch and finetune methods × seeds 0–3 (8 cells). Each
launcher writes into its own fresh temporary folder, so none reuses another's results.
Wall time includes everything a user waits for: worker or job start-up, the cells, the
tables. Torch uses one thread per cell everywhere, so the launchers differ only in how
they spread cells over the machine.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by every worker and job

LAUNCHERS = {
    "local": ("local", 1),
    "process": ("process:threads=1", 2),
    "submitit-local": ("slurm:cluster=local,gpus_per_node=0,poll_s=0.2,array_parallelism=2", 1),
    "ray": ("ray:num_cpus=1", 2),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--launchers", default=",".join(LAUNCHERS))
    parser.add_argument("--iters", type=int, default=100)
    parser.add_argument("--n-samples", type=int, default=200)
    args = parser.parse_args()

    import torch

    from gtbench.launch.sweep import run_sweep
    from gtbench.plan.cells import plan_suite
    from gtbench.plan.suite import load_suite

    torch.set_num_threads(1)
    suite = load_suite("debug")
    suite.methods, suite.seeds = ["scratch", "finetune"], [0, 1, 2, 3]
    suite.train.update(iters=args.iters, batch_size=8)
    suite.eval.update(n_samples=args.n_samples)
    plan = plan_suite(suite)
    print(
        f"{len(plan.cells)} cells, {args.iters} iters, {args.n_samples} samples, "
        f"{os.cpu_count()} CPUs"
    )
    times: dict[str, float] = {}
    for name in args.launchers.split(","):
        spec, workers = LAUNCHERS[name]
        with tempfile.TemporaryDirectory(prefix=f"gtbench-{name}-") as folder:
            start = time.perf_counter()
            summary = run_sweep(plan, Path(folder), launcher=spec, workers=workers)
            times[name] = time.perf_counter() - start
        statuses = dict(summary.statuses)
        base = times.get("local")
        speedup = f"{base / times[name]:.2f}x" if base else "-"
        label = f"{name} (--workers {workers})" if workers > 1 else name
        print(
            f"{label:28s} {times[name]:7.1f} s   speed-up vs local {speedup:>6s}   {statuses}",
            flush=True,
        )


if __name__ == "__main__":
    main()
