"""Image and mask readers: 2D PNG/JPEG/BMP/TIFF, 3D NIfTI/NRRD/MHA and DICOM series.

Every reader returns a SimpleITK image so that spacing travels with the pixels and PyRadiomics
receives exactly what it would read itself.

* Colour 2D images become grey by ITU-R 601-2 luma exactly as ``PIL.Image.convert("L")`` does
  (alpha ignored). 163 of the 256 BrEaST images carry colour overlays, so this choice matters.
* Masks are "any non-zero pixel" (any colour channel for RGB(A) masks; alpha ignored).
* 2D spacing is given by the caller (mm per pixel, from the manifest); 3D spacing comes from
  the file header.
* A 2D raster over :func:`max_image_pixels` pixels (a "decompression bomb": a small file that
  decodes to gigabytes) is refused from its header, before decoding, with one line naming the
  image, its pixel count, the limit and the remedy. The limit is PIL's default, 89,478,485 pixels
  (a 24-bit image of 0.25 GiB), raised or lowered with ``SRNOMOGRAM_MAX_IMAGE_PIXELS``.
"""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..utils import not_a_file

IMAGE_2D_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
VOLUME_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd", ".dcm")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".nii.gz"):
        return ".nii.gz"
    return path.suffix.lower()


def is_2d_path(path: str | os.PathLike) -> bool:
    """True when ``path`` names a 2D raster image format read through PIL."""
    return _suffix(Path(path)) in IMAGE_2D_SUFFIXES


def _check_exists(path: Path, what: str) -> None:
    """A regular file, or a folder (a DICOM series) where the name is no 2D raster's; checked before opening it."""
    if not path.exists():
        raise InputError(f"{what} file not found: {path}. Check the path in the manifest (paths are relative to the manifest's folder).")
    kind = not_a_file(path)
    if kind and (kind != "a folder" or is_2d_path(path)):  # a named pipe would be waited on for ever
        raise InputError(f"{what} {path} is {kind}, not {'an image' if what == 'Image' else 'a mask'} file"
                         f"{'' if kind == 'a folder' else ' or a DICOM series folder'}. Fix the path in the manifest.")


MAX_PIXELS_ENV = "SRNOMOGRAM_MAX_IMAGE_PIXELS"
DEFAULT_MAX_IMAGE_PIXELS = 1024 * 1024 * 1024 // 4 // 3  # PIL's own default: 89,478,485
_PIL_OPEN = threading.Lock()


def max_image_pixels() -> int:
    """The most pixels a 2D raster may have: ``$SRNOMOGRAM_MAX_IMAGE_PIXELS``, else PIL's default 89,478,485.

    Read on every call, so that worker processes (local or on a Dask cluster) inherit it.
    """
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_IMAGE_PIXELS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise InputError(f"The {MAX_PIXELS_ENV} environment variable must be an integer > 0 (pixels). Got {raw[:40]!r} instead.")
    return value


def _open_pil(path: Path, what: str):
    """``PIL.Image.open`` (header only) with our pixel limit in place of PIL's.

    PIL warns above its ``MAX_IMAGE_PIXELS`` and refuses above twice it, with a traceback. Its check
    is switched off for this one open (under a lock, and restored at once), so that the limit of
    :func:`max_image_pixels` alone decides, both ways, and says what to do.
    """
    from PIL import Image

    limit = max_image_pixels()
    with _PIL_OPEN:
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            im = Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    w, h = im.size
    if w * h > limit:
        im.close()
        raise InputError(
            f"{what} file {path} has {w} x {h} = {w * h} pixels, over the limit of {limit} pixels (a decompression-bomb "
            f"guard); downscale the image, or if it is genuine, set {MAX_PIXELS_ENV}={w * h}."
        )
    return im


def _read_pil_array(path: Path, what: str, as_mask: bool) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with _open_pil(path, what) as im, warnings.catch_warnings():
            # decoding may repeat PIL's size check (TIFF tiles); ours above has already decided
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im.load()
            mode = im.mode
            if as_mask:
                if mode in ("RGB", "RGBA", "RGBX", "CMYK", "P", "PA", "LA", "YCbCr"):
                    rgb = np.asarray(im.convert("RGB"))
                    return np.any(rgb != 0, axis=-1).astype(np.uint8)
                return (np.asarray(im) != 0).astype(np.uint8)
            if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                return np.asarray(im).astype(np.float64 if mode == "F" else np.int32)
            if mode != "L":
                im = im.convert("L")  # ITU-R 601-2 luma; alpha is dropped
            return np.asarray(im)
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise InputError(f"{what} file {path} cannot be read as an image ({exc}). Re-export it as PNG or check that it is not truncated.") from None


def _read_volume(path: Path, what: str):
    import SimpleITK as sitk

    try:
        if path.is_dir():
            reader = sitk.ImageSeriesReader()
            files = reader.GetGDCMSeriesFileNames(str(path))
            if not files:
                raise InputError(f"{what} folder {path} holds no DICOM series. Point the manifest at a DICOM series folder or a volume file.")
            reader.SetFileNames(files)
            return reader.Execute()
        return sitk.ReadImage(str(path))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unknown error"
        raise InputError(f"{what} file {path} cannot be read by SimpleITK ({first}). Check the file is a valid NIfTI/NRRD/MHA/DICOM.") from None


def _spacing_2d(spacing, path: Path) -> tuple[float, float]:
    """``(x, y)`` mm per pixel; ``None`` or NaN (an empty manifest cell) is unknown and gives 1.0 (per pixel).

    Infinity, zero and negative values are errors: infinity once fell through to 1.0 unnoticed.
    """
    if spacing is None or (isinstance(spacing, float) and np.isnan(spacing)):
        return (1.0, 1.0)
    if np.isscalar(spacing):
        s = float(spacing)
        sp = (s, s)
    else:
        sp = tuple(float(v) for v in spacing)[:2]
    if not all(np.isfinite(v) and v > 0 for v in sp):
        shown = spacing.item() if isinstance(spacing, np.generic) else spacing
        raise InputError(f"Spacing {shown!r} for {path} must be a finite number > 0 (mm per pixel). Fix the manifest's 'spacing' column.")
    return sp


def _read_file(path, what: str, spacing):
    """``(SimpleITK image, is_2d)``: a 2D raster (``what`` "Mask" binarised) with its spacing, or a volume as stored."""
    import SimpleITK as sitk

    path = Path(path)
    _check_exists(path, what)
    if not is_2d_path(path):
        return _read_volume(path, what), False
    img = sitk.GetImageFromArray(_read_pil_array(path, what, as_mask=what == "Mask"))
    img.SetSpacing(_spacing_2d(spacing, path))
    return img, True


def read_image(path: str | os.PathLike, spacing=None):
    """Read an image as a SimpleITK image.

    Parameters
    ----------
    path : path-like
        A 2D raster (PNG/JPEG/BMP/TIFF), a volume file (NIfTI/NRRD/MHA) or a DICOM series folder.
    spacing : float or sequence of float, optional
        Pixel spacing in mm for 2D rasters (x, y). Ignored for volumes, whose header rules.

    Returns
    -------
    SimpleITK.Image
        Grey image; 2D rasters keep their integer pixel type (uint8 for 8-bit PNG).
    """
    import SimpleITK as sitk

    img, is_2d = _read_file(path, "Image", spacing)
    if is_2d:
        return img
    if img.GetNumberOfComponentsPerPixel() > 1:
        img = sitk.VectorIndexSelectionCast(img, 0)
    return img


def read_mask(path: str | os.PathLike, spacing=None):
    """Read a mask as a SimpleITK uint8 image with 1 where the file is non-zero."""
    import SimpleITK as sitk

    m, is_2d = _read_file(path, "Mask", spacing)
    if is_2d:
        return m
    arr = sitk.GetArrayFromImage(m)
    if arr.ndim == m.GetDimension() + 1:  # vector pixels
        arr = np.any(arr != 0, axis=-1)
    out = sitk.GetImageFromArray((arr != 0).astype(np.uint8))
    out.CopyInformation(m) if out.GetDimension() == m.GetDimension() else None
    return out


def read_masks_union(paths, spacing=None):
    """Read several masks of one image and merge them (logical OR)."""
    import SimpleITK as sitk

    paths = list(paths)
    first = read_mask(paths[0], spacing)
    acc = sitk.GetArrayFromImage(first).astype(bool)
    for p in paths[1:]:
        a = sitk.GetArrayFromImage(read_mask(p, spacing)).astype(bool)
        if a.shape != acc.shape:
            raise InputError(f"Mask {p} has shape {a.shape} but {paths[0]} has {acc.shape}; masks of one image must have the image's size.")
        acc |= a
    out = sitk.GetImageFromArray(acc.astype(np.uint8))
    out.CopyInformation(first)
    return out


def read_case(image_path, mask_path, spacing=None, case_id: str | None = None):
    """Read an image and its mask, checking that they belong together.

    Raises
    ------
    InputError
        If a file is missing or unreadable, the shapes or spacings differ, or the mask is empty.
    """
    where = f"case {case_id!r}: " if case_id is not None else ""
    image = read_image(image_path, spacing)
    if isinstance(mask_path, (list, tuple)):
        mask = read_masks_union(mask_path, spacing)
        mask_name = mask_path[0]
    else:
        mask = read_mask(mask_path, spacing)
        mask_name = mask_path
    if image.GetSize() != mask.GetSize():
        raise InputError(
            f"{where}mask {mask_name} has size {mask.GetSize()} but image {image_path} has size {image.GetSize()}. "
            "Masks must be drawn on the image they belong to."
        )
    if not np.allclose(image.GetSpacing(), mask.GetSpacing(), rtol=1e-4, atol=1e-6):
        raise InputError(
            f"{where}mask {mask_name} has spacing {mask.GetSpacing()} but image {image_path} has {image.GetSpacing()}. "
            "Resample the mask onto the image grid."
        )
    mask.CopyInformation(image)
    import SimpleITK as sitk

    if not sitk.GetArrayViewFromImage(mask).any():
        raise InputError(f"{where}mask {mask_name} is empty (no non-zero pixel). Draw the lesion or drop the case from the manifest.")
    return image, mask
