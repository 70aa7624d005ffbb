"""The Fisher estimate EWC, AdAM and RICK share, one image at a time (as the built-in
``methods/_fisher.py`` does) against per-sample gradients of a whole batch at once
(``torch.func``: ``vmap`` over ``grad``), side by side on the default source.

Both networks run in eval mode (BatchNorm from running statistics), so the images of a
batch do not interact and the batched per-sample gradients are the same quantities; the
sums are taken in another order and the batched kernels round differently, so the last
digits differ (printed): adopting it would change EWC's, AdAM's and RICK's numbers and
need their version bumps.

    nice -n 10 python perf/fisher_speed.py [--samples 100] [--chunk 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap

from gtbench.plugin import registry


def loop_fisher(g, d, latents, params):  # the built-in estimator's loop
    names = list(params)
    tensors = [params[n] for n in names]
    fisher = [torch.zeros_like(t) for t in tensors]
    for z in latents:
        logit = d(g(z.unsqueeze(0))).reshape(1, -1).mean()
        grads = torch.autograd.grad(F.logsigmoid(logit), tensors)
        for acc, value in zip(fisher, grads, strict=True):
            acc.add_(value.square())
    return {n: f / len(latents) for n, f in zip(names, fisher, strict=True)}


def batched_fisher(g, d, latents, params, chunk):
    buffers = dict(g.named_buffers())

    def objective(p, z):
        image = functional_call(g, (p, buffers), (z.unsqueeze(0),))
        return F.logsigmoid(d(image).reshape(1, -1).mean())

    per_sample = vmap(grad(objective), in_dims=(None, 0))
    fisher = {n: torch.zeros_like(t) for n, t in params.items()}
    for start in range(0, len(latents), chunk):
        grads = per_sample(params, latents[start : start + chunk])
        for name, value in grads.items():
            fisher[name] += value.square().sum(0)
    return {n: f / len(latents) for n, f in fisher.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--chunk", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    networks = registry.sources().create("animals-dcgan32").load()
    g, d = networks.generator.eval(), networks.discriminator.eval()
    for p in d.parameters():
        p.requires_grad_(False)
    params = dict(g.named_parameters())
    latents = g.sample_latent(args.samples, generator=torch.Generator().manual_seed(0))
    times: dict[str, list[float]] = {"loop": [], "batched": []}
    for _ in range(args.rounds):
        start = time.perf_counter()
        slow = loop_fisher(g, d, latents, params)
        times["loop"].append(time.perf_counter() - start)
        start = time.perf_counter()
        fast = batched_fisher(g, d, latents, {n: p.detach() for n, p in params.items()}, args.chunk)
        times["batched"].append(time.perf_counter() - start)
    loop_s, batched_s = (statistics.median(times[k]) for k in ("loop", "batched"))
    worst = max(
        float(((fast[n] - slow[n]).abs() / slow[n].abs().clamp_min(1e-30)).max()) for n in slow
    )
    total = sum(float(slow[n].sum()) for n in slow)
    print(f"animals-dcgan32, {args.samples} samples, 1 thread, median of {args.rounds} rounds")
    print(f"one image at a time : {loop_s:7.2f} s")
    print(f"vmap, chunks of {args.chunk:<4d}: {batched_s:7.2f} s   ({loop_s / batched_s:.1f}x)")
    print(f"largest relative difference of a Fisher entry: {worst:.2e} (sum {total:.6e})")


if __name__ == "__main__":
    main()
