"""Trainer throughput against a bare PyTorch loop doing the same updates, side by side.

Both train the same DCGAN (32 px, the animals-dcgan32 architecture, fresh weights) with
the same batch, shot flips, losses (non-saturating logistic + lazy R1 every 4 steps in a D
pass of its own on the un-augmented reals), Adam and EMA (ramped up: from scratch).
Rounds alternate between the two so machine noise hits both alike; the median round is
reported. Also counts the FLOPs of one step (torch.utils.flop_counter) and compares the
achieved FLOP/s with this machine's peak matmul FLOP/s measured in the same run.

    python perf/trainer_throughput.py [--iters 30] [--batch 32] [--rounds 5]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from gtbench.api import Method
from gtbench.plugin import registry
from gtbench.train.trainer import TrainConfig, build_context, ema_beta, train, update_ema


def networks():
    torch.manual_seed(0)
    nets = registry.sources().create("animals-dcgan32").load(pretrained=False)
    return nets.generator, nets.discriminator


def harness_round(real: torch.Tensor, config: TrainConfig) -> float:
    generator, discriminator = networks()
    ctx = build_context(
        generator, discriminator, real, config, 0, torch.device("cpu"), from_pretrained=False
    )
    start = time.perf_counter()
    train(ctx, Method())
    return time.perf_counter() - start


def bare_step(g, d, g_ema, opt_g, opt_d, real, config, index, rng):
    batch = config.batch_size
    z = torch.randn((batch, *g.latent_shape), generator=rng)
    with torch.no_grad():
        fake = g(z)
    x = real[torch.randint(len(real), (batch,), generator=rng)]
    mirror = torch.rand((batch,), generator=rng) < 0.5
    x = torch.where(mirror.view(-1, 1, 1, 1), x.flip(3), x)
    d_real = d(x).flatten(1).mean(1)
    d_fake = d(fake).flatten(1).mean(1)
    loss_d = F.softplus(d_fake).mean() + F.softplus(-d_real).mean()
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward(inputs=list(d.parameters()))
    if config.r1_gamma > 0 and index % config.r1_every == 0:
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(d(x).flatten(1).mean(1).sum(), x, create_graph=True)
        r1 = grad.square().flatten(1).sum(1).mean() * (config.r1_gamma / 2 * config.r1_every)
        r1.backward(inputs=list(d.parameters()))
    opt_d.step()
    z = torch.randn((batch, *g.latent_shape), generator=rng)
    loss_g = F.softplus(-d(g(z)).flatten(1).mean(1)).mean()
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward(inputs=list(g.parameters()))
    opt_g.step()
    update_ema(g_ema, g, ema_beta(config, (index + 1) * batch))
    return loss_d, loss_g


def bare_round(real: torch.Tensor, config: TrainConfig) -> float:
    g, d = networks()
    g_ema = copy.deepcopy(g).eval().requires_grad_(False)
    betas = (config.beta1, config.beta2)
    opt_g = torch.optim.Adam(g.parameters(), lr=config.lr_g, betas=betas)
    opt_d = torch.optim.Adam(d.parameters(), lr=config.lr_d, betas=betas)
    rng = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for index in range(config.iters):
        losses = bare_step(g, d, g_ema, opt_g, opt_d, real, config, index, rng)
        if (index + 1) % config.check_every == 0:
            assert all(torch.isfinite(v) for v in losses)
    return time.perf_counter() - start


def step_flops(real: torch.Tensor, config: TrainConfig) -> int:
    """FLOPs of one step without R1 (the flop counter cannot follow R1's double backward)."""
    g, d = networks()
    g_ema = copy.deepcopy(g).requires_grad_(False)
    opt_g, opt_d = torch.optim.Adam(g.parameters()), torch.optim.Adam(d.parameters())
    rng = torch.Generator().manual_seed(0)
    with FlopCounterMode(display=False) as counter:
        bare_step(g, d, g_ema, opt_g, opt_d, real, config, 1, rng)
    return counter.get_total_flops()


def peak_matmul_flops(size: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    config = TrainConfig(iters=args.iters, batch_size=args.batch, check_every=10)
    real = torch.rand(64, 1, 32, 32) * 2 - 1
    harness_round(real, TrainConfig(iters=2, batch_size=args.batch))  # warm-up
    bare_round(real, TrainConfig(iters=2, batch_size=args.batch))
    harness, bare = [], []
    for _ in range(args.rounds):
        harness.append(harness_round(real, config))
        bare.append(bare_round(real, config))
    images = args.iters * args.batch
    h, b = statistics.median(harness), statistics.median(bare)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"DCGAN 32 px, batch {args.batch}"
    )
    print(f"gtbench trainer : {images / h:8.1f} images/s  ({h / args.iters * 1000:.1f} ms/step)")
    print(f"bare loop       : {images / b:8.1f} images/s  ({b / args.iters * 1000:.1f} ms/step)")
    print(f"ratio trainer/bare throughput: {b / h:.3f}")
    no_r1 = replace(config, r1_gamma=0.0)
    plain_time = statistics.median(harness_round(real, no_r1) for _ in range(args.rounds))
    flops = step_flops(real, no_r1)
    achieved = flops / (plain_time / args.iters)
    peak = peak_matmul_flops()
    print(
        f"FLOPs per step (no R1): {flops / 1e9:.2f} G; trainer without R1 "
        f"{plain_time / args.iters * 1000:.1f} ms/step"
    )
    print(
        f"achieved {achieved / 1e9:.1f} GFLOP/s vs peak fp32 matmul {peak / 1e9:.1f} GFLOP/s "
        f"= {achieved / peak:.1%} of peak"
    )


if __name__ == "__main__":
    main()
