"""Readers: 2D rasters (PNG/JPEG/BMP) through PIL, volumes (NIfTI/NRRD/MHA/DICOM) through SimpleITK."""

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from srnomogram.data.readers import read_case, read_image, read_mask, read_masks_union
from srnomogram.errors import InputError


def luma_601(rgb):
    """ITU-R 601-2 luma in PIL's fixed-point arithmetic (L = R*299/1000 + G*587/1000 + B*114/1000)."""
    r, g, b = (rgb[..., k].astype(np.int64) for k in range(3))
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)


@pytest.fixture()
def rgba(tmp_path):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (23, 31, 4), dtype=np.uint8)
    arr[..., 3] = rng.integers(0, 256, (23, 31), dtype=np.uint8)  # alpha must be ignored
    path = tmp_path / "colour.png"
    Image.fromarray(arr, "RGBA").save(path)
    return path, arr


def test_png_rgba_becomes_grey_exactly_as_pil_convert_L(rgba):
    path, arr = rgba
    img = read_image(path, spacing=0.07)
    got = sitk.GetArrayFromImage(img)
    with Image.open(path) as im:
        ref = np.asarray(im.convert("L"))
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(got, luma_601(arr))  # and PIL's convert is ITU-R 601-2, alpha ignored
    assert img.GetSpacing() == pytest.approx((0.07, 0.07))
    assert img.GetSize() == (31, 23)


def test_grey_png_is_read_unchanged_with_anisotropic_spacing(tmp_path):
    arr = np.arange(12 * 7, dtype=np.uint8).reshape(12, 7)
    Image.fromarray(arr, "L").save(tmp_path / "g.png")
    img = read_image(tmp_path / "g.png", spacing=(0.1, 0.2))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(img), arr)
    assert img.GetSpacing() == pytest.approx((0.1, 0.2))


def test_jpeg_colour_is_read_as_pil_decodes_it(tmp_path):
    rng = np.random.default_rng(1)
    arr = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(arr, "RGB").save(tmp_path / "c.jpg", quality=95)
    with Image.open(tmp_path / "c.jpg") as im:
        decoded = np.asarray(im.convert("RGB"))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(read_image(tmp_path / "c.jpg")), luma_601(decoded))


def test_bmp_rgb_becomes_luma(tmp_path):
    rng = np.random.default_rng(2)
    arr = rng.integers(0, 256, (9, 13, 3), dtype=np.uint8)
    Image.fromarray(arr, "RGB").save(tmp_path / "c.bmp")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(read_image(tmp_path / "c.bmp")), luma_601(arr))


def test_png_mask_is_any_nonzero_colour_channel_and_ignores_alpha(tmp_path):
    arr = np.zeros((5, 6, 4), dtype=np.uint8)
    arr[1, 1, 0] = 255  # red
    arr[2, 3, 2] = 1  # faint blue
    arr[4, 5, 3] = 255  # alpha only: not part of the mask
    Image.fromarray(arr, "RGBA").save(tmp_path / "m.png")
    m = sitk.GetArrayFromImage(read_mask(tmp_path / "m.png", spacing=0.5))
    expected = np.zeros((5, 6), np.uint8)
    expected[1, 1] = expected[2, 3] = 1
    np.testing.assert_array_equal(m, expected)
    assert m.dtype == np.uint8


def test_several_masks_are_merged_by_logical_or(tmp_path):
    a = np.zeros((6, 6), np.uint8)
    b = np.zeros((6, 6), np.uint8)
    a[1:3, 1:3] = 255
    b[3:5, 2:6] = 7
    Image.fromarray(a).save(tmp_path / "a.png")
    Image.fromarray(b).save(tmp_path / "b.png")
    Image.fromarray(np.zeros((6, 6), np.uint8)).save(tmp_path / "img.png")
    merged = sitk.GetArrayFromImage(read_masks_union([tmp_path / "a.png", tmp_path / "b.png"]))
    np.testing.assert_array_equal(merged, ((a > 0) | (b > 0)).astype(np.uint8))
    _, m = read_case(tmp_path / "img.png", [str(tmp_path / "a.png"), str(tmp_path / "b.png")], spacing=0.1)
    assert sitk.GetArrayFromImage(m).sum() == ((a > 0) | (b > 0)).sum()


def _volume(spacing=(0.5, 0.6, 1.2), origin=(1.0, -2.0, 3.0), dtype=np.int16):
    arr = (np.arange(5 * 6 * 7).reshape(5, 6, 7) * 3).astype(dtype)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    return img, arr


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_volume_formats_keep_voxels_and_header_spacing(tmp_path, suffix):
    img, arr = _volume()
    path = tmp_path / f"vol{suffix}"
    sitk.WriteImage(img, str(path))
    got = read_image(path, spacing=9.0)  # the header rules, not the manifest
    np.testing.assert_array_equal(sitk.GetArrayFromImage(got), arr)
    assert got.GetSpacing() == pytest.approx((0.5, 0.6, 1.2))
    assert got.GetDimension() == 3
    mask = read_mask(path)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(mask), (arr != 0).astype(np.uint8))
    assert mask.GetSpacing() == pytest.approx((0.5, 0.6, 1.2))


def test_dicom_series_folder_is_read_with_slice_spacing_from_positions(tmp_path):
    img, arr = _volume(spacing=(0.7, 0.8, 2.5), origin=(0.0, 0.0, 0.0))
    folder = tmp_path / "series"
    folder.mkdir()
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    series_uid = "1.2.826.0.1.3680043.2.1125.1.42"
    for z in range(img.GetDepth()):
        sl = img[:, :, z]
        for tag, value in [
            ("0008|0060", "US"),
            ("0020|000e", series_uid),
            ("0020|000d", series_uid + ".1"),
            ("0008|0018", f"{series_uid}.2.{z}"),
            ("0020|0032", "\\".join(map(str, img.TransformIndexToPhysicalPoint((0, 0, z))))),
            ("0020|0037", "1\\0\\0\\0\\1\\0"),
            ("0020|0013", str(z)),
            ("0028|0030", "0.8\\0.7"),  # row spacing \ column spacing
        ]:
            sl.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"slice{z:03d}.dcm"))
        writer.Execute(sl)
    got = read_image(folder)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(got), arr)
    assert got.GetSpacing() == pytest.approx((0.7, 0.8, 2.5))


def test_read_case_checks_and_returns_matching_image_and_mask(tmp_path):
    img, arr = _volume()
    sitk.WriteImage(img, str(tmp_path / "i.nrrd"))
    m = sitk.GetImageFromArray((arr > 100).astype(np.uint8))
    m.CopyInformation(img)
    sitk.WriteImage(m, str(tmp_path / "m.nrrd"))
    image, mask = read_case(tmp_path / "i.nrrd", tmp_path / "m.nrrd", case_id="v1")
    assert image.GetSize() == mask.GetSize() == (7, 6, 5)
    assert int(sitk.GetArrayFromImage(mask).sum()) == int((arr > 100).sum())


# ---- bad input: one clear line naming the file and the remedy --------------------------------

def test_missing_image_file_names_the_path(tmp_path):
    with pytest.raises(InputError, match=r"Image file not found: .*nothere\.png\. Check the path"):
        read_image(tmp_path / "nothere.png")


def test_unreadable_image_file_names_the_path(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    with pytest.raises(InputError, match=r"broken\.png cannot be read as an image.*Re-export") as exc:
        read_image(bad)
    assert "\n" not in str(exc.value)
    vol = tmp_path / "broken.nii.gz"
    vol.write_bytes(b"garbage")
    with pytest.raises(InputError, match=r"broken\.nii\.gz cannot be read by SimpleITK") as exc:
        read_image(vol)
    assert "\n" not in str(exc.value)


# before the check, opening the pipe waited for a writer for ever, in SimpleITK's C++ where pytest-timeout's
# signal cannot stop it: the thread method ends the test run instead of hanging
@pytest.mark.timeout(60, method="thread")
@pytest.mark.parametrize("name", ["pipe.png", "pipe.nii.gz"])
def test_an_image_or_mask_that_is_a_named_pipe_is_refused_without_opening_it(tmp_path, name):
    import os

    os.mkfifo(tmp_path / name)
    Image.fromarray(np.pad(np.full((2, 2), 255, np.uint8), 2)).save(tmp_path / "ok.png")
    with pytest.raises(InputError, match=rf"^Image .*{name} is a named pipe \(FIFO\), not an image file or a DICOM series "
                                         r"folder\. Fix the path in the manifest\.$"):
        read_image(tmp_path / name)
    with pytest.raises(InputError, match=rf"^Mask .*{name} is a named pipe \(FIFO\), not a mask file"):
        read_case(tmp_path / "ok.png", tmp_path / name, 0.1)


def test_a_folder_is_a_dicom_series_only_where_the_name_is_no_2d_image(tmp_path):
    (tmp_path / "scan.png").mkdir()  # a folder named like a PNG: PIL's IsADirectoryError read as "not an image" before
    with pytest.raises(InputError, match=r"^Image .*scan\.png is a folder, not an image file\. Fix the path in the manifest\.$"):
        read_image(tmp_path / "scan.png")
    (tmp_path / "series").mkdir()  # still read as a DICOM series folder, which this one is not
    with pytest.raises(InputError, match=r"Image folder .*series holds no DICOM series"):
        read_image(tmp_path / "series")


def test_mask_image_shape_mismatch_is_an_error(tmp_path):
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(tmp_path / "img.png")
    Image.fromarray(np.full((10, 11), 255, np.uint8)).save(tmp_path / "mask.png")
    with pytest.raises(InputError, match=r"case 'c7': mask .*mask\.png has size \(11, 10\) but image .*img\.png has size \(12, 10\)"):
        read_case(tmp_path / "img.png", tmp_path / "mask.png", 0.1, case_id="c7")


def test_mask_image_spacing_mismatch_is_an_error(tmp_path):
    img, arr = _volume(spacing=(0.5, 0.5, 1.0))
    sitk.WriteImage(img, str(tmp_path / "i.nii.gz"))
    m = sitk.GetImageFromArray(np.ones_like(arr, dtype=np.uint8))
    m.SetSpacing((1.0, 1.0, 1.0))
    sitk.WriteImage(m, str(tmp_path / "m.nii.gz"))
    with pytest.raises(InputError, match=r"m\.nii\.gz has spacing .* but image .*i\.nii\.gz has .*Resample the mask"):
        read_case(tmp_path / "i.nii.gz", tmp_path / "m.nii.gz", case_id="v")


def test_empty_mask_is_an_error(tmp_path):
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "img.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "mask.png")
    with pytest.raises(InputError, match=r"case 'e1': mask .*mask\.png is empty.*Draw the lesion or drop the case"):
        read_case(tmp_path / "img.png", tmp_path / "mask.png", 0.1, case_id="e1")


def test_16_bit_png_and_tiff_keep_their_grey_levels(tmp_path):
    arr = (np.arange(6 * 5, dtype=np.uint16).reshape(6, 5) * 2000).astype(np.uint16)
    for name in ("g16.png", "g16.tif"):
        Image.fromarray(arr).save(tmp_path / name)
        got = sitk.GetArrayFromImage(read_image(tmp_path / name, spacing=0.2))
        np.testing.assert_array_equal(got, arr.astype(np.int64))
        m = sitk.GetArrayFromImage(read_mask(tmp_path / name))
        np.testing.assert_array_equal(m, (arr != 0).astype(np.uint8))


def _png_header(path, width, height):
    """A PNG whose header claims ``width`` x ``height`` grey pixels but holds no pixel data: opening it
    costs nothing, decoding it fails. Enough to test a limit that must act before decoding."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


def test_an_image_over_the_pixel_limit_is_refused_in_one_line_before_decoding(tmp_path, monkeypatch):
    """A 30000 x 30000 PNG (a decompression bomb): PIL's DecompressionBombError becomes one line."""
    from srnomogram.data.readers import MAX_PIXELS_ENV

    monkeypatch.delenv(MAX_PIXELS_ENV, raising=False)
    bomb = _png_header(tmp_path / "bomb.png", 30000, 30000)
    for read in (read_image, read_mask):
        with pytest.raises(InputError) as exc:
            read(bomb)
        msg = str(exc.value)
        assert "\n" not in msg
        assert f"{bomb} has 30000 x 30000 = 900000000 pixels, over the limit of 89478485" in msg
        assert "downscale the image" in msg and f"{MAX_PIXELS_ENV}=900000000" in msg
    with pytest.raises(InputError, match="900000000 pixels"):
        read_case(bomb, bomb, 0.1, case_id="b")


def test_the_pixel_limit_is_the_environment_setting(tmp_path, monkeypatch):
    from srnomogram.data.readers import MAX_PIXELS_ENV

    Image.fromarray(np.full((10, 12), 7, np.uint8)).save(tmp_path / "small.png")
    monkeypatch.setenv(MAX_PIXELS_ENV, "100")
    with pytest.raises(InputError, match=r"small\.png has 12 x 10 = 120 pixels, over the limit of 100 pixels"):
        read_image(tmp_path / "small.png")
    monkeypatch.setenv(MAX_PIXELS_ENV, "120")
    assert read_image(tmp_path / "small.png").GetSize() == (12, 10)
    # raised above twice PIL's own limit, PIL's check does not refuse first: the image is opened and
    # fails only where its (missing) pixel data is decoded
    monkeypatch.setenv(MAX_PIXELS_ENV, "1000000000")
    with pytest.raises(InputError, match=r"bomb\.png cannot be read as an image"):
        read_image(_png_header(tmp_path / "bomb.png", 30000, 30000))
    for bad in ("lots", "-5", "0"):
        monkeypatch.setenv(MAX_PIXELS_ENV, bad)
        with pytest.raises(InputError, match=rf"The {MAX_PIXELS_ENV} environment variable must be an integer > 0 \(pixels\)\. Got '{bad}' instead"):
            read_image(tmp_path / "small.png")


@pytest.mark.parametrize("spacing", [float("inf"), float("-inf"), 0.0, -1.0, (0.1, float("inf"))])
def test_spacing_must_be_finite_and_positive(tmp_path, spacing):
    Image.fromarray(np.full((6, 6), 7, np.uint8)).save(tmp_path / "i.png")
    with pytest.raises(InputError, match=r"Spacing .* for .*i\.png must be a finite number > 0"):
        read_image(tmp_path / "i.png", spacing)


def test_missing_spacing_means_unknown_and_gives_one_mm(tmp_path):
    Image.fromarray(np.full((6, 6), 7, np.uint8)).save(tmp_path / "i.png")
    for s in (None, float("nan"), np.float64("nan")):
        assert read_image(tmp_path / "i.png", s).GetSpacing() == (1.0, 1.0)
