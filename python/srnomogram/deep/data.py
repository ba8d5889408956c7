"""ROI dataset of the deep-learning arm: every lesion's rectangular crop, preloaded once.

Yang & Ma fed the networks a rectangular region of interest around each lesion, resized to
224 × 224. Here, per lesion:

1. The image and its mask(s) are read with :func:`srnomogram.data.readers.read_case`
   (``;``-joined masks are merged). For a 3D volume the axial slice (array axis 0) whose mask
   has the largest in-plane maximal Feret diameter in mm is used, as the paper used the slice of
   maximal lesion diameter (ties: the first such slice).
2. The mask's bounding box is grown by ``margin`` × its height (rows) and width (columns) on
   each side. Where the grown box leaves the image, ``bounds`` decides: ``"clip"`` (default)
   keeps the part inside the image, ``"pad"`` keeps the full box and fills the outside with 0
   (black, the background of ultrasound scans), ``"error"`` raises an :class:`InputError`.
3. Grey values are scaled to [0, 1]: 8-bit images by 1/255, any other type by the image's
   (slice's) own minimum and maximum.
4. The crop is resized (bilinear, antialiased) to ``size`` × ``size`` and stored as uint8; its
   mask is resized with nearest-neighbour. The square resize follows the paper (rectangular ROI
   to 224 × 224); aspect ratio is not kept.

All lesions sit in one uint8 tensor ``(N, 1, size, size)``: 266 lesions at 256 px take 17 MB,
so the whole training set can live on the accelerator and be augmented there
(:mod:`srnomogram.deep.presets`). Grey becomes three channels only at normalisation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import InputError, param_error

BOUNDS = ("clip", "pad", "error")


@dataclass
class RoiSet:
    """Preloaded ROI crops of a cohort (or of a subset of it).

    Attributes
    ----------
    images : torch.Tensor
        uint8, shape (N, 1, size, size): grey ROI crops.
    masks : torch.Tensor
        uint8 (0/1), same shape: the lesion masks on the same grid.
    labels : torch.Tensor
        int64, shape (N,): 1 malignant, 0 benign (-1 when the manifest has no label).
    case_ids : list of str
    boxes : numpy.ndarray
        int64, shape (N, 4): the crop box ``(row0, col0, row1, col1)`` in the source image's pixels
        (end exclusive; may extend beyond the image in ``"pad"`` mode).
    slices : numpy.ndarray
        int64, shape (N,): the slice used for 3D volumes, -1 for 2D images.
    """

    images: torch.Tensor
    masks: torch.Tensor
    labels: torch.Tensor
    case_ids: list
    boxes: np.ndarray
    slices: np.ndarray
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def subset(self, index) -> "RoiSet":
        """Rows ``index`` (boolean mask or integer positions) as a new RoiSet."""
        idx = np.flatnonzero(np.asarray(index)) if np.asarray(index).dtype == bool else np.asarray(index, dtype=np.int64)
        t = torch.as_tensor(idx, dtype=torch.long)
        return RoiSet(self.images[t], self.masks[t], self.labels[t], [self.case_ids[i] for i in idx], self.boxes[idx], self.slices[idx], dict(self.meta))


def roi_box(mask2d: np.ndarray, margin: float = 0.1, bounds: str = "clip", where: str = "") -> tuple[int, int, int, int]:
    """Crop box ``(row0, col0, row1, col1)`` (end exclusive) around the mask's bounding box.

    Parameters
    ----------
    mask2d : ndarray of shape (rows, cols)
        Non-zero pixels belong to the lesion.
    margin : float
        Added on each side as a fraction of the bounding box's height (rows) and width (cols),
        rounded to whole pixels.
    bounds : {"clip", "pad", "error"}
        What to do when the grown box leaves the image (see the module docstring).

    Raises
    ------
    InputError
        Empty mask, or ``bounds="error"`` and the box leaves the image.
    """
    rows = np.flatnonzero(np.any(mask2d, axis=1))
    cols = np.flatnonzero(np.any(mask2d, axis=0))
    if rows.size == 0:
        raise InputError(f"{where}the mask is empty; an ROI needs at least one lesion pixel.")
    r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    mr, mc = int(round(margin * (r1 - r0))), int(round(margin * (c1 - c0)))
    r0, r1, c0, c1 = r0 - mr, r1 + mr, c0 - mc, c1 + mc
    h, w = mask2d.shape
    outside = r0 < 0 or c0 < 0 or r1 > h or c1 > w
    if outside and bounds == "error":
        raise InputError(
            f"{where}the ROI crop (rows {r0}:{r1}, cols {c0}:{c1}) with margin={margin} falls outside the {h}x{w} image. "
            "Lower 'margin', or pass roi_bounds='clip' (crop at the image border) or roi_bounds='pad' (fill with black)."
        )
    if bounds == "clip":
        r0, c0, r1, c1 = max(r0, 0), max(c0, 0), min(r1, h), min(c1, w)
    return r0, c0, r1, c1


def crop(arr: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Crop ``arr`` (rows, cols) to ``box``, zero-filling any part outside the array."""
    r0, c0, r1, c1 = box
    h, w = arr.shape
    out = np.zeros((r1 - r0, c1 - c0), dtype=arr.dtype)
    sr0, sc0, sr1, sc1 = max(r0, 0), max(c0, 0), min(r1, h), min(c1, w)
    if sr1 > sr0 and sc1 > sc0:
        out[sr0 - r0 : sr1 - r0, sc0 - c0 : sc1 - c0] = arr[sr0:sr1, sc0:sc1]
    return out


def max_diameter_slice(mask3d: np.ndarray, spacing_xy=(1.0, 1.0)) -> int:
    """Index (array axis 0) of the slice whose mask has the largest maximal Feret diameter.

    Uses :func:`srnomogram.data.geometry.max_feret_diameter` with the in-plane spacing (x, y);
    ties go to the first slice.
    """
    from ..data.geometry import max_feret_diameter

    present = np.flatnonzero(mask3d.reshape(mask3d.shape[0], -1).any(axis=1))
    if present.size == 0:
        raise InputError("the 3D mask is empty; an ROI needs at least one lesion voxel.")
    diam = np.array([max_feret_diameter(mask3d[k], spacing_xy) for k in present])
    return int(present[int(np.argmax(diam))])


def to_unit(arr: np.ndarray) -> np.ndarray:
    """Grey values to float32 in [0, 1]: uint8 by 1/255, other types by their own min/max."""
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    a = arr.astype(np.float64)
    lo, hi = float(np.min(a)), float(np.max(a))
    return ((a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)).astype(np.float32)


def _resize(arr: np.ndarray, size: int, nearest: bool) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))[None, None]
    if nearest:
        return torch.nn.functional.interpolate(t, size=(size, size), mode="nearest")[0]
    return torch.nn.functional.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0]


def roi_from_arrays(image: np.ndarray, mask: np.ndarray, size: int, margin: float = 0.1, bounds: str = "clip", spacing=(1.0, 1.0, 1.0), where: str = ""):
    """One lesion's ROI from NumPy arrays (2D (rows, cols) or 3D (slices, rows, cols)).

    Returns ``(image_u8 (1,size,size), mask_u8 (1,size,size), box, slice_index)``.
    """
    slice_index = -1
    mask = np.asarray(mask) != 0
    if image.ndim == 3:
        slice_index = max_diameter_slice(mask, tuple(spacing)[:2])
        image, mask = image[slice_index], mask[slice_index]
    elif image.ndim != 2:
        raise InputError(f"{where}image has {image.ndim} dimensions; ROIs need a 2D image or a 3D volume.")
    box = roi_box(mask, margin, bounds, where)
    unit = to_unit(np.asarray(image))
    img = _resize(crop(unit, box), size, nearest=False)
    msk = _resize(crop(mask.astype(np.float32), box), size, nearest=True)
    img_u8 = torch.round(img.clamp(0, 1) * 255).to(torch.uint8)
    return img_u8, msk.to(torch.uint8), box, slice_index


def mask_column(df, image_col: str) -> str:
    """The mask column that belongs to ``image_col``: ``mask_sr`` for ``image_sr`` when present, else ``mask``."""
    cand = "mask" + image_col[len("image"):] if image_col.startswith("image") else None
    if cand and cand != "mask" and cand in df.columns and df[cand].notna().all():
        return cand
    return "mask"


def load_rois(df, image_col: str = "image", size: int = 256, margin: float = 0.1, bounds: str = "clip", mask_col: str | None = None, progress: bool | None = None) -> RoiSet:
    """Read every lesion of a manifest and return its ROI crops as one :class:`RoiSet`.

    Parameters
    ----------
    df : pandas.DataFrame
        A manifest (see :func:`srnomogram.data.load_manifest`): ``case_id``, ``image_col``,
        a mask column, optionally ``label`` and ``spacing`` (mm per pixel, 2D).
    image_col : str
        Column with the image paths (``image`` for OR, ``image_sr`` for SR images).
    size : int
        Side of the stored square crops, before augmentation's random crop.
    margin, bounds
        See :func:`roi_box`.
    mask_col : str, optional
        Defaults to :func:`mask_column`.
    progress : bool or None
        tqdm progress bar (None: only on a terminal).
    """
    import SimpleITK as sitk
    from tqdm.auto import tqdm

    from ..data.manifest import mask_paths
    from ..data.readers import read_case

    if image_col not in df.columns:
        raise InputError(f"The manifest has no column {image_col!r}; image columns are {[c for c in df.columns if c.startswith('image')]}.")
    if not isinstance(size, (int, np.integer)) or size < 8:
        raise param_error("size", "load_rois", "an int >= 8", size)
    if not isinstance(margin, (int, float)) or margin < 0 or not np.isfinite(margin):
        raise param_error("margin", "load_rois", "a float >= 0 (fraction of the lesion box on each side)", margin)
    if bounds not in BOUNDS:
        raise param_error("roi_bounds", "load_rois", f"one of {list(BOUNDS)}", bounds)
    mask_col = mask_col or mask_column(df, image_col)
    n = len(df)
    images = torch.zeros((n, 1, size, size), dtype=torch.uint8)
    masks = torch.zeros_like(images)
    boxes = np.zeros((n, 4), dtype=np.int64)
    slices = np.full(n, -1, dtype=np.int64)
    has_spacing = "spacing" in df.columns
    disable = None if progress is None else not progress
    for i, row in enumerate(tqdm(df.to_dict("records"), total=n, desc="ROIs", disable=disable, leave=False)):
        cid = str(row["case_id"])
        where = f"case {cid!r} ({row[image_col]}): "
        if row[image_col] is None or (isinstance(row[image_col], float) and np.isnan(row[image_col])):
            raise InputError(f"case {cid!r}: column {image_col!r} is empty. Every lesion needs an image in that column.")
        sp = row.get("spacing") if has_spacing else None
        img, msk = read_case(row[image_col], mask_paths(row[mask_col]), sp, cid)
        arr_i = sitk.GetArrayFromImage(img)
        arr_m = sitk.GetArrayFromImage(msk)
        images[i], masks[i], box, slices[i] = roi_from_arrays(arr_i, arr_m, int(size), margin, bounds, img.GetSpacing(), where)
        boxes[i] = box
    labels = torch.as_tensor(np.array(df["label"], dtype=np.int64) if "label" in df.columns else np.full(n, -1), dtype=torch.long)
    meta = {"image_col": image_col, "mask_col": mask_col, "size": int(size), "margin": float(margin), "bounds": bounds}
    return RoiSet(images, masks, labels, [str(c) for c in df["case_id"]], boxes, slices, meta)
