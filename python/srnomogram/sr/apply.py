"""Applying a trained generator: to arrays, SimpleITK images and whole manifests.

What "super-resolution at the original size" means here
--------------------------------------------------------
The generator learns, from the cohort's own images, to undo the paper's degradation (noise +
down-sampling by 2 along one axis). Applied to an *original* image it treats that image as the
low-resolution observation and doubles its resolution:

* **3D volumes** (SMORE, Zhao et al. 2021): learned from in-plane (axial) slices, applied along z on
  every coronal and sagittal plane, the two results averaged. Output at 2x z (z spacing halved,
  origin unchanged) or, with ``resample_back=True``, anti-aliased back onto the original grid.
* **2D images**: applied along rows, then along columns (2x both axes, spacing halved). The paper
  kept "the original image dimensions", so by default the 2x image is anti-aliased back onto the
  original grid (Gaussian of FWHM 2 HR pixels, then every second sample, which lands on the original
  pixel centres). The result differs from the original by what the generator learned (noise removed,
  edges restored) rather than by a change of grid; masks stay valid unchanged.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np

from ..errors import InputError, param_error
from .degradation import antialias_downsample_axis

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# arrays
# ---------------------------------------------------------------------------------------------


def intensity_scaling(arr: np.ndarray) -> tuple[float, float]:
    """``(offset, scale)`` mapping ``arr`` into [0, 1]: uint8 by 1/255, anything else by its min/max."""
    if arr.dtype == np.uint8:
        return 0.0, 1.0 / 255.0
    lo, hi = float(np.min(arr)), float(np.max(arr))
    return lo, (1.0 / (hi - lo) if hi > lo else 1.0)


def check_array(arr: np.ndarray, where: str = "image") -> np.ndarray:
    """Reject what super-resolution cannot take: not 2D/3D, axes shorter than 2, non-finite voxels."""
    arr = np.asarray(arr)
    if arr.ndim not in (2, 3):
        raise InputError(f"{where} must be a 2D image or a 3D volume (z, y, x). Got an array of shape {arr.shape} instead.")
    if min(arr.shape) < 2:
        raise InputError(f"{where} has shape {arr.shape}; every axis needs at least 2 samples for super-resolution. A one-slice volume is a 2D image: store it as one.")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise InputError(f"{where} must hold real numbers. Got dtype {arr.dtype} instead.")
    if np.issubdtype(arr.dtype, np.floating):
        bad = ~np.isfinite(arr)
        if bad.any():
            raise InputError(f"{where} has {int(bad.sum())} non-finite voxel(s) (NaN or inf), the first at index {tuple(int(i) for i in np.argwhere(bad)[0])}. Fill or mask them before super-resolution.")
    return arr


def upsample_axis01(G, x01: np.ndarray, axis: int, device, bf16: bool | None = None) -> np.ndarray:
    """Double ``axis`` of a [0, 1]-scaled 2D or 3D array with the generator.

    2D: one pass. 3D: the axis is up-sampled on the planes through each of the two other axes and
    the two results are averaged (SMORE's orthogonal-plane averaging).
    """
    from .engine import upsample_rows

    x = np.moveaxis(np.asarray(x01, dtype=np.float32), axis, 0)
    if x.ndim == 2:
        y = upsample_rows(G, x[None], device, bf16=bf16)[0]
    else:
        a = upsample_rows(G, x.transpose(1, 0, 2), device, bf16=bf16).transpose(1, 0, 2)  # planes (axis, dim2) per dim1
        b = upsample_rows(G, x.transpose(2, 0, 1), device, bf16=bf16).transpose(1, 2, 0)  # planes (axis, dim1) per dim2
        y = 0.5 * (a + b)
    return np.moveaxis(y, 0, axis)


#: PyTorch convolves one float32 image of at most this many input values with its own im2col +
#: GEMM kernel and larger ones with oneDNN (``ConvParams::use_mkldnn`` in
#: aten/src/ATen/native/Convolution.cpp); the two sum in different orders and differ in the last
#: bit. An ROI window is grown past this size so that it runs the kernel a whole image runs.
ONEDNN_MIN_VALUES = 20480


def roi_halo(G) -> int:
    """Pixels of context an ROI window needs on each side so that SR inside it equals whole-image SR.

    2D SR runs the generator along rows, then along columns, then (when resampling back) a Gaussian
    of radius 3 high-resolution pixels (2 original pixels) per axis; each pass reaches
    :func:`~srnomogram.sr.networks.receptive_radius` pixels along and across (the radius its
    generator registered). The halo is their sum, also an upper bound for 3D (z) SR.
    """
    from .networks import receptive_radius

    along, across = receptive_radius(G)
    return along + across + 2


def read_box(mask: np.ndarray, margin: float = 0.1) -> tuple[slice, ...]:
    """The part of an image that the readers of SR images read around a lesion: the mask's bounding
    box grown on each side by ``ceil(margin * extent)`` and at least 1 pixel per axis, clipped to the image.

    The CNN crop (:func:`srnomogram.deep.data.roi_box`) grows the box by ``round(margin * extent)``
    and the PyRadiomics extraction reads the box plus 1 voxel, so both lie inside it.
    """
    mask = np.asarray(mask) != 0
    if not mask.any():
        raise InputError("the mask is empty; ROI-only super-resolution needs at least one lesion pixel (or use region='image').")
    out = []
    for ax, n in enumerate(mask.shape):
        idx = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != ax)))
        lo, hi = int(idx[0]), int(idx[-1]) + 1
        grow = max(1, int(np.ceil(margin * (hi - lo))))
        out.append(slice(max(lo - grow, 0), min(hi + grow, n)))
    return tuple(out)


def sr_window(box: tuple[slice, ...], halo: int, shape: tuple[int, ...], align: int = 1) -> tuple[slice, ...]:
    """``box`` grown by ``halo`` on each side and clipped to ``shape``; a 2D window is then grown
    further (8 pixels a side at a time, clipped) until it holds more than :data:`ONEDNN_MIN_VALUES`
    pixels or is the whole image. (3D SR batches several planes, which oneDNN always takes.)
    Its start is then moved down to a multiple of ``align`` (the generator's
    :func:`~srnomogram.sr.networks.window_align`: a pooling network sees the whole image's grid)."""
    lo = [max(b.start - halo, 0) for b in box]
    hi = [min(b.stop + halo, n) for b, n in zip(box, shape)]
    while len(shape) == 2 and (hi[0] - lo[0]) * (hi[1] - lo[1]) <= ONEDNN_MIN_VALUES and (lo != [0, 0] or hi != list(shape)):
        lo = [max(a - 8, 0) for a in lo]
        hi = [min(b + 8, n) for b, n in zip(hi, shape)]
    return tuple(slice(a - a % align, b) for a, b in zip(lo, hi))


def _sr01(G, x: np.ndarray, axes, device, resample_back: bool, bf16) -> np.ndarray:
    for ax in axes:
        x = upsample_axis01(G, x, ax, device, bf16)
    if resample_back:
        for ax in axes:
            x = antialias_downsample_axis(x, ax)
    return x


def super_resolve_array(G, arr: np.ndarray, device, resample_back: bool = False, bf16: bool | None = None,
                        boxes=None) -> np.ndarray:
    """SR of a raw array in its own intensity units (float32).

    2D: both axes doubled; 3D ``(z, y, x)``: z doubled. With ``resample_back`` the result is
    anti-aliased back to ``arr``'s shape.

    ``boxes`` (a list of tuples of slices, e.g. from :func:`read_box`) restricts the generator to
    those parts of the image: each box is super-resolved in a window with :func:`roi_halo` pixels of
    context, so inside the boxes the result equals whole-image SR (tested: bit for bit in float32),
    and every other pixel gets the generator's fixed cubic path alone
    (:class:`~srnomogram.sr.networks.CubicUpsampler`, resampled back the same way). The intensity
    scaling always comes from the whole image.
    """
    from .networks import CubicUpsampler, window_align

    arr = check_array(arr)
    off, sc = intensity_scaling(arr)
    x = (arr.astype(np.float32) - off) * sc
    axes = (0, 1) if arr.ndim == 2 else (0,)
    if boxes is None:
        return _sr01(G, x, axes, device, resample_back, bf16) / sc + off
    y = _sr01(CubicUpsampler(), x, axes, device, resample_back, False)
    halo, align = roi_halo(G), window_align(G)
    f = [1 if resample_back or ax not in axes else 2 for ax in range(arr.ndim)]  # output pixels per input pixel
    for box in boxes:
        win = sr_window(box, halo, arr.shape, align)
        part = _sr01(G, x[win], axes, device, resample_back, bf16)
        dst = tuple(slice(k * b.start, k * b.stop) for k, b in zip(f, box))
        src = tuple(slice(k * (b.start - w.start), k * (b.stop - w.start)) for k, b, w in zip(f, box, win))
        y[dst] = part[src]
    return y / sc + off


def to_dtype_of(x: np.ndarray, like: np.dtype) -> np.ndarray:
    """Round and clip back to an integer dtype (documented: SR PNGs are uint8, clipped to 0..255 and rounded)."""
    if np.issubdtype(like, np.integer):
        info = np.iinfo(like)
        return np.clip(np.rint(x), info.min, info.max).astype(like)
    return x.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# SimpleITK images
# ---------------------------------------------------------------------------------------------


def check_volume_geometry(img, where: str = "volume", rtol: float = 0.1) -> None:
    """z-SR needs several slices and an in-plane that is at least as fine as z, and isotropic.

    SMORE's premise is that the in-plane (x, y) resolution is the one z should reach; training pairs
    come from in-plane slices degraded along x or y, so x and y must share a spacing.
    """
    size, sp = img.GetSize(), img.GetSpacing()
    if size[2] < 2:
        raise InputError(f"{where} has a single slice (size {size}); z super-resolution needs at least 2. Store it as a 2D image instead.")
    sx, sy, sz = sp[:3]
    if abs(sx - sy) > rtol * max(sx, sy):
        raise InputError(f"{where} has anisotropic in-plane spacing {sx:g} x {sy:g} mm; z-SR learns from in-plane slices and needs x and y spacing within {rtol:.0%}. Resample it in-plane first.")
    if sz < (1 - rtol) * min(sx, sy):
        raise InputError(f"{where} has z spacing {sz:g} mm finer than its in-plane spacing {min(sx, sy):g} mm; z-SR makes no sense when z is already the finest axis. Resample the volume so that z is the coarse axis.")


def super_resolve_image(G, img, device, resample_back: bool = True, where: str = "image", bf16: bool | None = None, boxes=None):
    """SR of a SimpleITK image (2D: both axes; 3D: z), returning a SimpleITK image.

    Without ``resample_back`` the doubled axes have half the spacing and the same origin (LR
    sample ``i`` is HR sample ``2 i``); with it, the result is on ``img``'s grid. ``boxes``: SR only
    there (array index order; see :func:`super_resolve_array`).
    """
    import SimpleITK as sitk

    if img.GetDimension() == 3:
        check_volume_geometry(img, where)
    arr = sitk.GetArrayFromImage(img)
    arr = check_array(arr, where)
    y = super_resolve_array(G, arr, device, resample_back=resample_back, bf16=bf16, boxes=boxes)
    y = to_dtype_of(y, arr.dtype)
    out = sitk.GetImageFromArray(y)
    out.SetOrigin(img.GetOrigin())
    out.SetDirection(img.GetDirection())
    sp = list(img.GetSpacing())
    if not resample_back:
        if img.GetDimension() == 2:
            sp = [s / 2 for s in sp]
        else:
            sp[2] = sp[2] / 2
    out.SetSpacing(sp)
    return out


def resample_mask(mask, reference):
    """Nearest-neighbour resampling of a mask onto ``reference``'s grid (SimpleITK)."""
    import SimpleITK as sitk

    return sitk.Resample(mask, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)


# ---------------------------------------------------------------------------------------------
# files and manifests
# ---------------------------------------------------------------------------------------------


SIDECAR_FORMAT = "srnomogram.sr-apply/1"


def _split_name(path: Path) -> tuple[str, str]:
    name = path.name
    if name.lower().endswith(".nii.gz"):
        return name[:-7], ".nii.gz"
    return path.stem, path.suffix


def sr_path(src: str | os.PathLike, out_dir, tag: str, is_2d: bool, name: str | None = None) -> Path:
    """Where the SR version of ``src`` goes: ``<name or stem><tag>.png`` (2D) or ``.nii.gz`` (3D).

    ``name`` must be a safe file-name component (:func:`srnomogram.utils.safe_name`); by default the
    source file's own stem, which is one.
    """
    src = Path(src)
    stem = name if name is not None else _split_name(src)[0]
    folder = Path(out_dir) if out_dir is not None else src.parent
    return folder / f"{stem}{tag}{'.png' if is_2d else '.nii.gz'}"


def sidecar_path(dst: Path) -> Path:
    """The JSON beside an SR file that records which model, settings and inputs made it."""
    return dst.with_name(dst.name + ".json")


def generator_digest(G) -> str:
    """SHA-256 of a generator's weights (names, dtypes, shapes and bytes, in state_dict order)."""
    import torch

    from ..utils import hash_bytes

    parts = []
    for k, v in G.state_dict().items():
        t = v.detach().cpu().contiguous()
        parts += [k, str(t.dtype), str(tuple(t.shape)), t.reshape(-1).view(torch.uint8).numpy().tobytes()]
    return hash_bytes(*parts)


def _input_digest(path) -> str:
    """SHA-256 of an input image: a file's bytes, or a DICOM folder's files (names and bytes)."""
    from ..utils import file_sha256, hash_bytes

    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        return hash_bytes(*(x for p in files for x in (p.relative_to(path).as_posix(), file_sha256(p))))
    return file_sha256(path)


def _reusable(dst: Path, outputs: list[Path], key: str) -> bool:
    """True when ``dst``'s sidecar has ``key`` and every output is present with its recorded hash."""
    import json

    from ..utils import file_sha256

    try:
        meta = json.loads(sidecar_path(dst).read_text(encoding="utf-8"))
        if meta.get("format") != SIDECAR_FORMAT or meta.get("key") != key:
            return False
        recorded = meta["outputs"]
        return len(recorded) == len(outputs) and all(o.is_file() and file_sha256(o) == recorded.get(o.name) for o in outputs)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def write_image(img, path: Path, is_2d: bool) -> None:
    """Write atomically: 2D as PNG (uint8 / uint16), 3D as NIfTI."""
    import SimpleITK as sitk

    from ..utils import atomic_path

    suffix = ".png" if is_2d else ".nii.gz"
    with atomic_path(path, suffix=suffix) as tmp:
        if is_2d:
            from PIL import Image

            Image.fromarray(sitk.GetArrayFromImage(img)).save(tmp, format="PNG")
        else:
            sitk.WriteImage(img, str(tmp), useCompression=True)


def default_manifest_out(manifest_path, resample_back: bool = True) -> Path:
    """``cohort.csv`` → ``cohort_sr.csv`` (``cohort_sr2x.csv`` at 2x), beside it: the input is never overwritten by default."""
    manifest_path = Path(manifest_path)
    return manifest_path.with_name(f"{manifest_path.stem}{'_sr' if resample_back else '_sr2x'}{manifest_path.suffix}")


REGIONS = ("roi", "image")


def _generator_spec(G, digest: str) -> tuple:
    """``(spec, module, state bytes, digest)``: a generator as plain, picklable data for a worker.

    ``spec``: what :func:`~srnomogram.sr.networks.build_generator` built it from; ``module``: the
    module that registered its builder, imported by a worker that lacks it (a generator registered
    outside the package); ``digest``: its :func:`generator_digest`, computed once by the caller.
    """
    import io

    import torch

    from .networks import get_generator, spec_of

    spec = spec_of(G, "apply_manifest")
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in G.state_dict().items()}, buf)
    return (spec, get_generator(spec["generator"]).build.__module__, buf.getvalue(), digest)


_WORKER_GENERATORS: dict = {}


def _worker_generator(spec, device):
    """The generator of ``spec`` on ``device``, built once per worker process (``torch.load(weights_only=True)``)."""
    import importlib
    import io

    import torch

    from .networks import build_generator, generator_names

    gen_spec, module, state, digest = spec
    key = (digest, str(device))
    if key not in _WORKER_GENERATORS:
        if gen_spec["generator"] not in generator_names():
            importlib.import_module(module)  # the parent registered it from there; a fresh worker has the built-ins only
        G = build_generator(gen_spec)
        G.load_state_dict(torch.load(io.BytesIO(state), map_location="cpu", weights_only=True))
        _WORKER_GENERATORS.clear()  # one model at a time
        _WORKER_GENERATORS[key] = G.to(device).eval()
    return _WORKER_GENERATORS[key]


def _apply_one(gen, device, bf16, src, spacing, masks, dst, mdsts, is_2d, resample_back, region, roi_margin, record, where):
    """Super-resolve one manifest row and write its SR image, SR masks and sidecar (last); return ``(dst, box)``.

    Module-level and fed plain data, so that local worker processes and Dask workers can run it.
    """
    import json

    import SimpleITK as sitk

    from ..data.readers import read_image, read_mask, read_masks_union
    from ..utils import atomic_path, file_sha256

    G = _worker_generator(gen, device) if isinstance(gen, tuple) else gen
    img = read_image(src, spacing)
    box = None
    if region == "roi":
        union = sitk.GetArrayFromImage(read_masks_union(masks, spacing))
        if union.shape != sitk.GetArrayViewFromImage(img).shape:
            raise InputError(f"{where}: the mask has shape {union.shape} but the image has {sitk.GetArrayViewFromImage(img).shape}; ROI-only SR needs masks on the image's grid.")
        try:
            box = read_box(union, roi_margin)
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None
    sr = super_resolve_image(G, img, device, resample_back=resample_back, where=where, bf16=bf16, boxes=None if box is None else [box])
    write_image(sr, dst, is_2d)
    for m, mdst in zip(masks if not resample_back else [], mdsts):
        if is_2d:
            ref = sitk.Image([2 * n for n in img.GetSize()], sitk.sitkUInt8)
            ref.SetSpacing([s / 2 for s in img.GetSpacing()])
            ref.SetOrigin(img.GetOrigin())
            ref.SetDirection(img.GetDirection())
        else:
            ref = sr
        mr = resample_mask(read_mask(m, spacing), ref)
        if is_2d:
            mr = sitk.GetImageFromArray(sitk.GetArrayFromImage(mr) * np.uint8(255))
        write_image(mr, mdst, is_2d)
    record = dict(record)
    if box is not None:
        # where the generator ran: array index order (z,) y, x, end exclusive, on the input grid
        record["roi_box"] = [[b.start, b.stop] for b in box]
    record["outputs"] = {o.name: file_sha256(o) for o in [dst, *mdsts]}
    with atomic_path(sidecar_path(dst)) as tmp:  # last: its presence means the outputs are complete
        tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")
    log.debug("wrote %s", dst)
    return str(dst), record.get("roi_box")


def _check_sr_columns(column, mask_column, resample_back) -> None:
    """The new columns must not be the columns apply reads (``image``, ``mask``) nor one another.

    SR paths written into ``image`` (``--column image --in-place``) replace the originals, and the next
    run would super-resolve the SR images.
    """
    from ..data.manifest import REQUIRED

    for name, value, default in (("column", column, "image_sr"), ("mask_column", mask_column, "mask_sr")):
        flag = "--" + name.replace("_", "-")
        if not isinstance(value, str) or not value.strip():
            raise param_error(name, "apply_manifest", f"a column name such as {default!r}", value)
        if value in REQUIRED:
            raise InputError(f"{flag} {value!r} names a column apply reads ({', '.join(REQUIRED)}): SR paths there would replace "
                             f"the originals and a rerun would super-resolve the SR images. Use a new column (default {default!r}).")
    if column == mask_column:
        raise InputError(f"--mask-column {mask_column!r} is also --column: SR masks and SR images need two columns "
                         "(defaults 'image_sr' and 'mask_sr').")


#: The file names :func:`sr_path` gives: ``<stem>_sr.png``, ``<stem>_sr2x.nii.gz``, ``<stem>_mask_sr2x.png``, ...
_SR_FILE = re.compile(r"_sr(2x)?\.(png|nii\.gz)$", re.IGNORECASE)


def _blank(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() == ""


def _is_sr_file(value) -> bool:
    return all(_SR_FILE.search(Path(part.strip()).name) for part in str(value).split(";"))


def _refuse_overwriting(df, manifest_path, column, mask_column, flags=("--column", "--mask-column")) -> None:
    """Refuse to replace a column of the manifest that is not an earlier run's SR column.

    ``sr apply`` writes a new column, or rewrites one it wrote before, which it recognises by its
    content, whatever its name: an SR image column holds only SR file names (:func:`sr_path`:
    ``*_sr.png``, ``*_sr2x.nii.gz``, ...), an SR mask column only SR mask files or the row's own ``mask``
    (SR resampled back keeps the original masks). Empty cells lose nothing. Any other column (``age``,
    ``split``, a second image of the lesion) would be lost, so apply stops before computing anything.
    """
    from ..data.manifest import _show

    for col, flag, is_sr in ((column, flags[0], lambda v, row: _is_sr_file(v)),
                             (mask_column, flags[1], lambda v, row: _is_sr_file(v) or str(v) == str(row["mask"]))):
        if col not in df.columns:
            continue
        for i, (value, (_, row)) in enumerate(zip(df[col], df.iterrows())):
            if not _blank(value) and not is_sr(value, row):
                raise InputError(f"{flag} {col!r} names a column of {manifest_path} that holds other data (row {i + 2}: "
                                 f"{_show(value)}), not SR paths of an earlier sr apply; it would be overwritten. "
                                 f"Give a new column name (default {'image_sr' if flag == flags[0] else 'mask_sr'!r}).")


def _refuse_sr_inputs(df, manifest_path) -> None:
    """Refuse a manifest whose ``image`` column holds SR outputs (the file has an SR sidecar).

    Super-resolving an SR image again is never what the study means; it happens when a manifest
    written with SR paths in its ``image`` column is applied once more.
    """
    import json

    for i, src in enumerate(df["image"]):
        side = sidecar_path(Path(src))
        if not side.is_file():
            continue
        try:
            meta = json.loads(side.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # not our sidecar: an unrelated JSON beside the image
        if isinstance(meta, dict) and meta.get("format") == SIDECAR_FORMAT:
            raise InputError(f"{manifest_path}, row {i + 2}: image {src} is an SR output of {meta.get('image', 'another image')} "
                             f"(its sidecar {side.name} says so). Give the manifest of the original images; apply writes "
                             "their SR versions to a new column (default 'image_sr').")


def apply_manifest(model, manifest_path, out_dir=None, column: str = "image_sr", mask_column: str = "mask_sr",
                   resample_back: bool = True, manifest_out=None, overwrite: bool = False, progress=None,
                   in_place: bool = False, region: str = "roi", roi_margin: float = 0.1, scheduler: str | None = None,
                   jobs: int | None = 1):
    """Super-resolve every image of a manifest and write a manifest with ``image_sr`` / ``mask_sr`` columns.

    Parameters
    ----------
    model : SuperResolver
        A fitted model.
    manifest_path : path-like
        The cohort manifest (see :mod:`srnomogram.data.manifest`).
    out_dir : path-like, optional
        Folder for the SR files, named by case id (``<case_id>_sr.png``; an id that is not a plain
        file name is mapped by :func:`srnomogram.utils.safe_names`, so nothing is written outside
        ``out_dir``). By default each goes beside its original as ``<image stem>_sr.png``.
    column, mask_column : str
        Names of the path columns written: new columns, or SR columns of an earlier run (recognised by
        their content, see ``_refuse_overwriting``); any other existing column raises ``InputError``
        before anything is computed.
    resample_back : bool
        Put SR images back onto the original grid (the paper's choice, default). Otherwise 2D images
        are written at 2x (spacing halved: a ``spacing_sr`` column is added) and volumes at 2x z;
        masks are then resampled nearest-neighbour onto the SR grid.
    manifest_out : path-like, optional
        Where the new manifest goes; default :func:`default_manifest_out` (``<manifest>_sr.csv``).
    overwrite : bool
        Recompute SR files even when they can be reused. By default an SR file is reused only when
        its sidecar ``<file>.json`` shows that the same generator weights, settings (grid,
        precision, region, package version) and input image and mask bytes made it, and the file
        still has the hash recorded there; so an interrupted run resumes where it stopped, and a
        file made by another model or from another image is recomputed.
    in_place : bool
        Overwrite ``manifest_path`` itself (atomically) instead of writing a new manifest.
    region : {"roi", "image"}
        ``"roi"`` (default): run the generator only on each lesion's ROI: the bounding box of its
        masks grown by ``roi_margin`` (:func:`read_box`: what the CNN crop and the radiomics
        extraction read), with :func:`roi_halo` pixels of context. Inside that box the result equals
        whole-image SR bit for bit in float32; outside it the image gets the generator's fixed cubic
        path (cubic up-sampling, resampled back like SR). The sidecar records ``"region": "roi"`` and
        the box. Several times faster on images much larger than their lesion. ``"image"``: the
        generator runs on the whole image (for figures, or readers that look beyond the lesion,
        e.g. PyRadiomics with ``normalize`` or image filters).
    roi_margin : float
        With ``region="roi"``: the margin, as a fraction of the lesion box's extent per side (the
        CNN's ``margin``; at least 1 pixel, what radiomics reads).
    scheduler : str, optional
        Dask scheduler address (``tcp://host:8786``): the images are super-resolved on that
        cluster's workers (:func:`srnomogram.parallel.imap_unordered`; the files land at the same
        paths, so the cluster needs the same filesystem). None reads ``$DASK_SCHEDULER_ADDRESS`` and
        runs locally when it is unset.
    jobs : int or None
        Local worker processes when no scheduler is used (1, the default: this process, whose torch
        already uses every core; None: one per core).

    Returns
    -------
    pandas.DataFrame
        The updated manifest (absolute paths).
    """
    import json

    from tqdm.auto import tqdm

    from .. import __version__
    from ..data.manifest import load_manifest, mask_paths, write_manifest
    from ..data.readers import is_2d_path
    from ..parallel import CHECKED_PACKAGES, imap_unordered, resolve_scheduler
    from ..utils import hash_bytes, safe_name, safe_names
    from ._format import FORMAT, uses_bf16

    if region not in REGIONS:
        raise param_error("region", "apply_manifest", "'roi' or 'image'", region)
    if isinstance(roi_margin, bool) or not isinstance(roi_margin, (int, float, np.integer, np.floating)) or not np.isfinite(roi_margin) or roi_margin < 0:
        raise param_error("roi_margin", "apply_manifest", "a float >= 0 (fraction of the lesion box per side)", roi_margin)
    manifest_path = Path(manifest_path)
    _check_sr_columns(column, mask_column, resample_back)
    if in_place and manifest_out is not None:
        raise InputError("apply_manifest got both in_place=True and manifest_out; give one (--in-place or --manifest-out).")
    dst_manifest = manifest_path if in_place else Path(manifest_out) if manifest_out is not None else default_manifest_out(manifest_path, resample_back)
    # SR columns of an interrupted run may name files not written yet; the readers check image/mask.
    df = load_manifest(manifest_path, check_files=False, require_label=False)  # SR needs no label: predict's cohorts have none
    _refuse_sr_inputs(df, manifest_path)
    _refuse_overwriting(df, manifest_path, column, mask_column)
    tag = "_sr" if resample_back else "_sr2x"
    device, bf16 = model.device_, uses_bf16(model.amp, model.device_)
    settings = {"model_format": FORMAT, "srnomogram": __version__, "generator": model.generator_spec_,
                "generator_sha256": generator_digest(model.generator_),
                "resample_back": bool(resample_back), "precision": "bf16" if bf16 else "float32", "region": region}
    if region == "roi":
        settings["roi_margin"] = float(roi_margin)
    names = safe_names(df["case_id"]) if out_dir is not None else [None] * len(df)
    img_out, mask_out, spacing_out = [], [], []
    claimed: dict[Path, str] = {}
    any_2d = False
    todo = []
    for (i, row), name in zip(df.iterrows(), names):
        src = row["image"]
        is_2d = is_2d_path(src)
        any_2d |= is_2d
        spacing = row["spacing"] if "spacing" in df.columns else None
        where = f"{manifest_path}, row {i + 2} ({src})"
        dst = sr_path(src, out_dir, tag, is_2d, name)
        if claimed.get(dst, src) != src:  # beside the originals: x.png and x.jpg in one folder
            other = claimed[dst]
            dst = sr_path(src, out_dir, f"_{safe_name(row['case_id'])}{tag}", is_2d)
            if claimed.get(dst, src) != src:
                raise InputError(f"{where}: its SR file name {dst.name} is taken by {other}. Pass an output folder (--out-dir), where SR files are named by case id.")
        claimed[dst] = src
        masks = list(np.atleast_1d(mask_paths(row["mask"])))
        mapped = [] if resample_back else masks
        if out_dir is None:
            mdsts = [sr_path(m, None, tag, is_2d) for m in mapped]
        else:
            mdsts = [sr_path(m, out_dir, f"_mask{'' if len(mapped) == 1 else j + 1}{tag}", is_2d, name) for j, m in enumerate(mapped)]
        spacing_key = None if spacing is None or (isinstance(spacing, float) and np.isnan(spacing)) else float(spacing)
        read = masks if (region == "roi" or not resample_back) else []
        key = hash_bytes(json.dumps({**settings, "spacing": spacing_key, "image": _input_digest(src),
                                     "masks": [_input_digest(m) for m in read]}, sort_keys=True))
        if overwrite or not _reusable(dst, [dst, *mdsts], key):
            record = {"format": SIDECAR_FORMAT, "key": key, **settings, "image": str(src), "masks": [str(m) for m in read]}
            todo.append((device, bf16, str(src), spacing_key, [str(m) for m in masks], dst, mdsts, is_2d, bool(resample_back),
                         region, float(roi_margin), record, where))
        img_out.append(str(dst))
        sp = spacing if spacing is not None and not (isinstance(spacing, float) and np.isnan(spacing)) else np.nan
        spacing_out.append(sp / 2 if (is_2d and not resample_back and np.isfinite(sp)) else sp)
        mask_out.append(row["mask"] if resample_back else ";".join(str(m) for m in mdsts))
    writes_spacing = not resample_back and any_2d and "spacing" in df.columns
    if writes_spacing and "spacing_sr" in df.columns:
        import pandas as pd

        from ..data.manifest import _show

        old = pd.to_numeric(df["spacing_sr"], errors="coerce").to_numpy(dtype=float)
        same = np.isclose(old, np.asarray(spacing_out, dtype=float), rtol=0, atol=0) | np.isnan(old) & df["spacing_sr"].map(_blank).to_numpy()
        if not same.all():
            i = int(np.flatnonzero(~same)[0])
            raise InputError(f"{manifest_path} has a column 'spacing_sr' (row {i + 2}: {_show(df['spacing_sr'].iloc[i])}) that is not "
                             f"the SR spacing this run writes there ({spacing_out[i]!r}: half the row's spacing); it would be overwritten. "
                             "Rename that column of the manifest: sr apply writes the 2x grid's spacing to 'spacing_sr'.")
    if todo:
        remote = resolve_scheduler(scheduler) is not None or (jobs != 1 and len(todo) > 1)
        if remote:  # plain data for the workers: the generator as bytes, the device as a string
            gen = _generator_spec(model.generator_, settings["generator_sha256"])
            tasks = [(gen, str(t[0]), *t[1:]) for t in todo]
        else:
            tasks = [(model.generator_, *t) for t in todo]
        bar = tqdm(total=len(df), initial=len(df) - len(todo), desc="sr apply", disable=None if progress is None else not progress, leave=False)
        try:
            for _ in imap_unordered(_apply_one, tasks, jobs=jobs, scheduler=scheduler, packages=(*CHECKED_PACKAGES, "torch")):
                bar.update()
        finally:
            bar.close()
    df[column] = img_out
    df[mask_column] = mask_out
    if writes_spacing:
        df["spacing_sr"] = spacing_out
    write_manifest(df, dst_manifest)
    log.info("wrote %d SR images (%s, %d computed, %d reused) and column %r to %s", len(df),
             "ROI-only SR" if region == "roi" else "whole-image SR", len(todo), len(df) - len(todo), column, dst_manifest)
    return df
