"""Exact maximal Feret diameter against brute force and analytic values."""

import numpy as np
import pytest

from srnomogram.data.geometry import max_feret_diameter
from srnomogram.errors import InputError


def brute_force_all_pixels(mask, spacing):
    """Largest distance over ALL pairs of mask pixel centres (no hull, no boundary)."""
    sp = np.broadcast_to(np.asarray(spacing, float), (mask.ndim,))[::-1]
    pts = np.argwhere(mask).astype(float) * sp
    d2 = ((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1)
    return float(np.sqrt(d2.max()))


@pytest.mark.parametrize("seed", range(12))
def test_max_feret_diameter_equals_all_pairs_on_random_blobs(seed):
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    mask = ndimage.gaussian_filter(rng.standard_normal((40, 50)), 3) > 0.05  # several irregular blobs
    spacing = (rng.uniform(0.05, 0.2), rng.uniform(0.05, 0.2))
    assert max_feret_diameter(mask, spacing) == pytest.approx(brute_force_all_pixels(mask, spacing), rel=1e-12)


def test_max_feret_diameter_of_a_rectangle_is_its_centre_diagonal():
    mask = np.zeros((30, 40), bool)
    mask[5:15, 3:33] = True  # 10 rows x 30 cols
    assert max_feret_diameter(mask, (0.5, 2.0)) == pytest.approx(np.hypot(29 * 0.5, 9 * 2.0), rel=1e-12)


def test_max_feret_diameter_handles_degenerate_shapes():
    one = np.zeros((5, 5), bool)
    one[2, 3] = True
    assert max_feret_diameter(one) == 0.0
    line = np.zeros((5, 20), bool)
    line[2, 4:15] = True  # collinear points: Qhull alone would fail
    assert max_feret_diameter(line, 0.1) == pytest.approx(1.0, rel=1e-12)
    diag = np.eye(9, dtype=bool)
    assert max_feret_diameter(diag) == pytest.approx(8 * np.sqrt(2), rel=1e-12)


def test_max_feret_diameter_in_3d_with_anisotropic_spacing():
    rng = np.random.default_rng(3)
    mask = rng.random((6, 9, 11)) > 0.7
    spacing = (0.3, 0.4, 1.5)  # x, y, z
    assert max_feret_diameter(mask, spacing) == pytest.approx(brute_force_all_pixels(mask, spacing), rel=1e-12)
    flat = np.zeros((4, 10, 10), bool)
    flat[2, 2:8, 1:9] = True  # coplanar points
    assert max_feret_diameter(flat, spacing) == pytest.approx(brute_force_all_pixels(flat, spacing), rel=1e-12)


def test_max_feret_diameter_rejects_an_empty_mask_and_bad_spacing():
    with pytest.raises(InputError, match="empty mask"):
        max_feret_diameter(np.zeros((4, 4)))
    with pytest.raises(InputError, match="'spacing' parameter of max_feret_diameter"):
        max_feret_diameter(np.ones((4, 4)), spacing=0)
