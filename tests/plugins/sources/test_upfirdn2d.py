"""upfirdn2d against a direct, loop-based reference of its definition."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gtbench_plugins.sources.stylegan2.ops import fused_leaky_relu, make_kernel, upfirdn2d


def reference(x: np.ndarray, k: np.ndarray, up: int, down: int, pad: tuple[int, int]) -> np.ndarray:
    """Zero insertion → pad (negative crops) → true convolution with k → decimation."""
    n, c, h, w = x.shape
    z = np.zeros((n, c, h * up, w * up), dtype=np.float64)
    z[:, :, ::up, ::up] = x
    p0, p1 = pad
    z = np.pad(z, ((0, 0), (0, 0), (max(p0, 0), max(p1, 0)), (max(p0, 0), max(p1, 0))))
    z = z[:, :, max(-p0, 0) : z.shape[2] - max(-p1, 0), max(-p0, 0) : z.shape[3] - max(-p1, 0)]
    kh, kw = k.shape
    oh, ow = z.shape[2] - kh + 1, z.shape[3] - kw + 1
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            # convolution: out[i, j] = Σ z[i + a, j + b] · k[kh-1-a, kw-1-b]
            window = z[:, :, i : i + kh, j : j + kw]
            out[:, :, i, j] = (window * k[::-1, ::-1]).sum(axis=(2, 3))
    return out[:, :, ::down, ::down]


CASES = [
    (1, 1, (0, 0)),
    (1, 1, (1, 2)),
    (2, 1, (2, 1)),  # rosinality Upsample with a 4-tap kernel
    (2, 1, (1, 1)),  # modulated conv's post-transposed-conv blur
    (1, 2, (1, 1)),  # rosinality Downsample with a 4-tap kernel
    (1, 2, (2, 2)),  # discriminator 3×3 conv blur
    (2, 2, (1, 2)),
    (1, 1, (-1, 2)),  # negative padding crops
    (2, 1, (0, -1)),
    (3, 2, (1, 0)),
]


@pytest.mark.parametrize(("up", "down", "pad"), CASES)
def test_upfirdn2d_matches_reference(up: int, down: int, pad: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 7))
    kernel = rng.standard_normal((4, 4))  # asymmetric: a flip error cannot hide
    got = upfirdn2d(torch.tensor(x), torch.tensor(kernel), up=up, down=down, pad=pad)
    np.testing.assert_allclose(got.numpy(), reference(x, kernel, up, down, pad), atol=1e-10)


def test_upfirdn2d_output_size_and_dc_gain() -> None:
    """The StyleGAN2 up/down blurs keep a constant image constant (kernel gain)."""
    kernel = make_kernel([1, 3, 3, 1])
    assert torch.isclose(kernel.sum(), torch.tensor(1.0))
    x = torch.ones(1, 2, 8, 8)
    up = upfirdn2d(x, kernel * 4, up=2, pad=(2, 1))
    assert up.shape == (1, 2, 16, 16)
    assert torch.allclose(up[..., 2:-2, 2:-2], torch.ones(1, 2, 12, 12))
    down = upfirdn2d(x, kernel, down=2, pad=(1, 1))
    assert down.shape == (1, 2, 4, 4)
    assert torch.allclose(down[..., 1:-1, 1:-1], torch.ones(1, 2, 2, 2))


def test_upfirdn2d_gradients_and_channels_last() -> None:
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    kernel = make_kernel([1, 3, 3, 1]).double()
    assert torch.autograd.gradcheck(lambda t: upfirdn2d(t, kernel, up=2, pad=(2, 1)), (x,))
    assert torch.autograd.gradgradcheck(lambda t: upfirdn2d(t, kernel, down=2, pad=(1, 1)), (x,))
    cl = x.detach().contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(
        upfirdn2d(cl, kernel, up=2, pad=(2, 1)), upfirdn2d(x.detach(), kernel, up=2, pad=(2, 1))
    )


def test_fused_leaky_relu() -> None:
    x = torch.tensor([[-1.0, 2.0]])
    bias = torch.tensor([0.5, -1.0])
    expected = torch.tensor([[-0.5 * 0.2, 1.0]]) * 2**0.5
    torch.testing.assert_close(fused_leaky_relu(x, bias), expected)
