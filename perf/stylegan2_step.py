"""Images/s of one StyleGAN2 G+D training step (the shared trainer's work per step).

A step is: D update on real + fake (non-saturating logistic loss, optional R1), then G
update (non-saturating loss), Adam on both — what dominates a few-shot adaptation run.
Prints the parameter counts of the 256 px config-f networks first.

    python perf/stylegan2_step.py                       # CPU, 256 px, batch 2
    python perf/stylegan2_step.py --size 64 --batch 4
    python perf/stylegan2_step.py --device cuda --batch 16 --precision bf16 \
        --channels-last --compile
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from gtbench_plugins.sources.stylegan2.networks import (
    StyleGAN2Discriminator,
    StyleGAN2Generator,
    use_channels_last,
)
from gtbench_plugins.sources.stylegan2.precision import cpu_bf16_flags, cpu_capability


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def build(args: argparse.Namespace, device: torch.device):
    torch.manual_seed(0)
    g = StyleGAN2Generator(args.size, channel_multiplier=args.channel_multiplier)
    d = StyleGAN2Discriminator(args.size, channel_multiplier=args.channel_multiplier)
    g, d = g.to(device), d.to(device)
    for network in (g, d):
        network.autocast_dtype = torch.bfloat16 if args.precision == "bf16" else None
        if args.channels_last:
            use_channels_last(network)
        if args.compile:
            for block in network.blocks.values():
                block.compile()
    return g, d


def step(g, d, g_opt, d_opt, real: torch.Tensor, r1: bool) -> None:
    z = torch.randn(real.shape[0], g.style_dim, device=real.device)
    # discriminator
    d_opt.zero_grad(set_to_none=True)
    real = real.detach().requires_grad_(r1)
    real_logits = d(real)
    loss = F.softplus(d(g(z).detach())).mean() + F.softplus(-real_logits).mean()
    if r1:
        (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
        loss = loss + 5.0 * grad.square().sum(dim=(1, 2, 3)).mean()
    loss.backward()
    d_opt.step()
    # generator
    g_opt.zero_grad(set_to_none=True)
    F.softplus(-d(g(z))).mean().backward()
    g_opt.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--channel-multiplier", type=int, default=2)
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto")
    parser.add_argument("--steps", type=int, default=2, help="timed steps")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--r1", action="store_true", help="include the R1 penalty every step")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    g256, d256 = StyleGAN2Generator(256, channel_multiplier=2), StyleGAN2Discriminator(256)
    print(f"256 px config-f parameters: G {count(g256):,} (mapping {count(g256.style):,}), "
          f"D {count(d256):,}")  # fmt: skip
    del g256, d256

    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    if device.type == "cpu" and args.precision == "bf16" and not cpu_bf16_flags():
        print(f"note: this CPU ({cpu_capability()}) emulates bf16; expect it slower than fp32 "
              "(the stylegan2 source falls back to fp32 here)")  # fmt: skip
    g, d = build(args, device)
    g_opt = torch.optim.Adam(g.parameters(), lr=0.002, betas=(0.0, 0.99))
    d_opt = torch.optim.Adam(d.parameters(), lr=0.002, betas=(0.0, 0.99))
    real = torch.randn(args.batch, 3, args.size, args.size, device=device).clamp(-1, 1)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(args.warmup):
        step(g, d, g_opt, d_opt, real, args.r1)
    sync()
    start = time.perf_counter()
    for _ in range(args.steps):
        step(g, d, g_opt, d_opt, real, args.r1)
    sync()
    seconds = (time.perf_counter() - start) / args.steps
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu×{args.threads}"
    if device.type == "cpu":
        name += f" [{cpu_capability()}]"
    print(
        f"{name}: {args.size} px, channel_multiplier {args.channel_multiplier}, batch "
        f"{args.batch}, {args.precision}{', channels_last' if args.channels_last else ''}"
        f"{', compiled' if args.compile else ''}{', R1' if args.r1 else ''}: "
        f"{seconds:.3f} s/step, {args.batch / seconds:.2f} images/s"
    )


if __name__ == "__main__":
    main()
