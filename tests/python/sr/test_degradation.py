"""The paper's degradation (noise + down-sampling by 2) and the interpolators, against analytic values and SciPy."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from srnomogram.errors import InputError
from srnomogram.sr.degradation import (
    FWHM_TO_SIGMA,
    antialias_downsample_axis,
    cubic_upsample_rows,
    degrade_axis,
    degrade_rows,
    gaussian_kernel1d,
    interpolate_axis,
)


def test_downsample_without_noise_keeps_every_second_row_exactly():
    x = np.random.default_rng(0).random((40, 30)).astype(np.float32)
    lr = degrade_axis(x, 0, noise_sigma=0.0)
    assert lr.shape == (20, 30)
    np.testing.assert_array_equal(lr, x[::2])
    lr1 = degrade_axis(x, 1, noise_sigma=0.0)
    assert lr1.shape == (40, 15)
    np.testing.assert_array_equal(lr1, x[:, ::2])


def test_degrade_axis_on_volume_halves_only_that_axis():
    v = np.random.default_rng(1).random((8, 12, 10)).astype(np.float32)
    lr = degrade_axis(v, 2, noise_sigma=0.0)
    assert lr.shape == (8, 12, 5)
    np.testing.assert_array_equal(lr, v[:, :, ::2])


def test_noise_is_gaussian_with_the_requested_sigma():
    x = np.full((400, 400), 0.5, dtype=np.float32)
    for sigma in (0.01, 0.05):
        noise = degrade_axis(x, 0, noise_sigma=sigma, seed=3) - 0.5
        assert noise.std() == pytest.approx(sigma, rel=0.02)  # 80,000 draws: SE of SD ~0.25%
        assert abs(noise.mean()) < 4 * sigma / np.sqrt(noise.size)
        # Gaussian: 4th standardised moment 3 (SE ~0.02 here)
        assert (noise**4).mean() / noise.var() ** 2 == pytest.approx(3.0, abs=0.1)


def test_noise_is_reproducible_with_a_seed_and_differs_between_seeds():
    x = np.zeros((32, 32), dtype=np.float32)
    a, b, c = (degrade_axis(x, 0, noise_sigma=0.1, seed=s) for s in (5, 5, 6))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_blur_mode_equals_scipy_gaussian_of_fwhm_2_then_decimation():
    x = np.random.default_rng(2).random((64, 20)).astype(np.float32)
    lr = degrade_axis(x, 0, noise_sigma=0.0, mode="blur")
    sigma = 2 * FWHM_TO_SIGMA
    radius = (gaussian_kernel1d(2.0).numel() - 1) // 2
    ref = ndimage.gaussian_filter1d(x.astype(np.float64), sigma, axis=0, mode="nearest", radius=radius)[::2]
    np.testing.assert_allclose(lr, ref, atol=1e-6)


def test_gaussian_kernel_has_the_requested_fwhm():
    k = gaussian_kernel1d(2.0, dtype=torch.float64)
    x = np.arange(k.numel()) - (k.numel() - 1) / 2
    var = float((k.numpy() * x**2).sum())
    assert np.sqrt(var) == pytest.approx(2 / (2 * np.sqrt(2 * np.log(2))), rel=0.02)  # truncation at 3 sigma


def test_degradation_rejects_odd_lengths_and_unknown_modes():
    with pytest.raises(InputError, match="divisible by 2"):
        degrade_rows(torch.zeros(1, 1, 7, 4))
    with pytest.raises(InputError, match="'mode' parameter of degrade_rows"):
        degrade_rows(torch.zeros(1, 1, 8, 4), mode="box")


def test_keys_cubic_keeps_lr_rows_and_is_exact_for_quadratics():
    t = np.arange(10, dtype=np.float64)
    q = 0.3 * t**2 - 2 * t + 1
    lr = torch.tensor(q).view(1, 1, 10, 1).repeat(1, 1, 1, 3)
    hr = cubic_upsample_rows(lr)[0, 0, :, 0].numpy()
    assert hr.shape == (20,)
    np.testing.assert_array_equal(hr[::2], q)
    tj = np.arange(20) / 2
    interior = slice(2, 16)  # mid-points whose 4-tap stencil is inside the signal
    np.testing.assert_allclose(hr[interior], (0.3 * tj**2 - 2 * tj + 1)[interior], atol=1e-12)


def test_reference_interpolators_follow_the_sampling_convention():
    lr = np.arange(6, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    lin = interpolate_axis(lr, 0, 1)
    np.testing.assert_allclose(lin[:11, 0], np.arange(11) / 2, atol=1e-6)  # last sample extrapolated flat
    near = interpolate_axis(lr, 0, 0)
    np.testing.assert_array_equal(near[:, 0], np.repeat(np.arange(6), 2))
    cub = interpolate_axis(lr, 0, 3)
    np.testing.assert_allclose(cub[::2], lr, atol=1e-5)


def test_antialias_downsample_returns_the_original_grid():
    x = np.random.default_rng(4).random((40, 24)).astype(np.float32)
    y = antialias_downsample_axis(x, 0)
    assert y.shape == (20, 24)
    np.testing.assert_allclose(antialias_downsample_axis(np.full((40, 24), 0.7, np.float32), 1), 0.7, atol=1e-6)
    # a linear ramp is preserved away from the edges (symmetric kernel centred on the kept samples)
    ramp = np.tile(np.arange(40, dtype=np.float32)[:, None], (1, 4))
    np.testing.assert_allclose(antialias_downsample_axis(ramp, 0)[3:-3, 0], np.arange(40)[::2][3:-3], atol=1e-4)
