"""How strong a method's regulariser is against the adversarial loss, over a whole run.

Trains one method on animals-dcgan32 → animals-cat or digits (10 shots of the seed, the default
suite's trainer settings) and measures ‖∇ extra‖ / ‖∇ adversarial‖ over G's trainable
parameters on *every* G update (the record keeps only the last 10 %; the train log one
update per row). Steps are grouped by kind where the method has kinds (CDC and DCL with
the patch loss: image-level anchor steps vs patch-level steps) and summarised per
quarter of the run (median, min, max).

    OMP_NUM_THREADS=1 python perf/regulariser_strength.py cdc [--dataset digits]
        [--iters 300] [--seed 0]
"""

from __future__ import annotations

import argparse
import statistics

import torch

from gtbench.api import TrainConfig, build_context, match_format, to_unit_range, train
from gtbench.plugin import registry


def shots(dataset_name: str, seed: int, n: int = 10) -> torch.Tensor:
    """The seed's shots, brought to the source's 1×32×32 format as the runner does."""
    dataset = registry.datasets().create(dataset_name)
    split = dataset.split(n, seed)
    return to_unit_range(match_format(dataset.images()[list(split.train)], 1, 32))


def measure(
    spec: str, dataset: str, iters: int, seed: int, batch: int
) -> list[tuple[int, str, float]]:
    """(step, kind, ratio) of every G update."""
    networks = registry.sources().create("animals-dcgan32").load(pretrained=True)
    config = TrainConfig(iters=iters, batch_size=batch, check_every=1)
    ctx = build_context(
        networks.generator, networks.discriminator, shots(dataset, seed), config, seed,
        torch.device("cpu"),
    )  # fmt: skip
    method = registry.methods().create(spec)
    rows: list[tuple[int, str, float]] = []
    plain_after_step = method.after_step

    def after_step(ctx_, step):  # noqa: ANN001, ANN202
        plain_after_step(ctx_, step)
        if step.update == "g" and step.reg_grad_ratio is not None:
            kind = "patch" if _patch_step(method, ctx_) else "image"
            rows.append((step.index, kind, float(step.reg_grad_ratio)))

    method.after_step = after_step  # type: ignore[method-assign]
    train(ctx, method)
    return rows


def _patch_step(method, ctx) -> bool:  # noqa: ANN001
    patch = getattr(method, "patch", None)  # CDC's, DCL's PatchAdversarial
    return patch is not None and not patch.anchor_step(ctx)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("method")
    parser.add_argument("--dataset", default="animals-cat", help="animals-cat or digits")
    parser.add_argument("--iters", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    rows = measure(args.method, args.dataset, args.iters, args.seed, args.batch)
    print(
        f"{args.method} on {args.dataset}: {len(rows)} G updates measured, "
        f"{args.iters} steps, seed {args.seed}"
    )
    quarter = max(1, args.iters // 4)
    for kind in sorted({r[1] for r in rows}):
        for q in range(4):
            part = [r[2] for r in rows if r[1] == kind and q * quarter <= r[0] < (q + 1) * quarter]
            if part:
                print(
                    f"  {kind:5s} steps {q * quarter:4d}-{(q + 1) * quarter - 1:4d}: "
                    f"n={len(part):3d} median ratio {statistics.median(part):.3g} "
                    f"(min {min(part):.3g}, max {max(part):.3g})"
                )
    every = [r[2] for r in rows]
    last = [r[2] for r in rows if r[0] >= args.iters - max(1, args.iters // 10)]
    print(f"  all: mean {statistics.mean(every):.3g}; last 10 %: mean {statistics.mean(last):.3g}")


if __name__ == "__main__":
    main()
