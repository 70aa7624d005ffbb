"""TransferGAN (Wang et al., ECCV 2018): fine-tune every weight of G and D from the source.

It is the shared trainer with no hook changed; every other method is a change to it."""

from __future__ import annotations

from gtbench.api import Method


class FineTune(Method):
    description = "fine-tune all of G and D (TransferGAN)"
    paper = "Wang et al., Transferring GANs: generating images from limited data, ECCV 2018"
    code = "github.com/yaxingwang/Transferring-GANs"
