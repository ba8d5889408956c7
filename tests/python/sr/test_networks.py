"""Generator / discriminator shapes and the generator's design invariants."""

import numpy as np
import pytest
import torch

from srnomogram.errors import InputError
from srnomogram.sr.degradation import cubic_upsample_rows
from srnomogram.sr.networks import AxialPixelShuffle, Generator, PatchDiscriminator


def test_generator_doubles_rows_only():
    G = Generator(channels=8, blocks=2)
    y = G(torch.rand(3, 1, 17, 23))
    assert y.shape == (3, 1, 34, 23)


def test_untrained_generator_is_keys_cubic_interpolation():
    torch.manual_seed(0)
    G = Generator(channels=8, blocks=2)
    x = torch.rand(2, 1, 12, 10)
    torch.testing.assert_close(G(x), cubic_upsample_rows(x), rtol=0, atol=0)


def test_axial_pixel_shuffle_interleaves_channel_pairs_into_rows():
    x = torch.arange(2 * 4 * 3 * 5, dtype=torch.float32).view(2, 4, 3, 5)  # C*r = 4, r = 2 -> C = 2
    y = AxialPixelShuffle(2)(x)
    assert y.shape == (2, 2, 6, 5)
    ref = np.empty((2, 2, 6, 5), np.float32)
    xn = x.numpy()
    for c in range(2):
        for i in range(3):
            for r in range(2):
                ref[:, c, 2 * i + r] = xn[:, 2 * c + r, i]
    np.testing.assert_array_equal(y.numpy(), ref)


def test_patch_discriminator_gives_a_map_of_logits():
    D = PatchDiscriminator(8)
    out = D(torch.rand(4, 1, 32, 32))
    assert out.shape[0] == 4 and out.shape[1] == 1 and out.shape[2] >= 4 and out.shape[3] >= 4


def test_generator_only_implements_scale_2():
    with pytest.raises(InputError, match="'scale' parameter of Generator"):
        Generator(scale=3)


@pytest.mark.parametrize("blocks", [0, 1, 3])
def test_receptive_radius_is_the_reach_of_an_impulse(blocks):
    """An input pixel changes output rows 2i, 2i+1 of LR rows i within ``along`` of it and columns within ``across``: no further, and that far."""
    from srnomogram.sr.networks import receptive_radius

    torch.manual_seed(blocks)
    G = Generator(channels=8, blocks=blocks).eval()
    torch.nn.init.normal_(G.tail.weight, std=0.3)  # a trained, non-zero last layer
    along, across = receptive_radius(G)
    assert (along, across) == (2 * blocks + 4, 2 * blocks + 4)
    x = torch.rand(1, 1, 61, 61, dtype=torch.float64)
    G = G.double()
    with torch.no_grad():
        base = G(x)
        x2 = x.clone()
        x2[0, 0, 30, 30] += 1.0
        diff = (G(x2) - base)[0, 0].abs() > 0
    rows, cols = np.nonzero(diff.numpy())
    assert np.abs(rows // 2 - 30).max() == along
    assert np.abs(cols - 30).max() == across
