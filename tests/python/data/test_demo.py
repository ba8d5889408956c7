"""The synthetic demo cohort: loadable, deterministic, and carrying the paper's signal."""

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from scipy import ndimage, stats

from srnomogram.data import demo_cohort, load_manifest
from srnomogram.data.check import check_cohort
from srnomogram.data.geometry import max_feret_diameter
from srnomogram.data.readers import read_case
from srnomogram.errors import InputError


@pytest.fixture(scope="module")
def demo(demo_dir):
    return load_manifest(demo_dir / "manifest.csv")


def test_demo_manifest_has_the_documented_columns_and_classes(demo):
    assert list(demo.columns[:7]) == ["case_id", "image", "mask", "label", "spacing", "age", "max_diameter_cm"]
    assert len(demo) == 40
    assert demo.label.sum() == 16  # round(0.4 * 40)
    assert demo.case_id.is_unique
    assert demo.age.notna().all() and demo.spacing.between(0.1, 0.3).all()


def test_demo_cases_read_as_256_square_8_bit_images_with_their_masks(demo_dir):
    summary = check_cohort(demo_dir / "manifest.csv", progress=False)
    assert summary == dict(n=40, by_label={0: 24, 1: 16}, by_split={}, dims={2})
    df = load_manifest(demo_dir / "manifest.csv")
    image, mask = read_case(df.image[0], df["mask"][0], df.spacing[0])
    assert image.GetSize() == (256, 256)
    assert sitk.GetArrayViewFromImage(image).dtype == np.uint8
    assert image.GetSpacing() == pytest.approx((df.spacing[0],) * 2)


def test_demo_max_diameter_is_the_feret_diameter_of_its_mask(demo):
    for row in demo.itertuples():
        _, mask = read_case(row.image, row.mask, row.spacing)
        d = max_feret_diameter(sitk.GetArrayFromImage(mask), row.spacing) / 10
        assert row.max_diameter_cm == pytest.approx(d, abs=5e-5)


def test_demo_malignant_patients_are_older_and_lesions_larger_as_in_table_1(demo):
    m, b = demo[demo.label == 1], demo[demo.label == 0]
    assert m.age.mean() - b.age.mean() > 8
    assert m.max_diameter_cm.mean() - b.max_diameter_cm.mean() > 0.4
    assert stats.mannwhitneyu(m.age, b.age, alternative="greater").pvalue < 0.01
    assert stats.mannwhitneyu(m.max_diameter_cm, b.max_diameter_cm, alternative="greater").pvalue < 0.01


def test_demo_lesions_are_hypoechoic_and_malignant_ones_shadow(demo):
    shadow = {0: [], 1: []}
    for row in demo.itertuples():
        image, mask = read_case(row.image, row.mask, row.spacing)
        img = sitk.GetArrayFromImage(image).astype(float)
        m = sitk.GetArrayFromImage(mask).astype(bool)
        ring = ndimage.binary_dilation(m, iterations=8) & ~ndimage.binary_dilation(m, iterations=3)
        assert img[m].mean() < img[ring].mean() - 10, row.case_id  # darker than its surroundings
        below = np.maximum.accumulate(m, axis=0) & ~ndimage.binary_dilation(m, iterations=3)
        beside = ring & ~below
        shadow[row.label].append(img[below].mean() - img[beside].mean())
    # posterior acoustic shadowing below malignant lesions, none (or enhancement) below benign ones
    assert np.median(shadow[1]) < np.median(shadow[0]) - 10


def test_demo_malignant_outlines_are_less_convex_and_taller(demo):
    from skimage.measure import regionprops

    solidity, tall = {0: [], 1: []}, {0: [], 1: []}
    for row in demo.itertuples():
        _, mask = read_case(row.image, row.mask, row.spacing)
        props = regionprops(sitk.GetArrayFromImage(mask))[0]
        solidity[row.label].append(props.solidity)  # area / convex-hull area: 1 for an ellipse
        r0, c0, r1, c1 = props.bbox
        tall[row.label].append((r1 - r0) / (c1 - c0))
    assert np.median(solidity[0]) > 0.97  # benign: oval, circumscribed
    assert np.median(solidity[1]) < np.median(solidity[0]) - 0.03  # malignant: irregular, spiculated
    assert np.median(tall[1]) > 0.9 > np.median(tall[0])  # taller-than-wide vs parallel to the skin


def test_demo_volumes_are_small_3d_nifti_with_header_spacing(demo_dir):
    vols = load_manifest(demo_dir / "volumes.csv")
    assert len(vols) == 4 and set(vols.label) == {0, 1}
    for row in vols.itertuples():
        image, mask = read_case(row.image, row.mask, None, row.case_id)
        assert image.GetSize() == (64, 64, 16)
        assert image.GetSpacing() == pytest.approx((0.4, 0.4, 0.5))
        assert 50 < sitk.GetArrayViewFromImage(mask).sum() < 64 * 64 * 16 / 4


def _tree_bytes(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_demo_is_deterministic_to_the_byte_and_changes_with_the_seed(tmp_path):
    a = _tree_bytes(demo_cohort(tmp_path / "a", n=6, seed=3, n_volumes=2).parent)
    b = _tree_bytes(demo_cohort(tmp_path / "b", n=6, seed=3, n_volumes=2).parent)
    c = _tree_bytes(demo_cohort(tmp_path / "c", n=6, seed=4, n_volumes=2).parent)
    assert a.keys() == b.keys() and all(a[k] == b[k] for k in a)
    assert len(a) == 2 * 6 + 1 + 2 * 2 + 1
    assert a["images/demo001.png"] != c["images/demo001.png"]


def test_demo_without_volumes_writes_only_the_2d_cohort(tmp_path):
    out = demo_cohort(tmp_path / "s", n=5, seed=1, n_volumes=0)
    assert sorted(p.name for p in out.parent.iterdir()) == ["images", "manifest.csv"]
    assert len(list((out.parent / "images").iterdir())) == 10  # no temporary file left behind


def test_demo_rejects_bad_parameters(tmp_path):
    with pytest.raises(InputError, match=r"The 'n' parameter of demo_cohort must be an int >= 4\. Got 2 instead\."):
        demo_cohort(tmp_path, n=2)
    with pytest.raises(InputError, match=r"'seed' parameter of demo_cohort"):
        demo_cohort(tmp_path, seed=-3)
    assert not any(tmp_path.iterdir())


def test_breast_lesion_sizes_spread_mask_areas_like_breast_and_keep_the_clinical_draws(tmp_path):
    import pandas as pd
    from PIL import Image

    from srnomogram.data.demo import BREAST_AREA_PX, BREAST_MIN_SIDE

    paper = load_manifest(demo_cohort(tmp_path / "p", n=12, seed=0, n_volumes=0))
    breast = load_manifest(demo_cohort(tmp_path / "b", n=12, seed=0, n_volumes=0, lesion_sizes="breast"))
    pd.testing.assert_series_equal(paper["age"], breast["age"])
    pd.testing.assert_series_equal(paper["label"], breast["label"])
    assert all(min(Image.open(p).size) >= BREAST_MIN_SIDE for p in breast["image"])
    log_area = np.log([np.count_nonzero(np.asarray(Image.open(p))) for p in breast["mask"]])
    # BrEaST's log-area mean 9.55 (sd 0.94): 12 lesions put the mean within 0.8 (about 3 standard errors)
    assert abs(log_area.mean() - BREAST_AREA_PX["log_mean"]) < 0.8
    with pytest.raises(InputError, match=r"'lesion_sizes' parameter of demo_cohort must be one of 'paper', 'breast'\. Got 'huge' instead\."):
        demo_cohort(tmp_path / "x", n=4, lesion_sizes="huge")


def _tree_digest(root):
    import hashlib

    h = hashlib.sha256()
    for name, data in _tree_bytes(root).items():
        h.update(name.encode())
        h.update(data)
    return h.hexdigest()


def test_demo_default_is_the_cohort_of_earlier_versions_byte_for_byte(tmp_path):
    # digest of manifest, images and masks computed at 7ca53b4, before patients existed
    out = demo_cohort(tmp_path / "a", n=6, seed=3, n_volumes=0)
    assert _tree_digest(out.parent) == "7f88a282867f21fe4f1b5de1840b1630b56abef2515931eeb1d80519a25fbf13"
    assert "patient_id" not in pd.read_csv(out).columns


def test_demo_second_lesion_share_pairs_lesions_into_patients_and_keeps_every_lesion(tmp_path):
    plain = load_manifest(demo_cohort(tmp_path / "a", n=20, seed=2, n_volumes=0))
    two = load_manifest(demo_cohort(tmp_path / "b", n=20, seed=2, n_volumes=0, second_lesion_share=0.5))
    per_patient = two.groupby("patient_id").size()
    assert len(per_patient) == 20 - round(0.5 * 20 / 1.5) and per_patient.max() == 2 and (per_patient == 2).sum() == 7
    assert two["patient_id"].iloc[0] == "pt001"
    assert (two.groupby("patient_id")["age"].nunique() == 1).all()  # one patient, one age
    same = ["case_id", "label", "spacing", "max_diameter_cm"]  # the lesions are drawn as without patients
    pd.testing.assert_frame_equal(two[same], plain[same])
    firsts = ~two["patient_id"].duplicated()
    np.testing.assert_array_equal(two.loc[firsts, "age"], plain.loc[firsts, "age"])
    with pytest.raises(InputError, match=r"'second_lesion_share' parameter of demo_cohort must be a float in \[0, 1\]\. Got 1.5"):
        demo_cohort(tmp_path / "c", n=5, second_lesion_share=1.5)
