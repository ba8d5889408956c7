"""The paper's degradation and the fixed interpolators that go with it.

Yang & Ma make low-resolution (LR) copies of their ultrasound images by adding Gaussian noise and
down-sampling the out-of-plane axis by 2; pairs (LR, original) train the GAN. SMORE (Zhao et al.,
"SMORE: a self-supervised anti-aliasing and super-resolution algorithm for MRI using deep
learning", IEEE TMI 2021) does the same along one *in-plane* axis so that the high-resolution
plane teaches the network what the low-resolution axis lacks. This module holds that degradation
and the interpolators, all acting on the **row axis** (dim -2) of ``(N, C, H, W)`` tensors; callers
transpose to act on another axis.

Sampling convention (used everywhere in :mod:`srnomogram.sr`)
---------------------------------------------------------------
Down-sampling by ``f`` keeps the samples ``0, f, 2f, ...``: LR sample ``i`` sits exactly on HR sample
``f * i``. Up-sampling LR length ``h`` gives HR length ``f * h``, HR sample ``j`` lying at LR
coordinate ``j / f``. So the first sample keeps its position (the image origin is unchanged) and the
spacing along the axis is divided by ``f``.

Intensities are floats scaled to [0, 1] (uint8 images / 255); ``noise_sigma`` is in those units.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError, param_error

MODES = ("downsample", "blur")
FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


def gaussian_kernel1d(fwhm: float, dtype=torch.float32, device=None) -> torch.Tensor:
    """Normalised 1D Gaussian kernel of full width at half maximum ``fwhm`` (pixels), radius ceil(3 sigma)."""
    sigma = fwhm * FWHM_TO_SIGMA
    radius = max(1, int(math.ceil(3.0 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).to(dtype=dtype, device=device)


def blur_rows(x: torch.Tensor, fwhm: float) -> torch.Tensor:
    """Gaussian blur along dim -2 of an ``(N, C, H, W)`` tensor, edges replicated (scipy's ``mode='nearest'``)."""
    k = gaussian_kernel1d(fwhm, dtype=x.dtype, device=x.device)
    r = (k.numel() - 1) // 2
    n, c, h, w = x.shape
    y = F.pad(x.reshape(n * c, 1, h, w), (0, 0, r, r), mode="replicate")
    return F.conv2d(y, k.view(1, 1, -1, 1)).reshape(n, c, h, w)


def degrade_rows(
    hr: torch.Tensor,
    factor: int = 2,
    noise_sigma: float = 0.01,
    mode: str = "downsample",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Make the low-resolution copy of ``hr`` along its rows (dim -2), as the paper describes.

    Parameters
    ----------
    hr : torch.Tensor
        ``(N, C, H, W)`` float tensor, intensities in [0, 1]. ``H`` must be a multiple of ``factor``.
    factor : int
        Down-sampling factor (the paper: 2).
    noise_sigma : float
        Standard deviation of the additive Gaussian noise, in [0, 1] intensity units.
    mode : {"downsample", "blur"}
        ``"downsample"`` keeps every ``factor``-th row (the paper's "down-sampled by 2");
        ``"blur"`` first applies a Gaussian of FWHM ``factor`` pixels along the axis (SMORE's slice
        profile / anti-aliasing), then keeps every ``factor``-th row.
    generator : torch.Generator, optional
        Source of the noise (on ``hr``'s device), for reproducible pairs.

    Returns
    -------
    torch.Tensor
        ``(N, C, H // factor, W)``: ``hr[..., ::factor, :]`` (blurred first in ``"blur"`` mode)
        plus ``N(0, noise_sigma**2)`` noise. Not clipped, so the noise stays zero-mean.
    """
    if mode not in MODES:
        raise param_error("mode", "degrade_rows", f"one of {MODES}", mode)
    if hr.shape[-2] % factor:
        raise InputError(f"degrade_rows needs a row count divisible by {factor}. Got {hr.shape[-2]} rows; crop the image first.")
    x = blur_rows(hr, float(factor)) if mode == "blur" else hr
    lr = x[..., ::factor, :]
    if noise_sigma > 0:
        noise = torch.randn(lr.shape, generator=generator, device=lr.device, dtype=torch.float32)
        lr = lr + noise_sigma * noise.to(lr.dtype)
    return lr.contiguous()


def cubic_upsample_rows(lr: torch.Tensor) -> torch.Tensor:
    """Up-sample by 2 along dim -2 with Keys' cubic convolution (a = -0.5), edges replicated.

    With the sampling convention above, even HR rows are the LR rows and odd rows are the
    mid-points ``(-x[i-1] + 9 x[i] + 9 x[i+1] - x[i+2]) / 16`` (Keys, IEEE TASSP 1981), which is exact
    for quadratics. This is the generator's fixed skip path, so the network only learns a residual.
    """
    n, c, h, w = lr.shape
    k = torch.tensor([-1.0, 9.0, 9.0, -1.0], dtype=lr.dtype, device=lr.device) / 16.0
    y = F.pad(lr.reshape(n * c, 1, h, w), (0, 0, 1, 2), mode="replicate")
    mid = F.conv2d(y, k.view(1, 1, 4, 1)).reshape(n, c, h, w)
    return torch.stack((lr, mid), dim=-2).reshape(n, c, 2 * h, w)


# ---------------------------------------------------------------------------------------------
# NumPy front ends (one implementation: they call the torch functions above)
# ---------------------------------------------------------------------------------------------


def _rows_first(arr: np.ndarray, axis: int) -> tuple[np.ndarray, int]:
    axis = axis % arr.ndim
    return np.moveaxis(arr, axis, 0), axis


def degrade_axis(
    image: np.ndarray,
    axis: int,
    factor: int = 2,
    noise_sigma: float = 0.01,
    mode: str = "downsample",
    seed: int | None = 0,
) -> np.ndarray:
    """Degrade a 2D or 3D array along ``axis`` (see :func:`degrade_rows`); the axis length must divide by ``factor``.

    Returns a float32 array whose ``axis`` is ``factor`` times shorter.
    """
    arr = np.asarray(image, dtype=np.float32)
    moved, axis = _rows_first(arr, axis)
    h = moved.shape[0]
    t = torch.from_numpy(np.ascontiguousarray(moved.reshape(h, -1)))[None, None]  # (1, 1, H, rest)
    g = torch.Generator().manual_seed(int(seed)) if seed is not None else None
    lr = degrade_rows(t, factor, noise_sigma, mode, g)[0, 0].numpy()  # (H/f, rest)
    lr = lr.reshape((h // factor,) + moved.shape[1:])
    return np.moveaxis(lr, 0, axis)


def interpolate_axis(lr: np.ndarray, axis: int, order: int, factor: int = 2) -> np.ndarray:
    """Reference interpolators for the quality table: nearest (0), linear (1), cubic B-spline (3).

    SciPy's ``map_coordinates`` evaluates the LR array at ``j / factor`` along ``axis`` for
    ``j = 0 .. factor * h - 1`` (the convention of this module), edges replicated. Independent of the
    torch code that trains and applies the generator.
    """
    from scipy import ndimage

    lr = np.asarray(lr, dtype=np.float64)
    axis = axis % lr.ndim
    out_shape = list(lr.shape)
    out_shape[axis] = factor * lr.shape[axis]
    grids = list(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in out_shape], indexing="ij", sparse=False))
    grids[axis] = grids[axis] / factor
    if order == 0:  # map_coordinates rounds x.5 inconsistently; take the sample the HR row came from
        grids[axis] = np.floor(grids[axis])
    return ndimage.map_coordinates(lr, grids, order=order, mode="nearest").astype(np.float32)


def antialias_downsample_axis(hr: np.ndarray, axis: int, factor: int = 2) -> np.ndarray:
    """Back onto the original grid: Gaussian of FWHM ``factor`` HR pixels along ``axis``, then every ``factor``-th sample.

    The inverse of the up-sampling convention: HR sample ``factor * i`` is original sample ``i``.
    """
    from scipy import ndimage

    sigma = factor * FWHM_TO_SIGMA
    sm = ndimage.gaussian_filter1d(np.asarray(hr, dtype=np.float32), sigma, axis=axis, mode="nearest", truncate=3.0)
    sl = [slice(None)] * sm.ndim
    sl[axis % sm.ndim] = slice(None, None, factor)
    return np.ascontiguousarray(sm[tuple(sl)])
