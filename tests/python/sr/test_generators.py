"""Swapping the SR generator: the built-in U-Net, and a generator added by this file alone.

The first block below is everything a new generator needs (a module and one register call); the
tests then train it, save, load and apply it (whole images, ROI windows with its own halo, worker
processes that rebuild it from its spec) through the public API only, and run the U-Net from a
study's ``sr.params``.
"""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch import nn

from srnomogram.sr import SuperResolver
from srnomogram.sr.degradation import cubic_upsample_rows
from srnomogram.sr.networks import AxialPixelShuffle, register_generator

from .conftest import TINY


# ----------------------------------------------------------- a new generator: this block is all of it
class ToyGenerator(nn.Module):
    """``blocks + 2`` k x k convolutions (ReLU between) at low resolution, an axial sub-pixel shuffle,
    added to Keys cubic interpolation."""

    def __init__(self, channels, blocks, scale=2, kernel=3):
        super().__init__()
        layers = [nn.Conv2d(1, channels, kernel, padding=kernel // 2), nn.ReLU()]
        for _ in range(blocks):
            layers += [nn.Conv2d(channels, channels, kernel, padding=kernel // 2), nn.ReLU()]
        layers += [nn.Conv2d(channels, scale, kernel, padding=kernel // 2), AxialPixelShuffle(scale)]
        self.body = nn.Sequential(*layers)

    def forward(self, lr):
        return cubic_upsample_rows(lr.float()) + self.body(lr)


def _toy_radius(p):
    r = (p["blocks"] + 2) * (p["kernel"] // 2)  # every convolution runs before the shuffle, at LR
    return r, r


register_generator("toy", build=ToyGenerator, receptive_radius=_toy_radius, defaults={"kernel": 3}, replace=True)
# ----------------------------------------------------------------------------------------------------


def _cohort(root, images, box=(slice(20, 44), slice(30, 60))):
    rows = []
    for k, img in enumerate(images):
        m = np.zeros(img.shape, np.uint8)
        m[box] = 255
        Image.fromarray(img).save(root / f"c{k}.png")
        Image.fromarray(m).save(root / f"c{k}_mask.png")
        rows.append(dict(case_id=f"c{k}", image=f"c{k}.png", mask=f"c{k}_mask.png", label=k % 2, spacing=0.1))
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    return root / "manifest.csv", box


def _pngs(df):
    return [np.asarray(Image.open(p), dtype=int) for p in df["image_sr"]]


def _roi_equals_whole(G, img, boxes, atol):
    """ROI-only SR (each box in a window of the generator's halo, aligned as it registered) against
    whole-image SR, inside each box; both grids."""
    from srnomogram.sr.apply import super_resolve_array

    for resample_back in (True, False):
        whole = super_resolve_array(G, img, "cpu", resample_back=resample_back, bf16=False)
        k = 1 if resample_back else 2
        for box in boxes:
            roi = super_resolve_array(G, img, "cpu", resample_back=resample_back, bf16=False, boxes=[box])
            f = [k if img.ndim == 2 or ax == 0 else 1 for ax in range(img.ndim)]  # 2D: both axes doubled; 3D: z
            inner = tuple(slice(n * b.start, n * b.stop) for n, b in zip(f, box))
            # float32, in grey levels: exact up to the order in which convolution kernels sum (PyTorch picks
            # them by size, so a window may run another kernel than the whole image: ~1e-4 at most)
            np.testing.assert_allclose(roi[inner], whole[inner], rtol=0, atol=atol, err_msg=f"{box}, resample_back={resample_back}")


BOXES = [(slice(80, 110), slice(100, 150)), (slice(0, 25), slice(0, 30)), (slice(170, 200), slice(201, 240)), (slice(121, 124), slice(41, 43))]


def test_the_unet_trains_saves_loads_and_applies_with_its_own_halo(train_images, heldout_images, tmp_path):
    from srnomogram.sr.apply import _sr01, intensity_scaling, roi_halo, sr_window
    from srnomogram.sr.engine import PatchSampler, evaluate
    from srnomogram.sr.networks import UNetGenerator, build_generator, generator_spec, window_align

    model = SuperResolver(**{**TINY, "iterations": 60, "generator": "unet", "generator_params": {"levels": 2}}).fit_images(train_images)
    spec = {"generator": "unet", "params": {"channels": TINY["channels"], "blocks": TINY["blocks"], "scale": 2, "levels": 2}}
    assert isinstance(model.generator_, UNetGenerator) and model.generator_spec_ == spec
    patches = PatchSampler(heldout_images, [(0.0, 1 / 255)] * len(heldout_images), 32, seed=7).sample(32)
    untrained = build_generator(spec)  # = Keys cubic interpolation
    before = evaluate(untrained, patches, noise_sigma=TINY["noise_sigma"], seed=1)["l1"]
    after = evaluate(model.generator_, patches, noise_sigma=TINY["noise_sigma"], seed=1)["l1"]
    assert after < 0.9 * before

    model.save(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "meta.json").read_text(encoding="utf-8"))["generator"] == spec
    loaded = SuperResolver.load(tmp_path / "m", device="cpu")
    assert isinstance(loaded.generator_, UNetGenerator) and loaded.generator_spec_ == spec
    np.testing.assert_array_equal(loaded.predict(heldout_images[0]), model.predict(heldout_images[0]))

    # ROI-only SR with the U-Net's own halo and pooling grid; a random last layer makes the network's part large
    G = build_generator(spec).eval()
    torch.manual_seed(3)
    torch.nn.init.normal_(G.tail.weight, std=0.3)
    img = (np.random.default_rng(4).random((200, 240)) * 255).astype(np.uint8)
    _roi_equals_whole(G, img, BOXES, atol=1e-3)
    # z-SR of a volume: planes pooled along z and y or x; a smaller U-Net so that the window is smaller than the volume
    G1 = build_generator(generator_spec("unet", {"levels": 1}, channels=4, blocks=0)).eval()
    torch.nn.init.normal_(G1.tail.weight, std=0.3)
    vol, box3 = (np.random.default_rng(6).random((64, 60, 62)) * 255).astype(np.uint8), (slice(29, 35), slice(30, 36), slice(27, 33))
    assert all(w.stop - w.start < n for w, n in zip(sr_window(box3, roi_halo(G1), vol.shape, window_align(G1)), vol.shape))
    _roi_equals_whole(G1, vol, [box3], atol=1e-3)
    # both are needed, whatever the CPU: a window off the pooling grid, or with half the context, is wrong by far more than rounding
    off, sc = intensity_scaling(img)
    x = (img.astype(np.float32) - off) * sc
    whole = _sr01(G, x, (0, 1), "cpu", True, False) / sc + off
    halo, box = roi_halo(G), (slice(80, 110), slice(100, 150))
    for start, pad in ((box[0].start - halo - 1, halo + 1), (box[0].start - halo // 2, halo // 2)):  # start 39 (odd), then half the halo
        win = (slice(start, box[0].stop + pad), slice(0, 240))
        part = _sr01(G, x[win], (0, 1), "cpu", True, False)[pad:pad + 30] / sc + off
        assert np.abs(part - whole[box[0]]).max() > 0.05

    # apply_manifest: ROI files equal whole-image files inside the lesion box (to a grey level: PNGs are rounded)
    manifest, box = _cohort(tmp_path, [im[:60, :70] for im in heldout_images[:2]])
    roi = loaded.apply_manifest(manifest, out_dir=tmp_path / "roi")
    whole = loaded.apply_manifest(manifest, out_dir=tmp_path / "whole", region="image")
    for a, b in zip(_pngs(roi), _pngs(whole)):
        assert np.abs(a[box] - b[box]).max() <= 1
    assert json.loads((tmp_path / "roi" / "c0_sr.png.json").read_text(encoding="utf-8"))["generator"] == spec


def test_a_generator_registered_in_one_file_runs_end_to_end(train_images, heldout_images, tmp_path, monkeypatch):
    """ToyGenerator (above) is fitted, saved, loaded and applied through the public API, by name; ROI
    SR uses the radius it registered; worker processes, which start with the built-ins only, rebuild
    it from the spec by importing the module that registered it."""
    from srnomogram.sr.networks import generator_names, receptive_radius

    assert "toy" in generator_names()
    model = SuperResolver(**{**TINY, "iterations": 10, "generator": "toy", "generator_params": {"kernel": 5}}).fit_images(train_images)
    spec = {"generator": "toy", "params": {"channels": TINY["channels"], "blocks": TINY["blocks"], "scale": 2, "kernel": 5}}
    assert isinstance(model.generator_, ToyGenerator) and model.generator_spec_ == spec
    assert receptive_radius(model.generator_) == (8, 8)
    model.save(tmp_path / "m")
    loaded = SuperResolver.load(tmp_path / "m", device="cpu")
    assert isinstance(loaded.generator_, ToyGenerator) and loaded.get_params()["generator_params"] == {"kernel": 5}
    np.testing.assert_array_equal(loaded.predict(heldout_images[0]), model.predict(heldout_images[0]))
    img = (np.random.default_rng(5).random((200, 240)) * 255).astype(np.uint8)
    _roi_equals_whole(loaded.generator_, img, BOXES, atol=1e-3)

    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    manifest, box = _cohort(tmp_path, [im[:60, :70] for im in heldout_images[:2]])
    here = loaded.apply_manifest(manifest, out_dir=tmp_path / "here", manifest_out=tmp_path / "here.csv")
    workers = loaded.apply_manifest(manifest, out_dir=tmp_path / "workers", manifest_out=tmp_path / "workers.csv", jobs=2)
    for a, b in zip(_pngs(here), _pngs(workers)):  # workers may sum with another thread count: a grey level at most
        assert a.shape == b.shape and np.abs(a - b).max() <= 1
    assert json.loads((tmp_path / "workers" / "c1_sr.png.json").read_text(encoding="utf-8"))["generator"] == spec


def test_a_study_reaches_the_generator_through_sr_params(tmp_path):
    """``sr.params: {generator: unet, generator_params: {levels: 1}}`` in a study config trains and
    records that generator."""
    from srnomogram.data import demo_cohort
    from srnomogram.study.cache import Runner
    from srnomogram.study.config import config_from_dict
    from srnomogram.study.stages import build_stages

    manifest = demo_cohort(tmp_path / "cohort", n=8, seed=1, n_volumes=0)
    sr = {"enabled": True, "params": {"generator": "unet", "generator_params": {"levels": 1}, "channels": 4, "blocks": 0,
                                      "patch_size": 16, "iterations": 2, "batch_size": 2, "device": "cpu", "amp": "none", "progress": False}}
    cfg = config_from_dict({"cohort": {"manifest": str(manifest)}, "study": {"output": str(tmp_path / "o")}, "sr": sr,
                            "radiomics": {"enabled": False}, "deep": {"enabled": False}})
    run = Runner(cfg, build_stages(cfg), root=tmp_path / "run").run(until="sr")
    meta = json.loads(run["sr"].file("model/meta.json").read_text(encoding="utf-8"))
    assert meta["generator"] == {"generator": "unet", "params": {"channels": 4, "blocks": 0, "scale": 2, "levels": 1}}
    cohort = run["sr"].file("cohort.csv")
    first = cohort.parent / (pd.read_csv(cohort)["image_sr"].iloc[0] + ".json")  # relative to the manifest
    assert json.loads(first.read_text(encoding="utf-8"))["generator"] == meta["generator"]


@pytest.mark.parametrize("params, match", [({"levels": 0}, "'levels' parameter of UNetGenerator must be an int in 1..4"),
                                           ({"levels": 2, "depth": 1}, "'generator_params' parameter of SuperResolver.fit")])
def test_bad_unet_parameters_are_named(params, match, train_images):
    from srnomogram.errors import InputError

    with pytest.raises(InputError, match=match):
        SuperResolver(**{**TINY, "generator": "unet", "generator_params": params}).fit_images(train_images)
