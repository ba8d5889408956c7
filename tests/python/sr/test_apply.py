"""Applying the SR model to files and manifests: grids, spacing, masks, resumability, bad volumes."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from PIL import Image

from srnomogram.data import load_manifest, read_image, read_mask
from srnomogram.errors import InputError
from srnomogram.sr.apply import check_volume_geometry, super_resolve_image


def _png(path, arr):
    Image.fromarray(arr).save(path)
    return path


def _volume(path, arr, spacing=(0.4, 0.4, 0.8), origin=(1.0, -2.0, 3.0)):
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    sitk.WriteImage(img, str(path))
    return img


@pytest.fixture()
def cohort_2d(tmp_path, heldout_images):
    rows = []
    for k, img in enumerate(heldout_images[:2]):
        img = img[: 60 + k, :70]
        m = np.zeros(img.shape, np.uint8)
        m[20:40, 25:50] = 255
        _png(tmp_path / f"c{k}.png", img)
        _png(tmp_path / f"c{k}_mask.png", m)
        rows.append(dict(case_id=f"c{k}", image=f"c{k}.png", mask=f"c{k}_mask.png", label=k % 2, spacing=0.1))
    pd.DataFrame(rows).to_csv(tmp_path / "manifest.csv", index=False)
    return tmp_path


def test_apply_manifest_2d_keeps_the_original_grid_and_mask(fitted, cohort_2d):
    before = (cohort_2d / "manifest.csv").read_bytes()
    df = fitted.apply_manifest(cohort_2d / "manifest.csv")
    assert list(df["image_sr"].map(lambda p: p.rsplit("/", 1)[-1])) == ["c0_sr.png", "c1_sr.png"]
    assert (cohort_2d / "manifest.csv").read_bytes() == before  # the input manifest is not overwritten
    again = load_manifest(cohort_2d / "manifest_sr.csv")  # a new one beside it, paths relative to it
    assert again["image_sr"].tolist() == [str(cohort_2d / "c0_sr.png"), str(cohort_2d / "c1_sr.png")]
    assert again["mask_sr"].tolist() == again["mask"].tolist()
    raw = pd.read_csv(cohort_2d / "manifest_sr.csv")
    assert raw["image_sr"].tolist() == ["c0_sr.png", "c1_sr.png"]
    for k in range(2):
        orig = np.asarray(Image.open(cohort_2d / f"c{k}.png"))
        with Image.open(cohort_2d / f"c{k}_sr.png") as im:
            assert im.mode == "L"
            sr = np.asarray(im)
        assert sr.shape == orig.shape and sr.dtype == np.uint8
        assert np.abs(sr.astype(float) - orig).mean() < 10  # same image, restored; not another one
        assert read_image(cohort_2d / f"c{k}_sr.png", 0.1).GetSpacing() == (0.1, 0.1)


def test_rerun_skips_finished_images_and_overwrite_recomputes(fitted, cohort_2d):
    fitted.apply_manifest(cohort_2d / "manifest.csv")
    out = cohort_2d / "c0_sr.png"
    out.write_bytes(out.read_bytes())  # marker: same bytes, new mtime
    mtime = out.stat().st_mtime_ns
    (cohort_2d / "c1_sr.png").unlink()  # as if interrupted before c1
    fitted.apply_manifest(cohort_2d / "manifest.csv")
    assert out.stat().st_mtime_ns == mtime
    assert (cohort_2d / "c1_sr.png").exists()
    fitted.apply_manifest(cohort_2d / "manifest.csv", overwrite=True)
    assert out.stat().st_mtime_ns != mtime
    assert not list(cohort_2d.glob(".*"))  # no temporary files left


def test_in_place_overwrites_the_input_manifest_and_conflicts_with_manifest_out(fitted, cohort_2d):
    fitted.apply_manifest(cohort_2d / "manifest.csv", in_place=True)
    assert pd.read_csv(cohort_2d / "manifest.csv")["image_sr"].tolist() == ["c0_sr.png", "c1_sr.png"]
    assert not (cohort_2d / "manifest_sr.csv").exists()
    with pytest.raises(InputError, match="both in_place=True and manifest_out"):
        fitted.apply_manifest(cohort_2d / "manifest.csv", in_place=True, manifest_out=cohort_2d / "x.csv")


def test_an_sr_file_is_reused_only_when_the_same_model_settings_and_inputs_made_it(fitted, cohort_2d):
    import copy
    import json

    import torch

    fitted.apply_manifest(cohort_2d / "manifest.csv")
    out, side = cohort_2d / "c0_sr.png", cohort_2d / "c0_sr.png.json"
    meta = json.loads(side.read_text(encoding="utf-8"))
    assert meta["precision"] == "float32" and meta["resample_back"] is True and set(meta["outputs"]) == {"c0_sr.png"}
    stamp = lambda: (out.stat().st_mtime_ns, out.read_bytes())  # noqa: E731
    first = stamp()
    fitted.apply_manifest(cohort_2d / "manifest.csv")
    assert stamp() == first  # same model, same settings, same image: reused
    other = copy.deepcopy(fitted)
    with torch.no_grad():
        next(other.generator_.parameters()).add_(0.05)  # another model (other weights)
    other.apply_manifest(cohort_2d / "manifest.csv")
    assert out.stat().st_mtime_ns != first[0]
    assert json.loads(side.read_text(encoding="utf-8"))["generator_sha256"] != meta["generator_sha256"]
    fitted.apply_manifest(cohort_2d / "manifest.csv")
    assert out.read_bytes() == first[1]  # back to the first model: its own result again, not the other's
    again = out.stat().st_mtime_ns
    fitted.apply_manifest(cohort_2d / "manifest.csv", resample_back=False)  # other settings: other files (_sr2x)
    assert out.stat().st_mtime_ns == again
    src = np.asarray(Image.open(cohort_2d / "c0.png"))
    _png(cohort_2d / "c0.png", 255 - src)  # the input image changed
    fitted.apply_manifest(cohort_2d / "manifest.csv")
    assert out.stat().st_mtime_ns != again and out.read_bytes() != first[1]
    out.write_bytes(first[1])  # an SR file replaced by hand no longer matches its sidecar: recomputed
    fitted.apply_manifest(cohort_2d / "manifest.csv")
    assert out.read_bytes() != first[1]


def test_case_ids_with_path_parts_cannot_write_outside_the_output_folder(fitted, tmp_path, heldout_images):
    """Two images share a stem, so the case id names their SR files (and masks at 2x always do)."""
    src = tmp_path / "in"
    rows = []
    for k, cid in enumerate(["x/../../../escaped", "../../escaped2"]):
        (src / f"d{k}").mkdir(parents=True)
        m = np.zeros((60, 70), np.uint8)
        m[20:40, 25:50] = 255
        _png(src / f"d{k}" / "scan.png", heldout_images[k][:60, :70])
        _png(src / f"d{k}" / "scan_mask.png", m)
        rows.append(dict(case_id=cid, image=f"d{k}/scan.png", mask=f"d{k}/scan_mask.png", label=k, spacing=0.1))
    pd.DataFrame(rows).to_csv(src / "manifest.csv", index=False)
    before = {p for p in tmp_path.rglob("*")}
    out = tmp_path / "a" / "b" / "out"
    for resample_back in (True, False):
        df = fitted.apply_manifest(src / "manifest.csv", out_dir=out, resample_back=resample_back, manifest_out=out / "m.csv")
        written = [Path(p) for p in [*df["image_sr"], *df["mask_sr"]] if not Path(p).is_relative_to(src)]
        assert len(set(written)) == len(written) == (2 if resample_back else 4)  # one file per lesion, no collision
    new = {p for p in tmp_path.rglob("*") if p.is_file()} - before
    assert new and all(p.resolve().is_relative_to(out.resolve()) for p in new), sorted(map(str, new))
    assert all("~" in p.name for p in new if p.name != "m.csv")  # the ids were mapped to hashed names


def test_apply_manifest_2d_at_2x_halves_spacing_and_maps_masks(fitted, cohort_2d, tmp_path):
    out_dir = tmp_path / "sr"
    df = fitted.apply_manifest(cohort_2d / "manifest.csv", out_dir=out_dir, resample_back=False, manifest_out=cohort_2d / "m2.csv")
    assert df["spacing_sr"].tolist() == [0.05, 0.05]
    img = np.asarray(Image.open(df["image_sr"][1]))
    assert img.shape == (122, 140)
    mask = read_mask(df["mask_sr"][1], 0.05)
    m = sitk.GetArrayFromImage(mask)
    assert m.shape == (122, 140)
    # the 0.1 mm mask rows 20..39 / cols 25..49 cover 0.05 mm rows 40..79 / cols 50..99 (+/- the half-pixel rounding)
    ys, xs = np.nonzero(m)
    assert abs(ys.min() - 40) <= 1 and abs(ys.max() - 79) <= 1 and abs(xs.min() - 50) <= 1 and abs(xs.max() - 99) <= 1
    assert m.sum() == pytest.approx(40 * 50, rel=0.06)
    assert not (cohort_2d / "manifest.csv").read_text(encoding="utf-8").count("image_sr")  # original manifest untouched


def test_volume_sr_doubles_z_halves_z_spacing_and_keeps_origin(fitted, tmp_path):
    rng = np.random.default_rng(0)
    vol = (rng.random((5, 24, 20)) * 300).astype(np.int16)
    img = _volume(tmp_path / "v.nii.gz", vol)
    sr = super_resolve_image(fitted.generator_, img, fitted.device_, resample_back=False)
    assert sr.GetSize() == (20, 24, 10)
    assert sr.GetSpacing() == pytest.approx((0.4, 0.4, 0.4))
    assert sr.GetOrigin() == pytest.approx(img.GetOrigin())
    back = super_resolve_image(fitted.generator_, img, fitted.device_, resample_back=True)
    assert back.GetSize() == img.GetSize() and back.GetSpacing() == pytest.approx(img.GetSpacing())
    assert sitk.GetArrayFromImage(back).dtype == np.int16


def test_apply_manifest_volumes_maps_masks_onto_the_2x_grid(fitted, tmp_path):
    vol = (np.random.default_rng(1).random((6, 24, 24)) * 255).astype(np.uint8)
    _volume(tmp_path / "v.nii.gz", vol)
    m = np.zeros_like(vol)
    m[2:4, 8:16, 8:16] = 1
    _volume(tmp_path / "v_mask.nii.gz", m)
    pd.DataFrame([dict(case_id="v", image="v.nii.gz", mask="v_mask.nii.gz", label=1, spacing=np.nan)]).to_csv(tmp_path / "volumes.csv", index=False)
    df = fitted.apply_manifest(tmp_path / "volumes.csv", resample_back=False)
    sr = sitk.ReadImage(df["image_sr"][0])
    ms = sitk.ReadImage(df["mask_sr"][0])
    assert df["image_sr"][0].endswith("v_sr2x.nii.gz")
    assert sr.GetSize() == ms.GetSize() == (24, 24, 12)
    assert ms.GetSpacing() == pytest.approx((0.4, 0.4, 0.4))
    a = sitk.GetArrayFromImage(ms)
    zs = np.nonzero(a.any(axis=(1, 2)))[0]
    assert 3 <= zs.min() <= 4 and 6 <= zs.max() <= 7  # slices 2..3 at 0.8 mm = 4..7 at 0.4 mm, +/- rounding
    assert a.sum() == pytest.approx(2 * 8 * 8 * 2, rel=0.3)


@pytest.mark.parametrize(
    "size, spacing, match",
    [((1, 16, 16), (0.4, 0.4, 1.0), "single slice"),
     ((4, 16, 16), (0.4, 0.8, 1.0), "anisotropic in-plane spacing"),
     ((4, 16, 16), (0.8, 0.8, 0.2), "finer than its in-plane spacing")],
)
def test_volumes_where_z_sr_makes_no_sense_are_rejected(size, spacing, match):
    img = sitk.GetImageFromArray(np.zeros(size, np.float32))
    img.SetSpacing(spacing)
    with pytest.raises(InputError, match=match):
        check_volume_geometry(img, "v.nii.gz")


def test_fit_from_manifest_rejects_bad_volumes(tmp_path):
    from srnomogram.sr import SuperResolver

    _volume(tmp_path / "v.nii.gz", np.zeros((4, 40, 40), np.uint8), spacing=(0.8, 0.8, 0.2))
    _volume(tmp_path / "m.nii.gz", np.ones((4, 40, 40), np.uint8), spacing=(0.8, 0.8, 0.2))
    df = pd.DataFrame([dict(case_id="v", image=str(tmp_path / "v.nii.gz"), mask=str(tmp_path / "m.nii.gz"), label=0)])
    with pytest.raises(InputError, match=r"row 0 .*v.nii.gz.*z is already the finest axis"):
        SuperResolver(patch_size=32).fit(df)


# ---------------------------------------------------------------------------------- ROI-only SR
def _random_generator(blocks, channels=8, seed=0):
    """A generator with a non-zero last layer (an untrained one is pure cubic interpolation, which reaches only 2 rows)."""
    import torch

    from srnomogram.sr.networks import Generator

    torch.manual_seed(seed)
    G = Generator(channels=channels, blocks=blocks).eval()
    torch.nn.init.normal_(G.tail.weight, std=0.3)
    return G


LESIONS = {  # lesion box (rows, cols) in a 200 x 240 image: inside, on each border, on a corner, almost the whole image
    "inside": (slice(80, 110), slice(100, 150)),
    "top-left corner": (slice(0, 25), slice(0, 30)),
    "bottom-right corner": (slice(170, 200), slice(200, 240)),
    "left border": (slice(60, 90), slice(0, 12)),
    "whole": (slice(3, 197), slice(2, 238)),
    "small": (slice(120, 124), slice(40, 43)),
}


@pytest.mark.parametrize("blocks", [0, 2, 8])
@pytest.mark.parametrize("resample_back", [True, False])
def test_roi_sr_equals_whole_image_sr_bit_for_bit_inside_what_the_readers_read(blocks, resample_back):
    """Float32 ROI-only SR is identical to whole-image SR in the lesion box grown by the CNN margin,
    for generators of several receptive fields and lesions touching the borders; outside the window it is cubic."""
    from srnomogram.deep.data import roi_box
    from srnomogram.sr.apply import read_box, super_resolve_array
    from srnomogram.sr.networks import CubicUpsampler

    G = _random_generator(blocks)
    img = (np.random.default_rng(blocks).random((200, 240)) * 255).astype(np.uint8)
    whole = super_resolve_array(G, img, "cpu", resample_back=resample_back, bf16=False)
    cubic = super_resolve_array(CubicUpsampler(), img, "cpu", resample_back=resample_back, bf16=False)
    k = 1 if resample_back else 2
    for name, (rs, cs) in LESIONS.items():
        mask = np.zeros(img.shape, bool)
        mask[rs, cs] = True
        box = read_box(mask, 0.1)
        roi = super_resolve_array(G, img, "cpu", resample_back=resample_back, bf16=False, boxes=[box])
        r0, c0, r1, c1 = roi_box(mask, 0.1)  # what the CNN crops, and it contains radiomics' box + 1 pixel
        assert box[0].start <= max(r0, 0) and box[1].start <= max(c0, 0) and box[0].stop >= min(r1, 200) and box[1].stop >= min(c1, 240)
        inner = (slice(k * box[0].start, k * box[0].stop), slice(k * box[1].start, k * box[1].stop))
        np.testing.assert_array_equal(roi[inner], whole[inner], err_msg=f"{name}, {blocks} blocks")
        outside = np.ones(roi.shape, bool)
        outside[inner] = False
        far = outside & (np.abs(whole - cubic) > 1e-3)  # where the generator changes the image
        if name != "whole":
            assert far.any() and np.array_equal(roi[far & ~_grown(inner, roi.shape, k * 64)], cubic[far & ~_grown(inner, roi.shape, k * 64)])


def _grown(inner, shape, by):
    out = np.zeros(shape, bool)
    out[tuple(slice(max(s.start - by, 0), s.stop + by) for s in inner)] = True
    return out


def test_roi_sr_needs_the_halo_and_a_small_window_is_exact_to_the_last_bits_only():
    """The two ingredients of exactness: context of roi_halo pixels, and a window large enough for
    PyTorch to run the oneDNN kernel a whole image runs. With half the halo the values are wrong by far
    more than rounding (a property of the receptive field, on any CPU). A window below
    ONEDNN_MIN_VALUES may run another kernel (im2col + GEMM) that sums in another order: that differs in
    the last bits on some CPUs (an AMD EPYC with AVX-512 or AVX2 kernels) and is bit-exact on others
    (an Intel Xeon with AMX), so only the bound that holds on every CPU is asserted for it."""
    import torch

    import srnomogram.sr.apply as A

    G = _random_generator(2)
    img = (np.random.default_rng(0).random((200, 240)) * 255).astype(np.uint8)
    whole = A.super_resolve_array(G, img, "cpu", resample_back=True, bf16=False)
    off, sc = A.intensity_scaling(img)
    x = (img.astype(np.float32) - off) * sc  # as super_resolve_array scales it
    halo = A.roi_halo(G)

    def sr_in(box, pad):
        win = tuple(slice(b.start - pad, b.stop + pad) for b in box)
        with torch.no_grad():
            return A._sr01(G, x[win], (0, 1), "cpu", True, False)[pad:-pad, pad:-pad] / sc + off, win

    big = (slice(40, 170), slice(50, 200))
    exact, win = sr_in(big, halo)
    assert (win[0].stop - win[0].start) * (win[1].stop - win[1].start) > A.ONEDNN_MIN_VALUES
    np.testing.assert_array_equal(exact, whole[big])
    short, win = sr_in(big, halo // 2)  # large enough for oneDNN, too little context
    assert np.abs(short - whole[big]).max() > 0.01
    small = (slice(80, 110), slice(100, 150))
    close, win = sr_in(small, halo)  # enough context, but fewer pixels than oneDNN takes
    assert (win[0].stop - win[0].start) * (win[1].stop - win[1].start) <= A.ONEDNN_MIN_VALUES
    # float32 rounding only (0 on some CPUs); rounding to uint8 can still flip it, hence sr_window's growth
    assert np.abs(close - whole[small]).max() < 1e-3


@pytest.mark.parametrize("blocks", [0, 3])
def test_roi_sr_of_a_volume_equals_whole_volume_sr_inside_the_box(blocks):
    from srnomogram.sr.apply import read_box, super_resolve_array

    G = _random_generator(blocks)
    vol = (np.random.default_rng(3).random((12, 70, 64)) * 1000).astype(np.int16)
    mask = np.zeros(vol.shape, bool)
    mask[0:3, 30:45, 50:64] = True  # on the first slice and the last column
    box = read_box(mask, 0.1)
    for resample_back in (True, False):
        whole = super_resolve_array(G, vol, "cpu", resample_back=resample_back, bf16=False)
        roi = super_resolve_array(G, vol, "cpu", resample_back=resample_back, bf16=False, boxes=[box])
        k = 1 if resample_back else 2
        inner = (slice(k * box[0].start, k * box[0].stop), box[1], box[2])
        np.testing.assert_array_equal(roi[inner], whole[inner])


def test_roi_sr_in_bf16_equals_whole_image_sr_in_bf16():
    """bf16 convolutions always run in oneDNN, whatever the window size: identical too (measured on
    AVX-512 and with ONEDNN_MAX_CPU_ISA=AVX2, and it held on an Intel Xeon with AMX)."""
    import torch

    from srnomogram.sr.apply import read_box, super_resolve_array

    G = _random_generator(2)
    img = (np.random.default_rng(5).random((200, 240)) * 255).astype(np.uint8)
    mask = np.zeros(img.shape, bool)
    mask[80:110, 100:150] = True
    box = read_box(mask, 0.1)
    whole = super_resolve_array(G, img, "cpu", resample_back=True, bf16=True)
    roi = super_resolve_array(G, img, "cpu", resample_back=True, bf16=True, boxes=[box])
    np.testing.assert_array_equal(roi[box], whole[box])
    # it did run in bf16: the generator's convolutions return bf16 (checked on the dtype, not on the numbers)
    dtypes = set()
    hook = torch.nn.modules.module.register_module_forward_hook(
        lambda m, i, o: dtypes.add(o.dtype) if isinstance(m, torch.nn.Conv2d) else None)
    try:
        super_resolve_array(G, img, "cpu", resample_back=True, bf16=True, boxes=[box])
    finally:
        hook.remove()
    assert torch.bfloat16 in dtypes


def test_apply_manifest_roi_writes_the_region_in_the_sidecar_and_matches_whole_image_files(tmp_path, fitted):
    import json

    from srnomogram.deep.data import roi_box

    img = (np.random.default_rng(9).random((180, 200)) * 255).astype(np.uint8)
    m = np.zeros(img.shape, np.uint8)
    m[0:30, 150:200] = 255  # touches the top and right borders
    _png(tmp_path / "a.png", img)
    _png(tmp_path / "a_mask.png", m)
    pd.DataFrame([dict(case_id="a", image="a.png", mask="a_mask.png", label=1, spacing=0.1)]).to_csv(tmp_path / "m.csv", index=False)
    roi = fitted.apply_manifest(tmp_path / "m.csv", out_dir=tmp_path / "roi")
    whole = fitted.apply_manifest(tmp_path / "m.csv", out_dir=tmp_path / "whole", region="image")
    meta = json.loads((tmp_path / "roi" / "a_sr.png.json").read_text(encoding="utf-8"))
    assert meta["region"] == "roi" and meta["roi_margin"] == 0.1 and meta["roi_box"] == [[0, 33], [145, 200]]
    assert json.loads((tmp_path / "whole" / "a_sr.png.json").read_text(encoding="utf-8"))["region"] == "image"
    a, b = (np.asarray(Image.open(p)) for p in (roi["image_sr"][0], whole["image_sr"][0]))
    r0, c0, r1, c1 = roi_box(m > 0, 0.1)
    np.testing.assert_array_equal(a[r0:r1, c0:c1], b[r0:r1, c0:c1])
    assert (a != b).any()  # elsewhere: cubic, not SR
    with pytest.raises(InputError, match=r"'region' parameter of apply_manifest must be 'roi' or 'image'\. Got 'lesion'"):
        fitted.apply_manifest(tmp_path / "m.csv", out_dir=tmp_path / "x", region="lesion")


def test_the_study_runs_roi_sr_with_the_cnn_margin_unless_radiomics_reads_the_whole_image(tmp_path):
    from srnomogram.study.config import config_from_dict
    from srnomogram.study.stages import sr_region

    (tmp_path / "m.csv").write_text("case_id,image,mask,label\n")

    def cfg(**sections):
        return config_from_dict({"cohort": {"manifest": "m.csv"}, **sections}, base_dir=tmp_path)

    assert sr_region(cfg()) == ("roi", 0.1)
    assert sr_region(cfg(deep={"params": {"margin": 0.3}})) == ("roi", 0.3)
    assert sr_region(cfg(sr={"region": "image"}))[0] == "image"
    p = tmp_path / "params.yaml"
    p.write_text("setting:\n  normalize: true\nimageType:\n  Original: {}\n")  # whole-image statistics
    assert sr_region(cfg(radiomics={"params": str(p)}))[0] == "image"
    p.write_text("setting:\n  binWidth: 10\nimageType:\n  Original: {}\n")
    assert sr_region(cfg(radiomics={"params": str(p)}))[0] == "roi"
    with pytest.raises(InputError, match="sr.region"):
        cfg(sr={"region": "lesion"})


def test_apply_manifest_on_a_dask_cluster_writes_the_same_files_and_sidecars(fitted, cohort_2d, dask_cluster, torch_threads_of_workers, monkeypatch):
    """Same SR PNGs (bytes), same sidecars, same manifest as a local run; the generator travels as bytes."""
    import json

    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    local = fitted.apply_manifest(cohort_2d / "manifest.csv", out_dir=cohort_2d / "local", manifest_out=cohort_2d / "local.csv")
    remote = fitted.apply_manifest(cohort_2d / "manifest.csv", out_dir=cohort_2d / "dask_roi", manifest_out=cohort_2d / "dask_roi.csv",
                                   scheduler=dask_cluster.scheduler_address)
    assert [p.rsplit("/", 1)[-1] for p in remote["image_sr"]] == [p.rsplit("/", 1)[-1] for p in local["image_sr"]]
    assert pd.read_csv(cohort_2d / "dask_roi.csv").equals(pd.read_csv(cohort_2d / "local.csv").assign(
        image_sr=lambda d: d["image_sr"].str.replace("local/", "dask_roi/")))
    for a, b in zip(local["image_sr"], (cohort_2d / "dask_roi" / Path(p).name for p in remote["image_sr"])):
        assert Path(a).read_bytes() == b.read_bytes()
        sa, sb = (json.loads(Path(str(x) + ".json").read_text(encoding="utf-8")) for x in (a, b))
        assert sa == sb  # key, settings, inputs, ROI box and output hashes


@pytest.mark.slow
def test_apply_manifest_with_local_worker_processes_matches_this_process(fitted, cohort_2d, monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    one = fitted.apply_manifest(cohort_2d / "manifest.csv", out_dir=cohort_2d / "one", manifest_out=cohort_2d / "one.csv", region="image", resample_back=False)
    two = fitted.apply_manifest(cohort_2d / "manifest.csv", out_dir=cohort_2d / "two", manifest_out=cohort_2d / "two.csv", region="image", resample_back=False, jobs=2)
    for col in ("image_sr", "mask_sr"):
        for a, b in zip(one[col], two[col]):
            assert Path(a).read_bytes() == Path(b).read_bytes()
