"""Generator and discriminator of the lightweight super-resolution GAN (modules only, no I/O).

The generator up-samples by 2 along **one** axis (the row axis, dim -2), as SMORE does (Zhao et al.,
IEEE TMI 2021): a residual CNN (EDSR-style blocks without batch norm, Lim et al., CVPRW 2017) whose
features are up-sampled by an axial sub-pixel shuffle (Shi et al., CVPR 2016, restricted to one
axis) and added to a fixed cubic interpolation of the input, so the network learns only what cubic
interpolation misses. The last convolution starts at zero: an untrained generator *is* cubic
interpolation. The discriminator is a small PatchGAN (Isola et al., CVPR 2017).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import param_error
from .degradation import cubic_upsample_rows


class ResidualBlock(nn.Module):
    """conv3x3 - ReLU - conv3x3, added to the input (no batch norm, as EDSR; residual scaling only matters for wide nets)."""

    def __init__(self, channels: int, res_scale: float = 1.0):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1),
        )
        self.res_scale = res_scale

    def forward(self, x):
        return x + self.res_scale * self.body(x)


class AxialPixelShuffle(nn.Module):
    """Sub-pixel up-sampling along rows only: ``(N, C*r, H, W) -> (N, C, H*r, W)``."""

    def __init__(self, factor: int):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        n, cr, h, w = x.shape
        r = self.factor
        c = cr // r
        return x.reshape(n, c, r, h, w).permute(0, 1, 3, 2, 4).reshape(n, c, h * r, w)


class Generator(nn.Module):
    """Residual CNN that doubles the row count of a 1-channel image.

    Parameters
    ----------
    channels : int
        Feature channels (paper: "lightweight"; 32 by default).
    blocks : int
        Residual blocks.
    scale : int
        Up-sampling factor along rows; only 2 (the paper's factor) is implemented.

    Input ``(N, 1, h, W)`` in [0, 1] intensity units; output ``(N, 1, 2h, W)``.
    """

    def __init__(self, channels: int = 32, blocks: int = 8, scale: int = 2):
        super().__init__()
        if scale != 2:
            raise param_error("scale", "Generator", "2 (the paper's factor; others are not implemented)", scale)
        self.scale = scale
        self.head = nn.Conv2d(1, channels, 3, padding=1)
        self.body = nn.Sequential(*[ResidualBlock(channels) for _ in range(blocks)], nn.Conv2d(channels, channels, 3, padding=1))
        self.up = nn.Sequential(nn.Conv2d(channels, channels * scale, 3, padding=1), AxialPixelShuffle(scale), nn.ReLU(inplace=True))
        self.tail = nn.Conv2d(channels, 1, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        # The fixed cubic path stays float32 under bf16 autocast: bf16 would quantise it to ~1/256.
        with torch.autocast(device_type=lr.device.type, enabled=False):
            base = cubic_upsample_rows(lr.float())
        f = self.head(lr)
        f = f + self.body(f)
        return base + self.tail(self.up(f))


class CubicUpsampler(nn.Module):
    """The generator's fixed path alone: Keys cubic up-sampling by 2 along rows (what an untrained
    :class:`Generator`, whose last convolution is zero, returns). Fills the pixels that ROI-only
    super-resolution leaves out (:func:`srnomogram.sr.apply.super_resolve_array`)."""

    scale = 2

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return cubic_upsample_rows(lr.float())


def receptive_radius(G: nn.Module) -> tuple[int, int]:
    """How far an output of ``G`` reaches into its input: ``(along, across)`` input pixels on each side.

    ``along`` counts input rows (the up-sampled axis), ``across`` input columns. Derived from the
    convolution stack in forward order (every convolution of :class:`Generator` lies on one path;
    the residual skips reach less far): a k x k convolution with dilation d adds ``d (k - 1) / 2``
    pixels of its own input; after the sub-pixel shuffle those pixels are high-resolution rows, half
    an input row each. The fixed cubic path reads rows ``i - 1 .. i + 2`` (radius 2).
    ``tests/python/sr/test_networks.py`` checks it against impulse responses.
    """
    before, after, shuffled = [0, 0], [0, 0], False
    for m in G.modules():
        if isinstance(m, AxialPixelShuffle):
            shuffled = True
        elif isinstance(m, nn.Conv2d):
            acc = after if shuffled else before
            for ax in (0, 1):
                acc[ax] += m.dilation[ax] * (m.kernel_size[ax] - 1) // 2
    scale = getattr(G, "scale", 2)
    along = before[0] + -(-after[0] // scale)
    return max(along, 2), before[1] + after[1]


class PatchDiscriminator(nn.Module):
    """PatchGAN: strided 4x4 convolutions with LeakyReLU; one real/fake logit per receptive-field patch.

    Spectral normalisation (Miyato et al., ICLR 2018) keeps it stable without batch statistics,
    so results do not depend on the batch composition.
    """

    def __init__(self, channels: int = 32, layers: int = 3):
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        mods = []
        c_in, c = 1, channels
        for i in range(layers):
            mods += [sn(nn.Conv2d(c_in, c, 4, stride=2 if i < layers - 1 else 1, padding=1)), nn.LeakyReLU(0.2, inplace=True)]
            c_in, c = c, min(c * 2, channels * 4)
        mods.append(sn(nn.Conv2d(c_in, 1, 3, padding=1)))
        self.net = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
