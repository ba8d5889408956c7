"""Fixtures for the SR tests: synthetic images with edges and texture, and one tiny fitted model."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

TINY = dict(channels=8, blocks=2, patch_size=32, iterations=120, batch_size=8, lr=1e-3, noise_sigma=0.05, seed=0, device="cpu", amp="none", progress=False)


def synthetic_image(seed: int, shape=(96, 96)) -> np.ndarray:
    """uint8 image: overlapping discs and bars (sharp edges) on a smooth background with fine texture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(float)
    img = 0.3 + 0.2 * ndimage.gaussian_filter(rng.standard_normal(shape), 8) * 8
    for _ in range(6):
        cy, cx, r = rng.uniform(0, shape[0]), rng.uniform(0, shape[1]), rng.uniform(5, 18)
        img = np.where((yy - cy) ** 2 + (xx - cx) ** 2 < r**2, rng.uniform(0.1, 0.9), img)
    for _ in range(3):
        y0 = rng.integers(0, shape[0] - 4)
        img[y0 : y0 + rng.integers(2, 5), :] = rng.uniform(0.6, 1.0)
    img = ndimage.gaussian_filter(img, 0.6) + 0.02 * ndimage.gaussian_filter(rng.standard_normal(shape), 0.7)
    return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def train_images():
    return [synthetic_image(s) for s in range(8)]


@pytest.fixture(scope="session")
def heldout_images():
    return [synthetic_image(100 + s) for s in range(3)]


@pytest.fixture(scope="session")
def fitted(train_images):
    from srnomogram.sr import SuperResolver

    return SuperResolver(**TINY).fit_images(train_images)
