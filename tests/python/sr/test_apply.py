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
    meta = json.loads(side.read_text())
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
    assert json.loads(side.read_text())["generator_sha256"] != meta["generator_sha256"]
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
    assert not (cohort_2d / "manifest.csv").read_text().count("image_sr")  # original manifest untouched


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
