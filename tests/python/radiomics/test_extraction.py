"""Extraction against PyRadiomics itself: every feature, per lesion, with explicit tolerances.

The reference is ``RadiomicsFeatureExtractor(params).execute(*pyradiomics_input(image, mask))``,
PyRadiomics 3.0.1 unmodified (its all-pairs diameter search included).
"""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd
import pytest

from srnomogram.data.readers import read_case
from srnomogram.errors import InputError
from srnomogram.radiomics import extraction
from srnomogram.radiomics.extraction import PAPER_CLASSES, extract, extract_case, feature_class_counts, pyradiomics_input


pytest.importorskip("radiomics")
RTOL, ATOL = 1e-6, 1e-9


def _reference(image, mask, params=None):
    from radiomics import featureextractor

    logging.getLogger("radiomics").setLevel(logging.ERROR)
    ex = featureextractor.RadiomicsFeatureExtractor(params) if params is not None else featureextractor.RadiomicsFeatureExtractor()
    out = ex.execute(*pyradiomics_input(image, mask))
    return {k: float(v) for k, v in out.items() if k.startswith("original_")}


def _assert_same(ours: dict, ref: dict, where=""):
    assert list(ours) == list(ref), where
    for k in ref:
        a, b = ours[k], ref[k]
        if np.isnan(b):
            assert np.isnan(a), f"{where} {k}: {a} vs NaN"
            continue
        assert a == pytest.approx(b, rel=RTOL, abs=ATOL), f"{where} {k}: {a!r} vs PyRadiomics {b!r}"


def _sitk(arr, spacing=(1.0, 1.0)):
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    return img


def test_breast_sample_equals_pyradiomics_feature_by_feature(breast_sample):
    for _, row in breast_sample.iterrows():
        image, mask = read_case(row["image"], row["mask"], row["spacing"], row["case_id"])
        ours = extract_case(image, mask, case_id=row["case_id"])
        _assert_same(ours, _reference(image, mask), row["case_id"])


@pytest.mark.slow
def test_largest_breast_lesions_equal_pyradiomics(breast_cases):
    """The three largest BrEaST lesions (122k-144k pixels; PyRadiomics: minutes each)."""
    df = breast_cases(["case186", "case105", "case077"])
    for _, row in df.iterrows():
        image, mask = read_case(row["image"], row["mask"], row["spacing"], row["case_id"])
        _assert_same(extract_case(image, mask), _reference(image, mask), row["case_id"])


def test_paper_feature_set_is_107_named_as_pyradiomics(breast_sample):
    row = breast_sample.iloc[0]
    feats = extract_case(*read_case(row["image"], row["mask"], row["spacing"]))
    assert len(feats) == 107
    assert feature_class_counts(feats) == PAPER_CLASSES
    assert "original_glcm_Contrast" in feats and "original_shape_Maximum2DDiameterSlice" in feats


def test_two_d_image_gives_pyradiomics_values_of_the_2d_call_for_texture(breast_sample):
    """On the 2D image PyRadiomics skips 3D shape; every other class equals the one-slice volume's."""
    import SimpleITK as sitk
    from radiomics import featureextractor

    row = breast_sample.iloc[1]
    image, mask = read_case(row["image"], row["mask"], row["spacing"])
    ours = extract_case(image, mask)
    two_d = featureextractor.RadiomicsFeatureExtractor().execute(sitk.Cast(image, sitk.sitkFloat64), mask)
    two_d = {k: float(v) for k, v in two_d.items() if k.startswith("original_")}
    assert not any(k.startswith("original_shape_") for k in two_d)
    assert len(two_d) == 93
    for k, v in two_d.items():
        assert ours[k] == pytest.approx(v, rel=1e-12, abs=1e-12), k


def test_eight_bit_image_is_cast_so_pyradiomics_bins_do_not_wrap():
    """PyRadiomics on a uint8 ROI reaching 206+ wraps its top bin edge; we hand it float64."""
    rng = np.random.default_rng(0)
    arr = rng.integers(150, 256, size=(40, 40)).astype(np.uint8)
    m = np.zeros((40, 40), np.uint8)
    m[5:35, 8:30] = 1
    image, mask = _sitk(arr, (0.1, 0.1)), _sitk(m, (0.1, 0.1))
    ours = extract_case(image, mask)
    # independent: firstorder entropy of 25-wide bins from numpy
    vals = arr[m > 0].astype(float)
    edges = np.arange(vals.min() - vals.min() % 25, vals.max() + 50, 25)
    counts = np.histogram(vals, bins=edges)[0]
    p = counts[counts > 0] / counts.sum()
    assert ours["original_firstorder_Entropy"] == pytest.approx(-np.sum(p * np.log2(p + 2.2e-16)), rel=1e-9)


def test_params_file_is_used_unchanged(breast_sample, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("setting:\n  binWidth: 10\nfeatureClass:\n  firstorder:\n  glcm: [Contrast, Correlation]\n  shape: [Maximum3DDiameter, MeshVolume]\n")
    row = breast_sample.iloc[2]
    image, mask = read_case(row["image"], row["mask"], row["spacing"])
    ours = extract_case(image, mask, params=params)
    ref = _reference(image, mask, str(params))
    _assert_same(ours, ref)
    assert feature_class_counts(ours) == {"firstorder": 18, "glcm": 2, "shape": 2}


def test_dict_params_and_resampling_match_pyradiomics(breast_sample):
    params = {"setting": {"binWidth": 15, "resampledPixelSpacing": [0.2, 0.2, 1.0], "interpolator": "sitkBSpline"}, "featureClass": {"glszm": None, "shape": None}}
    row = breast_sample.iloc[0]
    image, mask = read_case(row["image"], row["mask"], row["spacing"])
    _assert_same(extract_case(image, mask, params=params), _reference(image, mask, params))


def test_three_d_volume_equals_pyradiomics():
    from scipy import ndimage

    rng = np.random.default_rng(3)
    vol = ndimage.gaussian_filter(rng.normal(100, 30, (12, 40, 36)), 1.0)
    field = ndimage.gaussian_filter(rng.random((12, 40, 36)), 3.0)
    m = (field > np.quantile(field, 0.6)).astype(np.uint8)
    image, mask = _sitk(vol.astype(np.int16), (0.5, 0.5, 1.2)), _sitk(m, (0.5, 0.5, 1.2))
    _assert_same(extract_case(image, mask), _reference(image, mask))


def test_mask_touching_the_image_border_equals_pyradiomics():
    rng = np.random.default_rng(1)
    arr = rng.integers(0, 200, size=(30, 30)).astype(np.uint8)
    m = np.zeros((30, 30), np.uint8)
    m[0:12, 20:30] = 1  # touches the top and right edges
    m[12:16, 24:30] = 1
    image, mask = _sitk(arr, (0.08, 0.08)), _sitk(m, (0.08, 0.08))
    _assert_same(extract_case(image, mask), _reference(image, mask))


def test_constant_image_gives_pyradiomics_values_including_nan(caplog):
    arr = np.full((30, 30), 80, np.uint8)
    m = np.zeros((30, 30), np.uint8)
    m[5:20, 5:25] = 1
    image, mask = _sitk(arr, (0.1, 0.1)), _sitk(m, (0.1, 0.1))
    ours = extract_case(image, mask)
    _assert_same(ours, _reference(image, mask))


def test_empty_and_one_voxel_masks_raise_input_error():
    arr = np.zeros((10, 10), np.uint8)
    m = np.zeros((10, 10), np.uint8)
    with pytest.raises(InputError, match="empty"):
        extract_case(_sitk(arr), _sitk(m), case_id="c1")
    m[4, 4] = 1
    with pytest.raises(InputError, match="single voxel"):
        extract_case(_sitk(arr), _sitk(m), case_id="c1")
    m[4, 5] = 1  # a line: PyRadiomics needs 2 dimensions by default
    with pytest.raises(InputError, match="case 'c1': PyRadiomics rejected"):
        extract_case(_sitk(arr), _sitk(m), case_id="c1")


def test_extract_manifest_cache_and_parallel(breast_sample, tmp_path, monkeypatch, caplog):
    df = breast_sample.iloc[:3]
    cache = tmp_path / "cache"
    first = extract(df, jobs=1, cache_dir=cache, progress=False)
    assert list(first.index) == list(df["case_id"]) and first.shape == (3, 107)
    assert len(list(cache.rglob("*.json"))) == 3
    # the values are those of extract_case
    row = df.iloc[1]
    direct = extract_case(*read_case(row["image"], row["mask"], row["spacing"]))
    assert first.loc[row["case_id"]].to_dict() == direct

    def boom(*a, **k):
        raise AssertionError("extraction ran although the cache holds every lesion")

    monkeypatch.setattr(extraction, "extract_case", boom)
    again = extract(df, jobs=1, cache_dir=cache, progress=False)
    pd.testing.assert_frame_equal(first, again)
    # other parameters: another key, so the cache is not used
    with pytest.raises(AssertionError, match="cache holds"):
        extract(df, jobs=1, cache_dir=cache, params={"setting": {"binWidth": 5}}, progress=False)
    monkeypatch.undo()
    par = extract(df, jobs=2, progress=False)
    pd.testing.assert_frame_equal(first, par)


def test_cache_key_changes_with_mask_bytes_and_spacing(breast_sample, tmp_path):
    import shutil

    row = breast_sample.iloc[0]
    k1 = extraction.case_key(row["image"], row["mask"], row["spacing"], None)
    assert k1 == extraction.case_key(row["image"], row["mask"], row["spacing"], None)
    assert k1 != extraction.case_key(row["image"], row["mask"], row["spacing"] * 2, None)
    other = tmp_path / "mask.png"
    shutil.copy(breast_sample.iloc[1]["mask"], other)
    assert k1 != extraction.case_key(row["image"], str(other), row["spacing"], None)


def test_extract_rejects_bad_arguments(breast_sample):
    with pytest.raises(InputError, match="'jobs' parameter of extract"):
        extract(breast_sample, jobs=0)
    with pytest.raises(InputError, match="no column 'image_sr'"):
        extract(breast_sample, image_col="image_sr")
    with pytest.raises(InputError, match="parameter file .* not found"):
        extract(breast_sample, params="/nonexistent/params.yaml")


def test_dask_cluster_gives_the_local_features_and_fills_the_shared_cache(demo_dir, dask_cluster, tmp_path, monkeypatch, capsys):
    from srnomogram import parallel
    from srnomogram.data.manifest import load_manifest

    df = load_manifest(demo_dir / "manifest.csv").iloc[:6]
    monkeypatch.delenv(parallel.SCHEDULER_ENV, raising=False)
    local = extract(df, jobs=1, progress=False)
    assert not capsys.readouterr().err
    # the scheduler address from the environment, as `dask worker` users set it
    monkeypatch.setenv(parallel.SCHEDULER_ENV, dask_cluster.scheduler_address)
    connected = []
    real_connect = parallel.connect
    monkeypatch.setattr(parallel, "connect", lambda address, **kw: connected.append(address) or real_connect(address, **kw))
    cache = tmp_path / "cache"
    remote = extract(df, cache_dir=cache, progress=True)
    assert connected == [dask_cluster.scheduler_address]
    pd.testing.assert_frame_equal(remote, local, check_exact=True)
    assert "6/6" in capsys.readouterr().err  # the same progress bar as a local run
    assert len(list(cache.rglob("*.json"))) == 6  # written by the workers
    monkeypatch.setattr(extraction, "extract_case", lambda *a, **k: pytest.fail("extracted although the workers cached every lesion"))
    pd.testing.assert_frame_equal(extract(df, cache_dir=cache, progress=False), local, check_exact=True)
    assert connected == [dask_cluster.scheduler_address]  # every lesion read back: no cluster needed


@pytest.mark.parametrize(
    "settings",
    [{}, {"binWidth": 5}, {"binWidth": 0.37}, {"binCount": 16}],
    ids=["default", "width5", "width0.37", "count16"],
)
def test_shared_discretisation_equals_pyradiomics_binimage(settings):
    from radiomics import imageoperations

    rng = np.random.default_rng(7)
    image = np.round(rng.normal(120, 50, (1, 40, 50)), 1)
    mask = rng.random(image.shape) < 0.4
    binned, gray = extraction.discretise(image, mask, settings)
    ref = imageoperations.binImage(image, mask, **settings)[0]
    np.testing.assert_array_equal(binned, ref)
    assert binned.dtype == ref.dtype
    np.testing.assert_array_equal(gray, np.unique(ref[mask]))
    # a flat ROI (one bin), and NaN in the ROI (PyRadiomics' own code decides)
    flat = np.full(image.shape, 75.0)
    np.testing.assert_array_equal(extraction.discretise(flat, mask, settings)[0], imageoperations.binImage(flat, mask, **settings)[0])
    holes = image.copy()
    holes[mask.nonzero()[0][3], mask.nonzero()[1][3], mask.nonzero()[2][3]] = np.nan
    if "binCount" in settings:  # numpy.histogram refuses NaN, in PyRadiomics' code and so in ours
        with pytest.raises(ValueError, match="not finite"):
            extraction.discretise(holes, mask, settings)
    else:
        np.testing.assert_array_equal(extraction.discretise(holes, mask, settings)[0], imageoperations.binImage(holes, mask, **settings)[0])


@pytest.mark.parametrize("dim", [2, 3])
def test_precropped_input_is_pyradiomics_input_of_the_cropped_lesion(dim):
    import SimpleITK as sitk

    rng = np.random.default_rng(dim)
    shape = (30, 40) if dim == 2 else (6, 30, 40)
    arr = rng.integers(0, 255, shape).astype(np.uint8)
    m = np.zeros(shape, np.uint8)
    m[..., 5:20, 8:31] = 1
    image, mask = sitk.GetImageFromArray(arr), sitk.GetImageFromArray(m)
    for im in (image, mask):
        im.SetSpacing((0.07, 0.09) if dim == 2 else (0.07, 0.09, 0.5))
        im.SetOrigin((3.0, -2.0) if dim == 2 else (3.0, -2.0, 1.0))
        im.SetDirection((0.0, 1.0, 1.0, 0.0) if dim == 2 else (0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    # the reference: crop with SimpleITK (bounding box + 1 voxel), then pyradiomics_input
    lo = [4, 7] if dim == 2 else [0, 4, 7]
    hi = [21, 32] if dim == 2 else [6, 21, 32]
    size = [h - l for l, h in zip(lo, hi)]
    ref = [sitk.RegionOfInterest(im, size[::-1], lo[::-1]) for im in (image, mask)]
    ref = pyradiomics_input(*ref)
    ours = extraction._precropped_input(image, mask)
    for a, b in zip(ours, ref):
        assert a.GetPixelID() == b.GetPixelID() and a.GetSize() == b.GetSize()
        assert a.GetSpacing() == b.GetSpacing() and a.GetOrigin() == b.GetOrigin() and a.GetDirection() == b.GetDirection()
        np.testing.assert_array_equal(sitk.GetArrayViewFromImage(a), sitk.GetArrayViewFromImage(b))


# ------------------------------------------------------------------- invalid parameter files (issue 20, defect 11)
@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("setting:\n  binWidht: 25\n", "setting", "Key 'binWidht' was not defined"),
        ("setting:\n  label: one\n", "setting.label", "Value 'one' is not of type 'int'"),
        ("setting:\n  binWidth: -1\n", "setting.binWidth", "Type 'scalar' has size of '-1', less than or equals to min limit"),
        ("featureClass:\n  glcmm:\n", "featureClass", "Feature Class glcmm is not recognized"),
        ("imageType:\n  Originall: {}\n", "imageType", "Image Type Originall is not recognized"),
        ("settings:\n  binWidth: 25\n", "top level", "Key 'settings' was not defined"),
    ],
)
def test_an_invalid_params_file_is_one_line_naming_the_file_and_key(tmp_path, text, where, what):
    from srnomogram.errors import InputError
    from srnomogram.radiomics.extraction import validate_params

    p = tmp_path / "params.yaml"
    p.write_text(text)
    with pytest.raises(InputError) as info:
        validate_params(p)
    msg = str(info.value)
    assert msg.startswith(f"PyRadiomics parameter file {p} is invalid at {where}: {what}") and "\n" not in msg
    assert "customization" in msg  # where PyRadiomics documents the keys
    with pytest.raises(InputError, match=f"is invalid at {where}"):
        extract_case(np.zeros((8, 8)), np.ones((8, 8)), params=p)  # what extraction checks before reading anything


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("setting: [1, 2\n", "is not valid YAML"),
        ("- binWidth\n", "must be a mapping of sections (setting, featureClass, imageType, voxelSetting). Got list"),
        ("", "is empty"),
    ],
)
def test_params_files_that_are_not_parameters_are_one_line(tmp_path, text, message):
    from srnomogram.errors import InputError
    from srnomogram.radiomics.extraction import validate_params

    p = tmp_path / "params.yaml"
    p.write_text(text)
    with pytest.raises(InputError, match=re.escape(f"PyRadiomics parameter file {p} {message}")):
        validate_params(p)


def test_valid_params_pass_and_dict_params_are_checked_too(tmp_path):
    from srnomogram.errors import InputError
    from srnomogram.radiomics.extraction import validate_params

    p = tmp_path / "params.json"
    p.write_text('{"setting": {"binWidth": 10}, "featureClass": {"glcm": ["Contrast"]}}')
    assert validate_params(p) == {"setting": {"binWidth": 10}, "featureClass": {"glcm": ["Contrast"]}}
    with pytest.raises(InputError, match=r"^PyRadiomics parameters \(a dict\) are invalid at setting.binCount: "):
        validate_params({"setting": {"binCount": 0}})
