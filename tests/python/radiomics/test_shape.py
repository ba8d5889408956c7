"""The fast mesh coefficients against PyRadiomics' own C routine (cShape.calculate_coefficients)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from srnomogram.radiomics.shape import mesh_area_volume, mesh_diameters, mesh_vertices

radiomics = pytest.importorskip("radiomics")
cShape = radiomics.cShape


def _padded(inner: np.ndarray) -> np.ndarray:
    m = np.zeros(tuple(s + 2 for s in inner.shape), dtype=bool)
    m[1:-1, 1:-1, 1:-1] = inner
    return m


def _check_equal(mask, spacing):
    sa, vol, diam = cShape.calculate_coefficients(mask, np.asarray(spacing, dtype=float))
    sa2, vol2 = mesh_area_volume(mask, spacing)
    diam2 = mesh_diameters(mask, spacing)
    assert sa2 == pytest.approx(sa, rel=1e-12, abs=1e-12)
    assert vol2 == pytest.approx(vol, rel=1e-10, abs=1e-12)
    # same candidate coordinates and the same floating-point expression: bit-identical maxima
    assert diam2 == tuple(diam)


def test_single_voxel_vertices_and_diameters_match_pyradiomics():
    m = _padded(np.ones((1, 1, 1), dtype=bool))
    assert len(mesh_vertices(m)) == 6  # one vertex per face of the voxel
    _check_equal(m, (1.0, 2.0, 3.0))
    # analytic: farthest vertices are the two x-face centres, 1 voxel = 3 mm apart
    assert mesh_diameters(m, (1.0, 2.0, 3.0))[3] == 3.0


@pytest.mark.parametrize("seed", range(40))
def test_random_speckle_masks_match_cshape(seed):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 5)), int(rng.integers(1, 12)), int(rng.integers(1, 12)))
    inner = rng.random(shape) < rng.uniform(0.2, 0.8)
    spacing = (1.0, 0.07, 0.07) if seed % 2 else tuple(np.round(rng.uniform(0.3, 3, 3), 3))
    _check_equal(_padded(inner), spacing)


@pytest.mark.parametrize("seed", range(12))
def test_smooth_blobs_match_cshape(seed):
    """Blobs large enough that the plane hulls and the pair search are exercised (one slice and 3D)."""
    rng = np.random.default_rng(100 + seed)
    nz = 1 if seed % 2 == 0 else int(rng.integers(2, 8))
    field = ndimage.gaussian_filter(rng.random((nz, 50, 60)), sigma=float(rng.uniform(1.5, 5)))
    inner = field > np.quantile(field, rng.uniform(0.3, 0.7))
    spacing = (1.0, 0.0645, 0.0645) if seed % 3 else tuple(np.round(rng.uniform(0.3, 3, 3), 3))
    _check_equal(_padded(inner), spacing)


def test_mask_filling_its_box_matches_cshape():
    """A lesion touching every side of its bounding box (the crop PyRadiomics makes)."""
    _check_equal(_padded(np.ones((1, 30, 17), dtype=bool)), (1.0, 0.1, 0.07))
    _check_equal(_padded(np.ones((3, 5, 4), dtype=bool)), (2.0, 0.5, 0.5))


@pytest.mark.parametrize("seed", range(30))
def test_plane_hull_vertices_are_qhulls(seed):
    """_hull2d (octagon throw-away, then monotone chain) gives the hull vertices Qhull finds."""
    from scipy.spatial import ConvexHull

    from srnomogram.radiomics.shape import _hull2d

    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 400))
    if seed % 3 == 0:  # a disc of lattice points: many on the boundary, many collinear
        r = int(rng.integers(3, 40))
        yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
        pts = np.c_[yy.ravel(), xx.ravel()][(yy ** 2 + xx ** 2).ravel() <= r * r]
    else:
        pts = rng.integers(-50, 50, size=(n, 2))
        pts = np.unique(pts, axis=0)
    ours = set(map(tuple, pts[_hull2d(pts)]))
    ref = set(map(tuple, pts[ConvexHull(pts.astype(float)).vertices]))
    assert ours == ref
