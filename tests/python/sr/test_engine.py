"""Patch sampling (device and precision choices: tests/python/test_torch.py)."""

import numpy as np

from srnomogram.sr.engine import PatchSampler


def test_patch_sampler_scales_to_unit_range_and_is_seeded():
    planes = [np.full((40, 50), 255, np.uint8), np.zeros((60, 33), np.uint8)]
    s = PatchSampler(planes, [(0.0, 1 / 255)] * 2, 32, seed=3)
    b = s.sample(64)
    assert b.shape == (64, 1, 32, 32) and b.dtype == np.float32
    assert set(np.unique(b)) <= {0.0, 1.0}
    np.testing.assert_array_equal(PatchSampler(planes, [(0.0, 1 / 255)] * 2, 32, seed=3).sample(64), b)


def test_patch_sampler_skips_planes_smaller_than_a_patch_and_weights_by_area():
    planes = [np.zeros((20, 20), np.uint8), np.zeros((32, 32), np.uint8), np.zeros((40, 40), np.uint8)]
    s = PatchSampler(planes, [(0.0, 1.0)] * 3, 32, seed=0)
    assert s.usable.tolist() == [1, 2]
    np.testing.assert_allclose(s.weights, [1 / 82, 81 / 82])


def test_patch_sampler_crops_are_taken_from_the_image():
    a = np.arange(48 * 48, dtype=np.float32).reshape(48, 48)
    b = PatchSampler([a], [(0.0, 1.0)], 16, seed=1).sample(8)[:, 0]
    for p in b:  # transposes / flips of a crop: each patch's value set is a 16x16 block of a
        r0, c0 = divmod(int(p.min()), 48)
        np.testing.assert_array_equal(np.sort(p.ravel()), np.sort(a[r0 : r0 + 16, c0 : c0 + 16].ravel()))
