"""On-device train/eval transforms against torchvision's own preprocessing."""

import numpy as np
import pytest
import torch

from srnomogram.deep.networks import normalization, weights_enum
from srnomogram.deep.presets import EvalPreset, TrainPreset, precrop_size


def test_precrop_size_follows_torchvision_resize_to_crop_ratio():
    n = normalization("mobilenet_v2")
    assert precrop_size(n["crop_size"]) == n["resize_size"] == 256
    assert precrop_size(64) == 73


def test_eval_preset_equals_torchvision_weights_transforms():
    # torchvision's ImageClassification: resize 256 (identity here), centre crop 224, normalise.
    ref_t = weights_enum("mobilenet_v2").transforms()
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (3, 1, 256, 256), dtype=torch.uint8, generator=g)
    ours = EvalPreset(224)(x)
    ref = ref_t(x.expand(-1, 3, -1, -1).float() / 255.0)
    assert ours.shape == (3, 3, 224, 224)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-5)


def _find_crop(src, out, s):
    """Offsets (r, c, flipped) such that ``out`` is that crop of ``src``; None if none matches."""
    p = src.shape[-1]
    for flipped, cand in ((False, out), (True, out.flip(-1))):
        for r in range(p - s + 1):
            for c in range(p - s + 1):
                if torch.equal(src[r : r + s, c : c + s], cand):
                    return r, c, flipped
    return None


def test_train_preset_outputs_are_crops_or_flipped_crops_of_the_input():
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (64, 1, 12, 12), dtype=torch.uint8, generator=g)
    pre = TrainPreset(8)
    out = pre(x, torch.Generator().manual_seed(3))
    # undo the normalisation of channel 0 to recover the grey values
    grey = torch.round((out[:, 0] * pre.std[0] + pre.mean[0]) * 255).to(torch.uint8)
    found = [_find_crop(x[i, 0], grey[i], 8) for i in range(64)]
    assert all(f is not None for f in found)
    flips = sum(f[2] for f in found)
    offsets = {(f[0], f[1]) for f in found}
    assert 20 <= flips <= 44  # Binomial(64, 0.5): beyond 3 sd otherwise
    assert len(offsets) > 10  # offsets vary over the 5 x 5 positions
    # the three channels carry the same grey, each normalised with its own ImageNet mean/std
    g1 = (out[:, 1] * pre.std[1] + pre.mean[1])
    torch.testing.assert_close(g1, grey.float() / 255, rtol=0, atol=1e-5)


def test_train_preset_is_reproducible_for_a_seed_and_never_flips_at_prob_zero():
    x = torch.randint(0, 256, (16, 1, 10, 10), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    a = TrainPreset(8)(x, torch.Generator().manual_seed(5))
    b = TrainPreset(8)(x, torch.Generator().manual_seed(5))
    c = TrainPreset(8)(x, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    out = TrainPreset(8, hflip_prob=0.0)(x, torch.Generator().manual_seed(5))
    pre = TrainPreset(8)
    grey = torch.round((out[:, 0] * pre.std[0] + pre.mean[0]) * 255).to(torch.uint8)
    assert all(_find_crop(x[i, 0], grey[i], 8)[2] is False or torch.equal(grey[i], grey[i].flip(-1)) for i in range(16))


@pytest.mark.parametrize("p,s", [(9, 9), (12, 8)])
def test_eval_preset_takes_the_centre(p, s):
    x = torch.arange(p * p, dtype=torch.float32).reshape(1, 1, p, p).to(torch.uint8)
    o = (p - s) // 2
    assert torch.equal(EvalPreset(s).center(x), x[..., o : o + s, o : o + s])
