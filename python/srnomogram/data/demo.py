"""A synthetic demo cohort that the package writes itself (no data to download).

Each lesion is a 256x256 8-bit B-mode-like image with a hypo-echoic lesion and its mask:

* tissue: bright skin line, subcutaneous fat, fibroglandular tissue with low-frequency texture,
  depth attenuation;
* speckle: fully developed speckle, i.e. the magnitude of spatially correlated complex Gaussian
  noise (Rayleigh-distributed, lateral correlation longer than axial), multiplied onto the echo
  map, then log-compressed to 8 bits;
* malignant lesions: irregular (harmonic radius) or spiculated (narrow spikes) outline,
  taller-than-wide, blurred margin, heterogeneous interior, posterior acoustic shadowing (80%),
  sometimes an echogenic halo or microcalcifications;
* benign lesions: oval, wider-than-tall, circumscribed; about a third are cyst-like (anechoic)
  with posterior enhancement.

A minority of each class borrows the other's shape so that the task is not trivial.
Age and size carry signal as in Table 1 of Yang & Ma (malignant patients older, lesions larger).
A few small 3D NIfTI volumes (``volumes/``, ``volumes.csv``) serve super-resolution and
3D-reader tests. Everything is drawn from one ``numpy.random.SeedSequence``: the same seed gives
the same bytes.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import param_error
from ..utils import atomic_path
from .geometry import max_feret_diameter

log = logging.getLogger(__name__)

IMAGE_SHAPE = (256, 256)  # rows (depth), cols (lateral)
#: Lesion size spreads: "paper" (Table 1's diameters on a 256 x 256 field) or "breast" (mask areas in
#: pixels spread like the BrEaST cohort's, see :data:`BREAST_AREA_PX`).
LESION_SIZES = ("paper", "breast")
#: Mask areas (pixels) of the 252 BrEaST lesions (Pawłowska et al., Sci Data 2024): log-normal with
#: log-mean 9.55 and log-sd 0.94 (median 15.6k; 5th-95th percentile 2.8k-69k; range 1.5k-144k) on
#: images of about 500 x 500 pixels.
BREAST_AREA_PX = dict(log_mean=9.55, log_sd=0.94, low=1500, high=144000)
#: Smallest image side (pixels) with lesion_sizes="breast"; larger lesions get a larger field.
BREAST_MIN_SIDE = 512
_AREA_PER_DIAMETER2 = 0.54  # mask area / (nominal diameter in pixels)^2 of the drawn outlines, measured on 150 lesions
#: Brightness step (grey levels) between the scanners of consecutive demo centres (``demo_cohort(centres=k)``).
CENTRE_OFFSET = 12.0
VOLUME_SHAPE = (16, 64, 64)  # slices, rows, cols
VOLUME_SPACING = (0.4, 0.4, 0.5)  # mm, ITK order (x, y, z)


def _smooth_noise(rng, shape, sigma):
    from scipy import ndimage

    return ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")


def _speckle(rng, shape, sigma):
    """Rayleigh speckle with mean 1: |correlated complex Gaussian|."""
    from scipy import ndimage

    re = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    im = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    amp = np.hypot(re, im)
    return amp / amp.mean()


def _radius_function(rng, malignant_shape: bool, spiculated: bool, n_theta: int = 4096):
    """Return ``r(theta)`` (relative, ~1) as a closure over drawn harmonics and spikes."""
    if malignant_shape:
        ks = np.arange(2, 9)
        amps = rng.uniform(0.03, 0.11, ks.size) / np.sqrt(ks / 2)
    else:
        ks = np.arange(2, 4)
        amps = rng.uniform(0.0, 0.03, ks.size)
    phases = rng.uniform(0, 2 * np.pi, ks.size)
    if spiculated:
        n_sp = int(rng.integers(7, 14))
        sp_theta = rng.uniform(0, 2 * np.pi, n_sp)
        sp_amp = rng.uniform(0.2, 0.55, n_sp)
        sp_width = rng.uniform(0.03, 0.07, n_sp)
    else:
        sp_theta = sp_amp = sp_width = np.zeros(0)

    grid = np.linspace(0, 2 * np.pi, n_theta, endpoint=False)
    table = np.ones(n_theta)
    for k, a, p in zip(ks, amps, phases):
        table += a * np.cos(k * grid + p)
    for t0, a, w in zip(sp_theta, sp_amp, sp_width):
        d = np.remainder(grid - t0 + np.pi, 2 * np.pi) - np.pi  # wrapped angular distance
        table += a * np.exp(-0.5 * (d / w) ** 2)

    def r(theta):
        # tabulated on a fine periodic grid: one interpolation per pixel instead of a sum of terms
        return np.interp(np.remainder(theta, 2 * np.pi), grid, table, period=2 * np.pi)

    return r


def _between(rng, lo, hi):
    """Uniform in [lo, hi], or the midpoint when the interval is empty (a large lesion)."""
    return float(rng.uniform(lo, hi)) if hi > lo else 0.5 * (lo + hi)


def _lesion_mask(rng, shape, spacing, label, diameter_mm):
    """Draw a lesion outline; return the mask and its centre/semi-axes (pixels)."""
    malignant_shape = rng.random() < (0.85 if label else 0.15)
    spiculated = malignant_shape and rng.random() < (0.5 if label else 0.2)
    r = _radius_function(rng, malignant_shape, spiculated)
    # height/width: malignant taller-than-wide, benign wider-than-tall (parallel to the skin)
    hw = rng.uniform(0.95, 1.35) if malignant_shape else rng.uniform(0.45, 0.75)
    tilt = rng.uniform(-0.25, 0.25)
    theta = np.linspace(0, 2 * np.pi, 720, endpoint=False)
    ell = 1.0 / np.sqrt(np.cos(theta) ** 2 + (np.sin(theta) / hw) ** 2)  # ellipse radius, a = 1
    rr = r(theta - tilt) * ell
    span = float(np.max(rr + np.roll(rr, 360)))  # approximate diameter of the unit outline
    a_mm = diameter_mm / span
    a_px = a_mm / spacing
    h_px = a_px * float(np.max(rr * np.abs(np.sin(theta))))
    w_px = a_px * float(np.max(rr * np.abs(np.cos(theta))))
    rows, cols = shape
    cy = _between(rng, max(h_px + 0.12 * rows, 0.3 * rows), rows - h_px - 0.12 * rows)
    cx = _between(rng, max(w_px + 4, 0.35 * cols), min(cols - w_px - 4, 0.65 * cols))
    yy, xx = np.mgrid[0:rows, 0:cols].astype(float)
    dy, dx = (yy - cy), (xx - cx)
    phi = np.arctan2(dy, dx)
    rho = np.hypot(dx, dy)
    ell_px = a_px / np.sqrt(np.cos(phi) ** 2 + (np.sin(phi) / hw) ** 2)
    mask = rho <= r(phi - tilt) * ell_px
    return mask, dict(malignant_shape=malignant_shape, spiculated=spiculated)


def _bmode(rng, spacing, mask, label, info):
    """Synthesise the B-mode-like 8-bit image around a lesion mask."""
    from scipy import ndimage

    rows, cols = mask.shape
    depth_mm = (np.arange(rows) + 0.5)[:, None] * spacing * np.ones((1, cols))
    # layered tissue
    fat_depth = rng.uniform(3.0, 7.0) + 1.2 * _smooth_noise(rng, (1, cols), (0, 25))[0] * 8
    echo = np.where(depth_mm < 1.2, 1.8, np.where(depth_mm < fat_depth[None, :], 0.45, 1.0))
    echo = echo * np.exp(0.35 * _smooth_noise(rng, (rows, cols), (6, 12)) * 6)
    # Cooper's ligaments: a few bright oblique lines in the fat
    for _ in range(int(rng.integers(1, 4))):
        y0, slope = rng.uniform(1.5, 6.0), rng.uniform(-0.15, 0.15)
        line = np.abs(depth_mm - (y0 + slope * np.arange(cols)[None, :] * spacing)) < 0.25
        echo = np.where(line & (depth_mm < fat_depth[None, :]), 1.4, echo)

    malignant_look = info["malignant_shape"]
    cyst = (not label) and (not malignant_look) and rng.random() < 0.35
    inside = mask.astype(float)
    if malignant_look:
        # indistinct margin; spicules stay visible as thin dark arms
        inside = ndimage.gaussian_filter(inside, 0.9 if info["spiculated"] else 1.6)
        level = rng.uniform(0.12, 0.3) * np.exp(0.5 * _smooth_noise(rng, (rows, cols), 3) * 4)
        if rng.random() < 0.4:  # echogenic halo around an infiltrating margin
            halo = ndimage.binary_dilation(mask, iterations=4) & ~mask
            echo = echo * (1 + 0.6 * ndimage.gaussian_filter(halo.astype(float), 1.5))
        if rng.random() < 0.3:  # microcalcifications: a few bright dots inside
            pts = np.argwhere(ndimage.binary_erosion(mask, iterations=3))
            if len(pts):
                dots = np.zeros((rows, cols))
                sel = pts[rng.integers(0, len(pts), int(rng.integers(3, 9)))]
                dots[sel[:, 0], sel[:, 1]] = 1.0
                level = level + 12.0 * ndimage.gaussian_filter(dots, 0.7)
    elif cyst:
        level = np.full((rows, cols), rng.uniform(0.02, 0.06))
    else:
        inside = ndimage.gaussian_filter(inside, 0.6)
        level = np.full((rows, cols), rng.uniform(0.25, 0.45))
    echo = echo * (1 - inside) + level * inside

    # posterior features: below the lesion, column by column
    below = (np.maximum.accumulate(mask, axis=0) & ~mask).astype(float)
    below = ndimage.gaussian_filter(below, (0, 2.0))
    if label and rng.random() < 0.8:
        echo = echo * (1 - rng.uniform(0.45, 0.7) * below)  # shadowing
    elif cyst or (not label and rng.random() < 0.3):
        echo = echo * (1 + rng.uniform(0.3, 0.7) * below)  # enhancement

    amp = echo * _speckle(rng, (rows, cols), (1.0, 2.4)) * np.exp(-depth_mm / 60.0)
    db = 20 * np.log10(amp + 1e-6)
    img = np.clip((db + 30.0) / 55.0, 0, 1) * 255
    return np.rint(img).astype(np.uint8)


def _save_png(arr: np.ndarray, path: Path) -> None:
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(arr, dtype=np.uint8)).save(tmp, format="PNG")


def _volume(rng, label):
    """A small 3D speckled volume with an ellipsoidal (benign) or lobulated (malignant) lesion."""
    from scipy import ndimage

    shape = VOLUME_SHAPE
    sx, sy, sz = VOLUME_SPACING
    zz, yy, xx = np.meshgrid(*(np.arange(n, dtype=float) for n in shape), indexing="ij")
    c = np.array(shape, float) / 2 + rng.uniform(-2, 2, 3) * np.array([0.3, 1, 1])
    dz, dy, dx = (zz - c[0]) * sz, (yy - c[1]) * sy, (xx - c[2]) * sx
    a = np.array([rng.uniform(2.0, 2.8), rng.uniform(3.5, 5.0), rng.uniform(4.5, 6.5)])  # mm (z, y, x)
    if label:
        a[1] = a[2] * rng.uniform(0.95, 1.2)
    rho = np.sqrt((dz / a[0]) ** 2 + (dy / a[1]) ** 2 + (dx / a[2]) ** 2)
    if label:
        phi = np.arctan2(dy, dx)
        rho = rho * (1 + 0.12 * np.cos(5 * phi + rng.uniform(0, 2 * np.pi)))
    mask = rho <= 1.0
    echo = np.exp(0.3 * ndimage.gaussian_filter(rng.standard_normal(shape), (1, 4, 4)) * 5)
    echo = np.where(mask, rng.uniform(0.15, 0.35), echo)
    re = ndimage.gaussian_filter(rng.standard_normal(shape), (0.5, 0.8, 1.5))
    im = ndimage.gaussian_filter(rng.standard_normal(shape), (0.5, 0.8, 1.5))
    sp = np.hypot(re, im)
    amp = echo * sp / sp.mean()
    img = np.rint(np.clip((20 * np.log10(amp + 1e-6) + 30.0) / 55.0, 0, 1) * 255).astype(np.uint8)
    return img, mask.astype(np.uint8)


def _save_nifti(arr: np.ndarray, path: Path) -> None:
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(VOLUME_SPACING)
    with atomic_path(path, suffix=".nii.gz") as tmp:
        sitk.WriteImage(img, str(tmp), useCompression=True)


def demo_cohort(path: str | os.PathLike, n: int = 120, seed: int = 0, n_volumes: int = 4, lesion_sizes: str = "paper",
                second_lesion_share: float = 0.0, centres: int = 0) -> Path:
    """Synthesise a small breast-ultrasound cohort with images, masks and a manifest.

    Parameters
    ----------
    path : path-like
        Output folder (created if needed). Receives ``manifest.csv``, ``images/``,
        ``volumes/`` and ``volumes.csv``.
    n : int
        Number of 2D lesions (about 40% malignant, at least 2 of each class).
    seed : int
        Seed of the one ``numpy.random.SeedSequence`` all draws derive from; the same seed gives
        the same bytes.
    n_volumes : int
        Number of small 3D NIfTI volumes (64x64x16 voxels, spacing 0.4x0.4x0.5 mm).
    lesion_sizes : {"paper", "breast"}
        ``"paper"``: 256 x 256 images whose field of view grows with the lesion, so masks stay
        small (a few thousand pixels). ``"breast"``: mask areas in pixels drawn like BrEaST's
        (:data:`BREAST_AREA_PX`), on images of at least 512 x 512 pixels, larger for the largest
        lesions, as in real cohorts where the extraction cost follows the mask area. The
        diameters in mm, ages and labels are drawn as with ``"paper"``; the same seed gives the
        same lesions' clinical values in both modes.
    second_lesion_share : float
        Share of patients with a second lesion (adds ``patient_id``).
    centres : int
        0 (default): one centre, no ``centre`` column. ``k`` >= 2: a ``centre`` column ``C1`` … ``Ck``;
        the patients of each class are dealt to the centres in turn (a random order, so every centre
        has both classes when each class has k patients), and each centre's scanner adds its own
        brightness offset, :data:`CENTRE_OFFSET` × (j − (k − 1) / 2) grey levels for centre j = 0 … k−1,
        to its images (a site effect for multi-centre tests). The lesions, labels and clinical values
        are those of the same seed without centres.

    Returns
    -------
    pathlib.Path
        The path of ``manifest.csv``. Columns: ``case_id``, ``image``, ``mask``, ``label``
        (1 malignant), ``spacing`` (mm/pixel), ``age`` (years), ``max_diameter_cm`` (exact
        maximal Feret diameter of the mask, see :func:`~srnomogram.data.geometry.max_feret_diameter`),
        ``patient_id`` with ``second_lesion_share > 0`` and ``centre`` with ``centres`` >= 2.

    Notes
    -----
    Distributions follow the direction of Table 1 in Yang & Ma: age benign ~ N(40, 12),
    malignant ~ N(55, 11) years; maximal diameter benign ~ 1.5 cm, malignant ~ 2.3 cm
    (log-normal, clipped to 0.6-3.6 cm).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 4:
        raise param_error("n", "demo_cohort", "an int >= 4", n)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise param_error("seed", "demo_cohort", "an int >= 0", seed)
    if isinstance(n_volumes, bool) or not isinstance(n_volumes, (int, np.integer)) or n_volumes < 0:
        raise param_error("n_volumes", "demo_cohort", "an int >= 0", n_volumes)
    if lesion_sizes not in LESION_SIZES:
        raise param_error("lesion_sizes", "demo_cohort", f"one of {', '.join(map(repr, LESION_SIZES))}", lesion_sizes)
    if isinstance(second_lesion_share, bool) or not isinstance(second_lesion_share, (int, float, np.integer, np.floating)) or not 0 <= second_lesion_share <= 1:
        raise param_error("second_lesion_share", "demo_cohort", "a float in [0, 1]", second_lesion_share)
    if isinstance(centres, bool) or not isinstance(centres, (int, np.integer)) or centres < 0 or centres == 1 or 2 * centres > n:
        raise param_error("centres", "demo_cohort", "0 or an int in [2, n / 2]", centres)
    from tqdm.auto import tqdm

    from .manifest import write_manifest

    out = Path(path)
    (out / "images").mkdir(parents=True, exist_ok=True)
    # one child generator per lesion and volume, plus one for the cohort-level draws
    root = np.random.SeedSequence(seed)
    seeds = root.spawn(1 + n + n_volumes)
    rng = np.random.default_rng(seeds[0])
    children = [np.random.default_rng(s) for s in seeds[1:]]
    n_mal = int(min(max(round(0.4 * n), 2), n - 2))
    labels = np.zeros(n, dtype=int)
    labels[rng.permutation(n)[:n_mal]] = 1
    age = np.where(labels == 1, rng.normal(55, 11, n), rng.normal(40, 12, n))
    age = np.clip(np.rint(age), 18, 90)
    size_cm = np.where(labels == 1, rng.lognormal(np.log(2.3), 0.3, n), rng.lognormal(np.log(1.5), 0.3, n))
    size_cm = np.clip(size_cm, 0.6, 3.6)
    # larger lesions are imaged with a larger field of view, as a sonographer would
    spacing = np.round(np.maximum(rng.uniform(0.16, 0.2, n), size_cm * 10.0 / (0.6 * IMAGE_SHAPE[0])), 4)
    shapes = [IMAGE_SHAPE] * n
    if lesion_sizes == "breast":  # drawn after the paper's draws, which stay as they were
        b = BREAST_AREA_PX
        area = np.clip(rng.lognormal(b["log_mean"], b["log_sd"], n), b["low"], b["high"])
        diameter_px = np.sqrt(area / _AREA_PER_DIAMETER2)
        spacing = np.round(size_cm * 10.0 / diameter_px, 4)
        # the lesion spans at most 60% of the depth, as in the paper mode; 32-pixel steps
        sides = np.maximum(BREAST_MIN_SIDE, 32 * np.ceil(diameter_px / 0.6 / 32)).astype(int)
        shapes = [(int(v), int(v)) for v in sides]

    patient = None
    if second_lesion_share > 0:
        # spawned after the lesions' generators, so that every lesion is drawn as without patients
        prng = np.random.default_rng(root.spawn(1)[0])
        n_pairs = int(round(second_lesion_share * n / (1 + second_lesion_share)))
        pairs = np.sort(prng.permutation(n)[: 2 * n_pairs].reshape(-1, 2), axis=1)  # the earlier lesion first
        owner = np.arange(n)
        owner[pairs[:, 1]] = pairs[:, 0]
        age[pairs[:, 1]] = age[pairs[:, 0]]  # one patient, one age
        first = np.unique(owner)  # patients numbered in the order of their first lesion
        patient = np.array([f"pt{k + 1:03d}" for k in np.searchsorted(first, owner)])

    centre = None
    if centres:
        # spawned after the lesions' (and patients') generators, so that every lesion is drawn as without centres
        owner_ids = patient if patient is not None else np.arange(n).astype(str)
        units, first, inverse = np.unique(owner_ids, return_index=True, return_inverse=True)
        unit_label = pd.Series(labels).groupby(inverse).max().to_numpy()
        crng_centres = np.random.default_rng(root.spawn(1)[0])
        unit_centre = np.empty(len(units), dtype=int)
        for lab in (0, 1):
            members = crng_centres.permutation(np.flatnonzero(unit_label == lab))
            unit_centre[members] = np.arange(len(members)) % centres
        centre = unit_centre[inverse]

    rows = []
    for i in tqdm(range(n), desc="demo cohort", unit="lesion", disable=None):
        crng = children[i]
        mask, info = _lesion_mask(crng, shapes[i], spacing[i], labels[i], size_cm[i] * 10.0)
        img = _bmode(crng, spacing[i], mask, labels[i], info)
        if centre is not None:  # the centre's scanner: a brightness offset of its own
            offset = CENTRE_OFFSET * (centre[i] - (centres - 1) / 2)
            img = np.clip(np.rint(img.astype(float) + offset), 0, 255).astype(np.uint8)
        cid = f"demo{i + 1:03d}"
        _save_png(img, out / "images" / f"{cid}.png")
        _save_png(mask.astype(np.uint8) * 255, out / "images" / f"{cid}_mask.png")
        rows.append(
            dict(
                case_id=cid,
                image=str(out / "images" / f"{cid}.png"),
                mask=str(out / "images" / f"{cid}_mask.png"),
                label=int(labels[i]),
                spacing=float(spacing[i]),
                age=float(age[i]),
                max_diameter_cm=round(max_feret_diameter(mask, spacing[i]) / 10.0, 4),
            )
        )
        if patient is not None:
            rows[-1]["patient_id"] = patient[i]
        if centre is not None:
            rows[-1]["centre"] = f"C{centre[i] + 1}"
    manifest = write_manifest(pd.DataFrame(rows), out / "manifest.csv")

    if n_volumes:
        (out / "volumes").mkdir(exist_ok=True)
        vrows = []
        for j in range(n_volumes):
            lab = j % 2
            vol, vmask = _volume(children[n + j], lab)
            vid = f"vol{j + 1:03d}"
            _save_nifti(vol, out / "volumes" / f"{vid}.nii.gz")
            _save_nifti(vmask, out / "volumes" / f"{vid}_mask.nii.gz")
            vrows.append(dict(case_id=vid, image=str(out / "volumes" / f"{vid}.nii.gz"), mask=str(out / "volumes" / f"{vid}_mask.nii.gz"), label=lab, spacing=np.nan))
        write_manifest(pd.DataFrame(vrows), out / "volumes.csv")
    log.info("wrote demo cohort of %d lesions (%d malignant%s) to %s and %d volumes to %s", n, n_mal,
             "" if patient is None else f", {len(set(patient))} patients", manifest, n_volumes, out / "volumes.csv")
    return manifest
