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


def _impulse_reach(G, size=(101, 103), phases=1):
    """The farthest (LR rows, columns) an input impulse moves the output, over ``phases`` x ``phases`` impulse positions."""
    G = G.double().eval()
    torch.manual_seed(0)
    x = torch.rand(1, 1, *size, dtype=torch.float64)
    reach = [0, 0]
    with torch.no_grad():
        base = G(x)
        for py in range(40, 40 + phases):
            for px in range(44, 44 + phases):
                x2 = x.clone()
                x2[0, 0, py, px] += 1.0
                rows, cols = np.nonzero(((G(x2) - base)[0, 0].abs() > 0).numpy())
                reach = [max(reach[0], int(np.abs(rows // 2 - py).max())), max(reach[1], int(np.abs(cols - px).max()))]
    return tuple(reach)


@pytest.mark.parametrize("name, params, blocks", [("edsr", None, 0), ("edsr", None, 3), ("unet", None, 0), ("unet", None, 2),
                                                  ("unet", {"levels": 1}, 1), ("unet", {"levels": 3}, 0)])
def test_each_registered_receptive_radius_is_the_reach_of_an_impulse_at_every_pooling_phase(name, params, blocks):
    """The radius a generator registers is what an impulse reaches, at its farthest over the positions
    of a pooling window (a U-Net reaches further from some than from others): no further, and that far."""
    from srnomogram.sr.networks import build_generator, conv_reach, generator_spec, receptive_radius, window_align

    spec = generator_spec(name, params, channels=8, blocks=blocks)  # 4 channels: ReLUs may all close on the farthest path
    torch.manual_seed(blocks)
    G = build_generator(spec)
    torch.nn.init.normal_(G.tail.weight, std=0.3)  # a trained, non-zero last layer
    assert receptive_radius(G) == receptive_radius(spec)
    if name == "edsr":
        assert receptive_radius(spec) == conv_reach(G) == (2 * blocks + 4, 2 * blocks + 4)
        assert window_align(G) == 1
    else:
        assert window_align(G) == 2 ** spec["params"]["levels"]
    assert _impulse_reach(G, phases=window_align(G)) == receptive_radius(spec)


def test_an_untrained_unet_is_keys_cubic_interpolation_at_any_size():
    from srnomogram.sr.degradation import cubic_upsample_rows
    from srnomogram.sr.networks import build_generator, generator_spec

    G = build_generator(generator_spec("unet", {"levels": 2}, channels=4, blocks=1)).eval()
    x = torch.rand(2, 1, 13, 22)  # not multiples of 4: padded inside, cropped back
    with torch.no_grad():
        assert G(x).shape == (2, 1, 26, 22)
        torch.testing.assert_close(G(x), cubic_upsample_rows(x), rtol=0, atol=0)


def _rc(prefix, n):
    """State-dict keys of ``n`` ResidualBlocks under ``prefix``: two convolutions each (body.0, body.2)."""
    return [f"{prefix}.{i}.body.{j}.{p}" for i in range(n) for j in (0, 2) for p in ("weight", "bias")]


def _wb(*names):
    return [f"{n}.{p}" for n in names for p in ("weight", "bias")]


# Pinned on the code before Generator and UNetGenerator shared their up-sampling end (commit aae85c8):
# the same keys in the same order, and, under torch.manual_seed(0), the same initial weights (a
# SHA-256 of every key, shape and float32 byte, in state_dict order), so seeded fits and saved
# checkpoints stay as they were. The forward pin (tail set to seeded non-zero weights, as after
# training) is a float sum: tolerance for CPU kernels, not a digest.
@pytest.mark.parametrize("name, keys, digest, out", [
    ("edsr", _wb("head") + _rc("body", 8) + _wb("body.8", "up.0", "tail"),
     "f359088a6a8ed4b6c245cfc322f2435826eb8d701568c35061c81d370508213e", (296.42558404803276, 0.4248647093772888)),
    ("unet", _wb("head") + _rc("enc", 2) + _rc("mid", 8) + _wb("merge.0", "merge.1") + _rc("dec", 2) + _wb("up.0", "tail"),
     "5ee30827cb73d5c3d096b13f00e8501cb6797723dcc275b2187e49b58da3d33f", (297.44593478552997, 0.34491872787475586)),
])
def test_the_built_in_generators_keep_their_state_dict_seeded_weights_and_output(name, keys, digest, out):
    import hashlib

    from srnomogram.sr.networks import build_generator, generator_spec

    torch.manual_seed(0)
    G = build_generator(generator_spec(name))
    sd = G.state_dict()
    assert list(sd) == keys
    assert sd["up.0.weight"].shape == (64, 32, 3, 3) and sd["tail.weight"].shape == (1, 32, 3, 3)
    assert not sd["tail.weight"].any() and not sd["tail.bias"].any()
    h = hashlib.sha256()
    for k, v in sd.items():
        h.update(k.encode()), h.update(str(tuple(v.shape)).encode()), h.update(v.contiguous().numpy().tobytes())
    assert h.hexdigest() == digest
    torch.manual_seed(1)
    with torch.no_grad():
        G.tail.weight.normal_(0, 0.1), G.tail.bias.fill_(0.01)
        y = G(torch.rand(2, 1, 13, 11)).double()
    assert y.shape == (2, 1, 26, 11)
    assert (y.sum().item(), y[1, 0, 20, 7].item()) == pytest.approx(out, rel=1e-5, abs=1e-6)


def test_the_registry_names_its_choices_and_checks_generator_params():
    from srnomogram.sr.networks import generator_names, generator_spec, register_generator, spec_of

    assert generator_names()[:2] == ("edsr", "unet")
    assert generator_spec() == {"generator": "edsr", "params": {"channels": 32, "blocks": 8, "scale": 2}}
    assert generator_spec("unet", {"levels": 3}, channels=8)["params"] == {"channels": 8, "blocks": 8, "scale": 2, "levels": 3}
    with pytest.raises(InputError, match=r"'generator' parameter of SuperResolver must be one of \['edsr', 'unet'"):
        generator_spec("srgan")
    with pytest.raises(InputError, match=r"'generator_params' parameter of SuperResolver must be a dict with keys among \['levels'\].*Got \{'depth': 3\}"):
        generator_spec("unet", {"depth": 3})
    with pytest.raises(InputError, match="set those on SuperResolver itself"):
        generator_spec("edsr", {"channels": 3})
    with pytest.raises(InputError, match="'name' parameter of register_generator must be a name not yet registered"):
        register_generator("edsr", build=Generator, receptive_radius=lambda p: (4, 4))
    with pytest.raises(InputError, match="'defaults' parameter of register_generator"):
        register_generator("other", build=Generator, receptive_radius=lambda p: (4, 4), defaults={"blocks": 2})
    with pytest.raises(InputError, match="was not built by build_generator"):
        spec_of(Generator(channels=4, blocks=0))
