"""StyleGAN2 in plain PyTorch, loading rosinality-format checkpoints (see :mod:`.plugin`)."""

from .plugin import StyleGAN2Source

__all__ = ["StyleGAN2Source"]
