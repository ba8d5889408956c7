"""ROI extraction: boxes, bounds modes, 3D slice choice, pixels against PIL as the reference."""

import numpy as np
import pytest
import torch
from PIL import Image

from srnomogram.data import load_manifest
from srnomogram.deep.data import crop, load_rois, mask_column, max_diameter_slice, roi_box, roi_from_arrays, to_unit
from srnomogram.errors import InputError


def _rect_mask(shape, r0, r1, c0, c1):
    m = np.zeros(shape, dtype=np.uint8)
    m[r0:r1, c0:c1] = 1
    return m


def test_roi_box_adds_margin_as_fraction_of_box_sides():
    m = _rect_mask((100, 100), 40, 60, 30, 70)  # 20 rows x 40 cols
    assert roi_box(m, margin=0.1) == (38, 26, 62, 74)
    assert roi_box(m, margin=0.0) == (40, 30, 60, 70)


def test_roi_box_clip_stops_at_the_border_and_pad_keeps_the_full_box():
    m = _rect_mask((50, 50), 0, 10, 40, 50)
    assert roi_box(m, 0.5, "clip") == (0, 35, 15, 50)
    assert roi_box(m, 0.5, "pad") == (-5, 35, 15, 55)


def test_roi_box_error_mode_names_the_crop_and_the_remedy():
    m = _rect_mask((50, 50), 0, 10, 40, 50)
    with pytest.raises(InputError, match=r"falls outside the 50x50 image.*roi_bounds='clip'"):
        roi_box(m, 0.5, "error", where="case 'x': ")
    assert roi_box(m, 0.0, "error") == (0, 40, 10, 50)  # inside: no error


def test_empty_mask_is_an_input_error():
    with pytest.raises(InputError, match="mask is empty"):
        roi_box(np.zeros((5, 5)), 0.1)


def test_crop_zero_fills_outside_the_image():
    a = np.arange(16, dtype=np.uint8).reshape(4, 4) + 1
    out = crop(a, (-1, 2, 2, 6))
    expected = np.array([[0, 0, 0, 0], [3, 4, 0, 0], [7, 8, 0, 0]], dtype=np.uint8)
    np.testing.assert_array_equal(out, expected)


def _disc(shape, center, radii):
    rr, cc = np.mgrid[: shape[0], : shape[1]]
    return (((rr - center[0]) / radii[0]) ** 2 + ((cc - center[1]) / radii[1]) ** 2 <= 1).astype(np.uint8)


def test_3d_roi_uses_the_slice_of_largest_diameter():
    vol = np.zeros((6, 40, 40), dtype=np.uint8)
    for k, r in enumerate([2, 5, 9, 4, 0, 3]):
        if r:
            vol[k] = _disc((40, 40), (20, 20), (r, r))
    assert max_diameter_slice(vol) == 2
    img = (np.arange(6)[:, None, None] * 10 + np.zeros((6, 40, 40))).astype(np.uint8)
    _, _, box, k = roi_from_arrays(img, vol, size=16, margin=0.0)
    assert k == 2 and box == (11, 11, 30, 30)


def test_3d_slice_choice_uses_physical_spacing():
    vol = np.zeros((2, 40, 40), dtype=np.uint8)
    vol[0] = _disc((40, 40), (20, 20), (10, 3))  # long along rows (y)
    vol[1] = _disc((40, 40), (20, 20), (3, 8))  # long along cols (x)
    assert max_diameter_slice(vol, (1.0, 1.0)) == 0
    assert max_diameter_slice(vol, (2.0, 1.0)) == 1  # x pixels twice as wide: 16 px * 2 mm > 20 px * 1 mm


def test_to_unit_scales_uint8_by_255_and_other_types_by_min_max():
    np.testing.assert_allclose(to_unit(np.array([0, 51, 255], dtype=np.uint8)), [0, 0.2, 1])
    np.testing.assert_allclose(to_unit(np.array([100, 150, 300], dtype=np.uint16)), [0, 0.25, 1])


def test_roi_pixels_match_pil_crop_and_bilinear_resize():
    rng = np.random.default_rng(0)
    img = (rng.random((120, 90)) * 255).astype(np.uint8)
    img = np.asarray(Image.fromarray(img).resize((90, 120), Image.BILINEAR))  # some smoothness
    mask = _rect_mask(img.shape, 30, 90, 20, 60)
    roi, msk, box, _ = roi_from_arrays(img, mask, size=32, margin=0.1)
    r0, c0, r1, c1 = box
    ref = Image.fromarray(img[r0:r1, c0:c1].astype(np.float32) / 255, mode="F").resize((32, 32), Image.BILINEAR)
    ref = np.round(np.clip(np.asarray(ref), 0, 1) * 255)
    # torch's antialiased bilinear reproduces PIL's; allow 1 grey level for float rounding.
    assert np.abs(roi[0].numpy().astype(float) - ref).max() <= 1
    # mask: box with 10 % margin → the lesion covers the central 1/1.2 of each side
    assert msk.dtype == torch.uint8 and 0.6 < msk.float().mean() < 0.8


def test_load_rois_on_the_demo_cohort(demo_dir):
    df = load_manifest(demo_dir / "manifest.csv").head(6)
    rois = load_rois(df, "image", size=40, margin=0.1, progress=False)
    assert rois.images.shape == (6, 1, 40, 40) and rois.images.dtype == torch.uint8
    assert rois.masks.shape == (6, 1, 40, 40)
    assert rois.labels.tolist() == df["label"].tolist()
    assert rois.case_ids == df["case_id"].tolist()
    assert (rois.slices == -1).all()
    # every mask reaches within the margin of each border of its ROI
    m = rois.masks[:, 0].bool()
    assert m.any(1).any(1).all() and m[:, 20, :].any(1).all()
    sub = rois.subset([1, 3])
    assert sub.case_ids == [df.case_id[1], df.case_id[3]] and torch.equal(sub.images[0], rois.images[1])


def test_load_rois_reads_3d_volumes(demo_dir):
    df = load_manifest(demo_dir / "volumes.csv")
    rois = load_rois(df, "image", size=24, progress=False)
    assert (rois.slices >= 0).all() and rois.images.shape == (len(df), 1, 24, 24)


def test_load_rois_error_mode_names_the_case(demo_dir):
    df = load_manifest(demo_dir / "manifest.csv").head(3)
    with pytest.raises(InputError, match=r"case '.+'.*falls outside"):
        load_rois(df, "image", size=32, margin=5.0, bounds="error", progress=False)


def test_unknown_image_column_and_bad_params_are_input_errors(demo_dir):
    df = load_manifest(demo_dir / "manifest.csv").head(2)
    with pytest.raises(InputError, match="no column 'image_sr'"):
        load_rois(df, "image_sr")
    with pytest.raises(InputError, match="The 'roi_bounds' parameter of load_rois must be one of"):
        load_rois(df, "image", bounds="wrap")
    with pytest.raises(InputError, match="The 'margin' parameter"):
        load_rois(df, "image", margin=-0.1)


def test_mask_column_pairs_sr_images_with_sr_masks():
    import pandas as pd

    df = pd.DataFrame({"image": ["a"], "image_sr": ["b"], "mask": ["m"], "mask_sr": ["n"]})
    assert mask_column(df, "image_sr") == "mask_sr"
    assert mask_column(df, "image") == "mask"
    assert mask_column(df.drop(columns="mask_sr"), "image_sr") == "mask"
