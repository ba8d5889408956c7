"""SuperResolver: short training, held-out quality, determinism, persistence, parameter checks."""

import hashlib
import json

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from srnomogram.errors import CheckpointError, InputError
from srnomogram.sr import SuperResolver
from srnomogram.sr.quality import quality_table, summarise

from .conftest import TINY


def test_short_training_lowers_the_l1_loss_on_fixed_heldout_patches(fitted, heldout_images):
    from srnomogram.sr.engine import PatchSampler, evaluate
    from srnomogram.sr.networks import Generator

    assert len(fitted.history_) == TINY["iterations"]
    patches = PatchSampler(heldout_images, [(0.0, 1 / 255)] * len(heldout_images), 32, seed=7).sample(32)
    torch.manual_seed(TINY["seed"])
    untrained = Generator(TINY["channels"], TINY["blocks"])  # = Keys cubic interpolation
    before = evaluate(untrained, patches, noise_sigma=TINY["noise_sigma"], seed=1)
    after = evaluate(fitted.generator_, patches, noise_sigma=TINY["noise_sigma"], seed=1)
    assert after["l1"] < 0.8 * before["l1"]  # measured: 0.039 -> 0.024
    assert after["mse"] < 0.8 * before["mse"]


def test_short_training_beats_nearest_and_cubic_interpolation_on_heldout_images(fitted, heldout_images):
    summ = summarise(quality_table(fitted, heldout_images))
    # measured (120 iterations): nearest 24.0 dB / 0.58, cubic 25.7 / 0.63, SR 29.3 / 0.85
    assert summ.loc["sr", "psnr"] > summ.loc["nearest", "psnr"] + 2.0
    assert summ.loc["sr", "ssim"] > summ.loc["nearest", "ssim"] + 0.1
    assert summ.loc["sr", "psnr"] > summ.loc["cubic", "psnr"] + 1.0
    assert summ.loc["sr", "ssim"] > summ.loc["cubic", "ssim"] + 0.05


def test_same_seed_gives_identical_weights_and_another_seed_does_not(train_images):
    params = {**TINY, "iterations": 6}
    a = SuperResolver(**params).fit_images(train_images)
    b = SuperResolver(**params).fit_images(train_images)
    c = SuperResolver(**{**params, "seed": 1}).fit_images(train_images)
    for (k, va), vb, vc in zip(a.generator_.state_dict().items(), b.generator_.state_dict().values(), c.generator_.state_dict().values()):
        torch.testing.assert_close(va, vb, rtol=0, atol=0, msg=k)
    assert any(not torch.equal(va, vc) for va, vc in zip(a.generator_.state_dict().values(), c.generator_.state_dict().values()))
    assert [h["l1"] for h in a.history_] == [h["l1"] for h in b.history_]


def test_predict_doubles_2d_images_on_both_axes_and_transform_keeps_the_size(fitted, heldout_images):
    img = heldout_images[0][:50, :70]
    y = fitted.predict(img)
    assert y.shape == (100, 140) and y.dtype == np.float32
    t = fitted.transform(img)
    assert t.shape == img.shape
    # back on the original grid the SR image stays close to the original (it only restores detail)
    assert np.abs(t - img.astype(np.float32)).mean() < 8.0


def test_bf16_on_the_cpu_matches_float32_to_within_a_grey_level(fitted, heldout_images, train_images):
    """amp="bf16" (the "auto" choice on CUDA and on CPUs with native bf16; opt-in elsewhere) runs the generator's convolutions in bf16;
    its fixed cubic path stays float32, so SR differs from float32 SR by well under one grey level."""
    img = heldout_images[0]
    ref, ref_q = fitted.predict(img), summarise(quality_table(fitted, heldout_images))
    fitted.set_params(amp="bf16")
    try:
        assert fitted._bf16()
        fast, fast_q = fitted.predict(img), summarise(quality_table(fitted, heldout_images))
    finally:
        fitted.set_params(amp="none")
    assert not fitted._bf16() and fast.dtype == np.float32
    np.testing.assert_array_equal(fitted.predict(img), ref)  # float32 again: the same layout, kernels and numbers
    diff = np.abs(fast - ref)
    assert diff.max() < 1.0 and diff.mean() < 0.25  # grey levels of the uint8 input; measured 0.72 and 0.11
    assert fast_q.loc["sr", "psnr"] == pytest.approx(ref_q.loc["sr", "psnr"], abs=0.01)  # measured 0.0008 dB
    assert fast_q.loc["sr", "ssim"] == pytest.approx(ref_q.loc["sr", "ssim"], abs=0.0005)  # measured 8e-5
    # training in bf16 on the CPU runs and learns, too
    bf = SuperResolver(**{**TINY, "iterations": 30, "amp": "bf16"}).fit_images(train_images)
    l1 = [h["l1"] for h in bf.history_]
    assert np.isfinite(l1).all() and np.mean(l1[-10:]) < np.mean(l1[:10])


def test_predict_doubles_z_of_volumes_in_the_input_units(fitted):
    from scipy import ndimage

    rng = np.random.default_rng(0)
    smooth = ndimage.gaussian_filter(rng.standard_normal((6, 20, 24)), (1.5, 3, 3))
    vol = (smooth / smooth.std() * 300 + 100).astype(np.float32)  # arbitrary units, not [0, 1]
    y = fitted.predict(vol)
    assert y.shape == (12, 20, 24)
    # LR slices are HR slices 0, 2, 4, ...: SR must stay near them in the volume's own units
    assert np.abs(y[::2] - vol).mean() < 0.1 * vol.std()


def test_save_and_load_round_trip_with_weights_only(fitted, heldout_images, tmp_path):
    """Bit-equal predictions by construction: float32 always runs with the default weight layout, so
    neither an earlier bf16 call (channels-last weights) nor loading (default layout) picks other
    convolution kernels (they differed by up to 4.6e-5 on an AMD EPYC when the layout was left over)."""
    img = heldout_images[1]
    fitted.set_params(amp="bf16")
    try:
        fitted.predict(img[:40, :40])  # leaves nothing behind that float32 could see
    finally:
        fitted.set_params(amp="auto")
    fitted.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "meta.json").read_text(encoding="utf-8"))
    assert meta["params"]["channels"] == TINY["channels"]
    assert meta["generator_sha256"] == hashlib.sha256((tmp_path / "m" / "generator.pt").read_bytes()).hexdigest()
    state = torch.load(tmp_path / "m" / "generator.pt", weights_only=True)
    assert set(state) == set(fitted.generator_.state_dict())
    loaded = SuperResolver.load(tmp_path / "m", device="cpu")
    np.testing.assert_array_equal(loaded.predict(img), fitted.predict(img))
    assert loaded.get_params()["blocks"] == TINY["blocks"]


def test_load_reports_missing_corrupt_and_foreign_checkpoints(fitted, tmp_path):
    with pytest.raises(CheckpointError, match="not a SuperResolver checkpoint"):
        SuperResolver.load(tmp_path)
    fitted.save(tmp_path / "m")
    (tmp_path / "m" / "generator.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupted or was replaced: its SHA-256 does not match meta.json"):
        SuperResolver.load(tmp_path / "m")
    old = json.loads((tmp_path / "m" / "meta.json").read_text(encoding="utf-8"))
    old.pop("generator_sha256")  # a checkpoint written before hashes were recorded
    (tmp_path / "m" / "meta.json").write_text(json.dumps(old))
    with pytest.raises(CheckpointError, match="cannot be loaded"):
        SuperResolver.load(tmp_path / "m")
    fitted.save(tmp_path / "w")
    meta = json.loads((tmp_path / "w" / "meta.json").read_text(encoding="utf-8"))
    meta["params"]["channels"] = 16
    (tmp_path / "w" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="cannot be loaded"):
        SuperResolver.load(tmp_path / "w")
    meta["format"] = "other"
    (tmp_path / "w" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="belongs to another model"):
        SuperResolver.load(tmp_path / "w")


@pytest.mark.parametrize(
    "param, value, allowed",
    [("patch_size", 31, "an even int >= 8"), ("iterations", 0, "an int >= 1"), ("lr", -1.0, "a float > 0"),
     ("noise_sigma", float("nan"), "a float >= 0"), ("degradation", "box", "'downsample' or 'blur'"), ("scale", 4, "2"),
     ("amp", "fp16", "'auto', 'bf16' or 'none'")],
)
def test_bad_parameters_are_named_in_the_error(param, value, allowed, train_images):
    with pytest.raises(InputError, match=f"The '{param}' parameter of SuperResolver.fit must be {allowed}"):
        SuperResolver(**{**TINY, param: value}).fit_images(train_images)


def test_images_smaller_than_a_patch_are_rejected():
    with pytest.raises(InputError, match="smaller than the 32x32 patch"):
        SuperResolver(**TINY).fit_images([np.zeros((20, 40), np.uint8), np.zeros((40, 31), np.uint8)])


def test_non_finite_voxels_are_rejected_with_their_position(fitted):
    img = np.ones((40, 40), np.float32)
    img[3, 5] = np.nan
    with pytest.raises(InputError, match=r"1 non-finite voxel\(s\).*index \(3, 5\)"):
        SuperResolver(**TINY).fit_images([img])
    with pytest.raises(InputError, match="non-finite"):
        fitted.predict(img)


def test_one_slice_volumes_and_mixed_dimensions_are_rejected(fitted, train_images):
    with pytest.raises(InputError, match="one-slice volume is a 2D image"):
        fitted.predict(np.zeros((1, 30, 30), np.float32))
    with pytest.raises(InputError, match="both 2D images and 3D volumes"):
        SuperResolver(**TINY).fit_images([train_images[0], np.zeros((4, 40, 40), np.uint8)])


def test_unfitted_model_says_how_to_fit():
    with pytest.raises(NotFittedError, match="Call fit"):
        SuperResolver().predict(np.zeros((8, 8)))


def test_cuda_without_a_gpu_is_a_clear_error(train_images):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(InputError, match="no CUDA device"):
        SuperResolver(**{**TINY, "device": "cuda"}).fit_images(train_images)


def test_the_checkpoint_records_the_generator_spec_and_one_without_it_loads_the_default_generator(fitted, heldout_images, tmp_path):
    """Format /2 records {generator, params}; a checkpoint as format /1 wrote it (no spec, no generator
    parameters) loads as the default generator with the same weights and the same predictions."""
    img = heldout_images[0]
    fitted.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "meta.json").read_text(encoding="utf-8"))
    spec = {"generator": "edsr", "params": {"channels": TINY["channels"], "blocks": TINY["blocks"], "scale": 2}}
    assert meta["format"] == "srnomogram.sr/2" and meta["generator"] == spec == fitted.generator_spec_
    assert (meta["params"]["generator"], meta["params"]["generator_params"]) == ("edsr", None)
    meta["format"] = "srnomogram.sr/1"
    del meta["generator"], meta["params"]["generator"], meta["params"]["generator_params"]
    (tmp_path / "m" / "meta.json").write_text(json.dumps(meta))
    old = SuperResolver.load(tmp_path / "m", device="cpu")
    assert old.generator == "edsr" and old.generator_spec_ == spec
    np.testing.assert_array_equal(old.predict(img), fitted.predict(img))


def test_an_unknown_generator_or_generator_parameter_is_named_in_the_error(train_images, fitted, tmp_path):
    with pytest.raises(InputError, match=r"The 'generator' parameter of SuperResolver.fit must be one of \['edsr', 'unet'"):
        SuperResolver(**{**TINY, "generator": "srgan"}).fit_images(train_images)
    with pytest.raises(InputError, match=r"The 'generator_params' parameter of SuperResolver.fit must be a dict with keys among \[\]"):
        SuperResolver(**{**TINY, "generator_params": {"levels": 2}}).fit_images(train_images)
    fitted.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "meta.json").read_text(encoding="utf-8"))
    meta["params"]["generator"] = meta["generator"]["generator"] = "gone"  # registered by a module not imported
    (tmp_path / "m" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"meta.json: The 'generator' parameter of SuperResolver.load must be one of"):
        SuperResolver.load(tmp_path / "m")
