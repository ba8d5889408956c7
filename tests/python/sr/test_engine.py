"""Patch sampling and device selection."""

import numpy as np
import pytest
import torch

from srnomogram.errors import InputError
from srnomogram.sr.engine import PatchSampler, resolve_device


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


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA device is available"):
            resolve_device("cuda")


@pytest.mark.parametrize("supported", [True, False])
def test_auto_precision_is_bf16_only_on_a_cuda_device_that_supports_it(monkeypatch, supported):
    """The CUDA choice, tested on the CPU by mocking the device capability."""
    from srnomogram.sr import SuperResolver
    from srnomogram.sr.engine import resolve_amp, use_bf16

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: supported)
    cuda = resolve_device("cuda")
    assert cuda.type == "cuda"
    assert resolve_amp("auto", cuda) is supported and use_bf16(cuda) is supported
    assert resolve_amp("bf16", cuda) is True and resolve_amp("none", cuda) is False  # asked for: as asked
    assert resolve_amp("auto", torch.device("cpu")) is False
    model = SuperResolver()
    model.device_ = cuda
    assert model._bf16() is supported
