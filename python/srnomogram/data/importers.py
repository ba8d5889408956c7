"""Importers that turn common public layouts into a cohort manifest.

* :func:`import_breast_lesions_usg` reads the Breast-Lesions-USG (BrEaST) collection
  (Pawłowska et al., Sci Data 2024): one xlsx sheet and PNG scans with ``_tumor`` masks.
* :func:`import_folder` reads the common ``benign/`` + ``malignant/`` layout with
  ``<name>_mask.png`` beside each image (the layout of BUSI, Al-Dhabyani et al. 2020).
* :func:`import_bus_bra` reads the BUS-BRA collection (Gómez-Flores et al., Med Phys 2024): one
  CSV row per image, two views of most lesions, four scanners (the ``centre`` column) and the
  authors' patient-grouped folds.

A patient column of the source is kept as ``patient_id`` (the BrEaST sheet's ``Patient_ID``,
``PatientID`` or ``Patient`` column when a release has one; BUS-BRA's ``Case``; for folders, a
pattern on the image name), so that the study splits, folds and resamples patients rather than images.

All write the manifest atomically with :func:`~srnomogram.data.manifest.write_manifest`:
paths inside the manifest's folder become relative, others stay absolute. Several masks of one
image are joined with ``;`` in the ``mask`` column (the readers merge them by logical OR).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError, ManifestError
from .geometry import max_feret_diameter
from .readers import IMAGE_2D_SUFFIXES, read_mask

log = logging.getLogger(__name__)

#: BI-RADS descriptors of the BrEaST sheet kept as clinical columns (snake_case).
BREAST_DESCRIPTORS = {
    "Tissue_composition": "tissue_composition",
    "Shape": "shape",
    "Margin": "margin",
    "Echogenicity": "echogenicity",
    "Posterior_features": "posterior_features",
    "Calcifications": "calcifications",
    "BIRADS": "birads",
}

#: Sheet columns taken as the patient id, compared in lower case without spaces, ``_`` and ``-``.
PATIENT_COLUMNS = ("patientid", "patient", "patientnumber", "patientno", "subjectid")


def _patient_column(columns):
    """The sheet's patient column, or None."""
    for c in columns:
        if re.sub(r"[\s_-]", "", str(c)).lower() in PATIENT_COLUMNS:
            return c
    return None


def _patient_text(value):
    """A patient id as text; a whole number read from a spreadsheet as ``12.0`` becomes ``"12"``."""
    if value is None or pd.isna(value):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _union_mask(paths, spacing_mm):
    import SimpleITK as sitk

    acc = None
    for p in paths:
        m = sitk.GetArrayFromImage(read_mask(p, spacing_mm)) != 0
        if acc is None:
            acc = m.copy()
        elif m.shape != acc.shape:
            raise InputError(f"Mask {p} has shape {m.shape} but {paths[0]} has {acc.shape}; masks of one image must have the image's size.")
        else:
            acc |= m
    return acc


def _write(df: pd.DataFrame, output, what: str) -> Path:
    """Refuse duplicate case ids, then write the manifest atomically."""
    from .manifest import write_manifest

    dup = df["case_id"].duplicated(keep=False)
    if dup.any():
        names = df.loc[dup, what].tolist()[:2]
        raise ManifestError(f"Images {names} give the same case_id {df.loc[dup, 'case_id'].iloc[0]!r}. Rename one of them.")
    return write_manifest(df, output)


def _check_same_size(image: Path, masks, where: str) -> tuple[int, int]:
    """Compare the image's size (read from its header, not decoded) with each mask's; return (width, height)."""
    from PIL import UnidentifiedImageError

    from .readers import _open_pil  # PIL with the package's pixel limit (a decompression bomb: one line)

    try:
        with _open_pil(image, "Image") as im:
            size = im.size
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"{where}: image {image} cannot be read ({exc}). Re-export it as PNG.") from None
    for m in masks:
        try:
            with _open_pil(m, "Mask") as im:
                msize = im.size
        except (UnidentifiedImageError, OSError) as exc:
            raise InputError(f"{where}: mask {m} cannot be read ({exc}). Re-export it as PNG.") from None
        if msize != size:
            raise InputError(f"{where}: mask {m} is {msize[0]}x{msize[1]} pixels but image {image} is {size[0]}x{size[1]}. Masks must be drawn on the image they belong to.")
    return size


def _find_sheet(src: Path) -> Path:
    sheets = sorted(p for p in src.glob("*.xlsx") if not p.name.startswith("~$"))
    if not sheets:
        raise InputError(f"No .xlsx clinical sheet found in {src}. Point the importer at the Breast-Lesions-USG folder (it holds the sheet and images/).")
    if len(sheets) > 1:
        named = [p for p in sheets if "clinical" in p.name.lower()]
        if len(named) != 1:
            raise InputError(f"Several .xlsx sheets in {src} ({', '.join(p.name for p in sheets)}); keep only the clinical sheet.")
        return named[0]
    return sheets[0]


def import_breast_lesions_usg(src: str | os.PathLike, output: str | os.PathLike, progress: bool | None = None) -> Path:
    """Build a manifest from the Breast-Lesions-USG (BrEaST) collection.

    Parameters
    ----------
    src : path-like
        The collection folder: the clinical ``.xlsx`` sheet and ``images/``.
    output : path-like
        The manifest CSV to write (atomically).
    progress : bool or None
        Show a progress bar (None: only on a terminal).

    Returns
    -------
    pathlib.Path
        The manifest. Columns: ``case_id`` (``caseNNN``), ``image``, ``mask``, ``label``
        (Classification: 1 malignant, 0 benign), ``spacing`` (mm per pixel = Pixel_size x 10),
        ``age`` (years, NaN where "not available"), ``max_diameter_cm`` (exact maximal Feret
        diameter of the tumour mask between pixel centres, in cm) and the BI-RADS descriptors
        in :data:`BREAST_DESCRIPTORS`.

    Notes
    -----
    Normal scans and scans without a tumour mask are excluded and counted in the log.
    """
    from tqdm.auto import tqdm

    src = Path(src)
    if not src.is_dir():
        raise InputError(f"Folder {src} not found. Give the Breast-Lesions-USG folder (it holds the .xlsx sheet and images/).")
    sheet = _find_sheet(src)
    try:
        table = pd.read_excel(sheet, dtype=object)
    except Exception as exc:  # openpyxl raises many types for a broken file
        raise InputError(f"Sheet {sheet} cannot be read ({type(exc).__name__}: {exc}). Download it again.") from None
    needed = ["Image_filename", "Mask_tumor_filename", "Pixel_size", "Age", "Classification"]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise ManifestError(f"{sheet}: missing column(s) {missing}; is this the Breast-Lesions-USG clinical sheet?")
    image_dir = src / "images" if (src / "images").is_dir() else src
    patient_col = _patient_column(table.columns)

    rows, n_normal, n_no_mask = [], 0, 0
    for i, rec in tqdm(table.iterrows(), total=len(table), desc="BrEaST import", unit="case", disable=None if progress is None else not progress):
        where = f"{sheet.name}, row {i + 2}"
        cls = str(rec["Classification"]).strip().lower()
        if cls == "normal":
            n_normal += 1
            continue
        if cls not in ("benign", "malignant"):
            raise ManifestError(f"{where}, column 'Classification': value {rec['Classification']!r} is not benign, malignant or normal. Fix the sheet.")
        mask_cell = rec["Mask_tumor_filename"]
        if pd.isna(mask_cell) or not str(mask_cell).strip():
            n_no_mask += 1
            continue
        image = image_dir / str(rec["Image_filename"]).strip()
        masks = [image_dir / m.strip() for m in re.split(r"[&;]", str(mask_cell)) if m.strip()]
        for p, what in [(image, "Image_filename"), *[(m, "Mask_tumor_filename") for m in masks]]:
            if not p.exists():
                raise InputError(f"{where}, column {what!r}: file {p} does not exist. Restore the file or drop the row from the sheet.")
        try:
            px_cm = float(rec["Pixel_size"])
        except (TypeError, ValueError):
            px_cm = float("nan")
        if not (np.isfinite(px_cm) and px_cm > 0):
            raise ManifestError(f"{where}, column 'Pixel_size': value {rec['Pixel_size']!r} is not a positive number (cm per pixel). Fix the sheet.")
        age = pd.to_numeric(pd.Series([rec["Age"]]), errors="coerce").iloc[0]
        _check_same_size(image, masks, where)
        mask = _union_mask(masks, px_cm * 10.0)
        if not mask.any():
            raise InputError(f"{where}: tumour mask {masks[0]} is empty (no non-zero pixel). Redraw the mask or drop the case.")
        row = dict(
            case_id=Path(image).stem,
            image=str(image.absolute()),
            mask=";".join(str(m.absolute()) for m in masks),
            label=int(cls == "malignant"),
            spacing=px_cm * 10.0,
            age=float(age),
            max_diameter_cm=max_feret_diameter(mask, px_cm),
        )
        if patient_col is not None:
            row["patient_id"] = _patient_text(rec[patient_col])
        for col, name in BREAST_DESCRIPTORS.items():
            if col in table.columns:
                v = rec[col]
                row[name] = None if pd.isna(v) else str(v).strip()
        rows.append(row)
    if not rows:
        raise InputError(f"{sheet}: no benign or malignant case with a tumour mask; nothing to import.")
    df = pd.DataFrame(rows)
    out = _write(df, output, "image")
    n_mal = int(df["label"].sum())
    log.info(
        "wrote %d lesions (%d benign, %d malignant) to %s; excluded %d normal scan(s) and %d scan(s) without a tumour mask; %d missing age(s)",
        len(df), len(df) - n_mal, n_mal, out, n_normal, n_no_mask, int(df["age"].isna().sum()),
    )
    return out


_MASK_RE = re.compile(r"^(?P<stem>.+?)_mask(?:[_ -]?\d+)?$", re.IGNORECASE)
_CASE_ID_BAD = re.compile(r"[^A-Za-z0-9._-]+")


def import_folder(src: str | os.PathLike, output: str | os.PathLike, spacing: float | None = None, patient_pattern: str | None = None) -> Path:
    """Build a manifest from ``benign/`` and ``malignant/`` folders of images with masks beside them.

    Parameters
    ----------
    src : path-like
        Folder holding ``benign/`` and ``malignant/`` (other folders, e.g. ``normal/``, are
        skipped and counted in the log).
    output : path-like
        The manifest CSV to write (atomically).
    spacing : float, optional
        Pixel spacing in mm for every image; leave out when unknown (features are then per pixel).
    patient_pattern : str, optional
        Regular expression searched in each image's stem whose group ``patient`` (or first group,
        or whole match) is the patient id, e.g. ``r"^(bus_\\d+)"`` for BUS-BRA's
        ``bus_0001-l.png``/``bus_0001-r.png``. Written as ``patient_id``; an image it does not
        match is an error.

    Returns
    -------
    pathlib.Path
        The manifest, with ``case_id`` = ``<class>_<image stem>`` (characters other than
        letters, digits, ``.``, ``_`` and ``-`` replaced by ``_``), and ``patient_id`` with
        ``patient_pattern``.

    Notes
    -----
    The mask of ``<name>.png`` is ``<name>_mask.png``; further masks ``<name>_mask_1.png``,
    ``<name>_mask_2.png``... (as in BUSI) are merged with it. Images without a mask are
    excluded and counted in the log; a mask without its image is an error.
    """
    src = Path(src)
    if not src.is_dir():
        raise InputError(f"Folder {src} not found. Give a folder holding benign/ and malignant/ sub-folders.")
    if spacing is not None and not (np.isfinite(spacing) and spacing > 0):
        raise InputError(f"The 'spacing' parameter of import_folder must be a float > 0 (mm per pixel). Got {spacing!r} instead.")
    pattern = None
    if patient_pattern is not None:
        try:
            pattern = re.compile(patient_pattern)
        except (re.error, TypeError) as exc:
            raise InputError(f"The 'patient_pattern' parameter of import_folder must be a regular expression. Got {patient_pattern!r} instead ({exc}).") from None
    classes = {"benign": 0, "malignant": 1}
    subdirs = {p.name.lower(): p for p in src.iterdir() if p.is_dir()}
    absent = [c for c in classes if c not in subdirs]
    if absent:
        raise InputError(f"Folder {src} has no {' or '.join(absent)}/ sub-folder. Put images in benign/ and malignant/.")
    skipped_dirs = sorted(set(subdirs) - set(classes))
    rows, n_no_mask = [], 0
    for cls, label in classes.items():
        files = sorted(p for p in subdirs[cls].iterdir() if p.is_file() and p.suffix.lower() in IMAGE_2D_SUFFIXES)
        images, masks = {}, {}
        for p in files:
            m = _MASK_RE.match(p.stem)
            if m:
                masks.setdefault(m.group("stem"), []).append(p)
            else:
                images[p.stem] = p
        for stem, ms in masks.items():
            if stem not in images:
                raise InputError(f"Mask {ms[0]} has no image {stem}.* beside it. Add the image or remove the mask.")
        for stem, img in sorted(images.items()):
            ms = sorted(masks.get(stem, []), key=lambda q: (len(q.stem), q.stem))
            if not ms:
                n_no_mask += 1
                log.debug("no mask for %s; excluded", img)
                continue
            _check_same_size(img, ms, f"{src.name}/{cls}")
            row = dict(
                case_id=f"{cls}_{_CASE_ID_BAD.sub('_', stem).strip('_')}",
                image=str(img.absolute()),
                mask=";".join(str(q.absolute()) for q in ms),
                label=label,
                spacing=float(spacing) if spacing is not None else np.nan,
            )
            if pattern is not None:
                m = pattern.search(stem)
                if m is None:
                    raise InputError(f"{src.name}/{cls}: image {img.name} does not match patient_pattern '{patient_pattern}'. Fix the pattern or rename the image.")
                pid = m.group("patient") if "patient" in pattern.groupindex else (m.group(1) if pattern.groups else m.group(0))
                row["patient_id"] = pid
            rows.append(row)
    if not rows:
        raise InputError(f"No image with a mask found under {src}/benign or {src}/malignant. Masks must be named <image>_mask.png.")
    df = pd.DataFrame(rows)
    out = _write(df, output, "image")
    n_mal = int(df["label"].sum())
    n_merged = int(df["mask"].str.contains(";").sum())
    log.info(
        "wrote %d lesions (%d benign, %d malignant; %d with several masks merged) to %s; excluded %d image(s) without a mask%s",
        len(df), len(df) - n_mal, n_mal, n_merged, out, n_no_mask,
        f"; skipped folder(s) {skipped_dirs}" if skipped_dirs else "",
    )
    return out


#: Columns of BUS-BRA's ``bus_data.csv`` that the importer reads.
BUS_BRA_COLUMNS = ("ID", "Case", "Histology", "Pathology", "BIRADS", "Device", "Width", "Height", "Side")
#: The authors' patient-grouped folds: file name -> (manifest column, number of folds).
BUS_BRA_FOLDS = {"5-fold-cv.csv": ("fold5", 5), "10-fold-cv.csv": ("fold10", 10)}
_BUS_ID = re.compile(r"^bus_(?P<n>\d+-[lrs])$")


def device_id(device) -> str:
    """A scanner's name as a clean text id: the model before ``@`` (the probe's frequency range), in
    lower case, every run of other characters than letters and digits one ``_``.

    >>> device_id("GE Logiq 7 @10-14MHz")
    'ge_logiq_7'
    >>> device_id("Toshiba Aplio 300 @12-14 MHz")
    'toshiba_aplio_300'
    """
    return re.sub(r"[^a-z0-9]+", "_", str(device).split("@")[0].strip().lower()).strip("_")


def _read_bus_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype={"ID": str})
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path} is not a readable CSV ({str(exc).splitlines()[0]}). Download it again.") from None


def _bus_bra_folds(path: Path, ids: pd.Series, cases: pd.Series, k: int) -> np.ndarray:
    """The authors' fold (1..k) of each image ``ids``; checks that every image has one and that no
    patient (``cases``) has images in two folds."""
    table = _read_bus_csv(path)
    missing = [c for c in ("ID", "kFold") if c not in table.columns]
    if missing:
        raise ManifestError(f"{path}: missing column(s) {missing}; is this BUS-BRA's {path.name}?")
    fold = pd.to_numeric(table["kFold"], errors="coerce")
    bad = ~(fold.isin(range(1, k + 1)))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ManifestError(f"{path.name}, row {i + 2}, column 'kFold': value {table['kFold'].tolist()[i]!r} is not a fold number 1 to {k}. Download the file again.")
    by_id = pd.Series(fold.astype(int).to_numpy(), index=table["ID"].astype(str).str.strip())
    if by_id.index.duplicated().any():
        raise ManifestError(f"{path.name}: image {by_id.index[by_id.index.duplicated()][0]!r} appears more than once. Download the file again.")
    absent = ids[~ids.isin(by_id.index)]
    if len(absent):
        raise ManifestError(f"{path.name} has no fold for image {absent.iloc[0]!r} (and {len(absent) - 1} more) of bus_data.csv. Download both files of the same release.")
    folds = by_id.loc[ids.to_numpy()].to_numpy()
    per_case = pd.Series(folds).groupby(cases.to_numpy()).unique()
    split = per_case[per_case.map(len) > 1]
    if len(split):
        raise ManifestError(f"{path.name} puts the images of patient (Case) {split.index[0]} in folds {sorted(int(f) for f in split.iloc[0])}; "
                            "the authors' folds keep a patient's images together. Download the file again.")
    return folds


def import_bus_bra(src: str | os.PathLike, output: str | os.PathLike, progress: bool | None = None) -> Path:
    """Build a manifest from the BUS-BRA collection (Gómez-Flores et al., Medical Physics 2024).

    Parameters
    ----------
    src : path-like
        The collection folder: ``bus_data.csv``, ``Images/bus_NNNN-{l,r,s}.png``,
        ``Masks/mask_NNNN-{l,r,s}.png`` and the authors' folds ``5-fold-cv.csv`` and
        ``10-fold-cv.csv``.
    output : path-like
        The manifest CSV to write (atomically).
    progress : bool or None
        Show a progress bar (None: only on a terminal).

    Returns
    -------
    pathlib.Path
        The manifest, one row per image. Columns: ``case_id`` (the image ``ID``, ``bus_0001-l``),
        ``image``, ``mask``, ``label`` (Pathology: 1 malignant, 0 benign), ``spacing`` (empty: the
        release gives no pixel size, so shape features are in pixels), ``patient_id`` (``Case``;
        the two views ``-l``/``-r`` of one lesion share it), ``centre`` (the scanner as a clean id,
        :func:`device_id`: ``ge_logiq_7``, ``ge_logiq_5``, ``toshiba_aplio_300``, ``u_systems``),
        ``device`` (``Device`` as published, with the probe's frequency), ``birads`` (2-5, the
        radiologist's assessment: nearly a proxy of the outcome, not a predictor to put in a
        model), ``histology``, ``view`` (``Side``: ``left``/``right`` for the two views of one
        lesion, ``single`` for a patient's only image), ``fold5`` and ``fold10`` (the authors'
        patient-grouped folds, 1..k, from each file's ``kFold``: the fold in which the image is
        tested), ``width_px`` and ``height_px`` (read from the PNG).

    Notes
    -----
    The size comes from the PNG, not from ``bus_data.csv``: the published sheet gives a wrong
    ``Width``/``Height`` for 4 images (bus_0856-l, bus_0857-r, bus_0912-l, bus_0990-l); the log
    names the images where they differ. A fold file that is absent gives no column (logged); one
    that puts a patient's images in two folds is an error. The ``valid_k`` columns of the fold
    files (an inner train/validation split, image by image) are not kept.
    """
    from tqdm.auto import tqdm

    src = Path(src)
    if not src.is_dir():
        raise InputError(f"Folder {src} not found. Give the BUS-BRA folder (it holds bus_data.csv, Images/ and Masks/).")
    sheet = src / "bus_data.csv"
    if not sheet.is_file():
        raise InputError(f"No bus_data.csv found in {src}. Point the importer at the BUS-BRA folder (it holds bus_data.csv, Images/ and Masks/).")
    table = _read_bus_csv(sheet)
    missing = [c for c in BUS_BRA_COLUMNS if c not in table.columns]
    if missing:
        raise ManifestError(f"{sheet}: missing column(s) {missing}; is this BUS-BRA's bus_data.csv?")
    table["ID"] = table["ID"].astype(str).str.strip()
    folds = {}
    for name, (col, k) in BUS_BRA_FOLDS.items():
        if (src / name).is_file():
            folds[col] = _bus_bra_folds(src / name, table["ID"], table["Case"].map(_patient_text), k)
        else:
            log.info("no %s in %s: the manifest has no %s column", name, src, col)

    rows, resized = [], []
    for i, rec in tqdm(table.iterrows(), total=len(table), desc="BUS-BRA import", unit="image", disable=None if progress is None else not progress):
        where = f"{sheet.name}, row {i + 2}"
        m = _BUS_ID.match(rec["ID"])
        if m is None:
            raise ManifestError(f"{where}, column 'ID': value {rec['ID']!r} is not a BUS-BRA image id (bus_NNNN-l, -r or -s). Fix the sheet.")
        cls = str(rec["Pathology"]).strip().lower()
        if cls not in ("benign", "malignant"):
            raise ManifestError(f"{where}, column 'Pathology': value {rec['Pathology']!r} is not benign or malignant. Fix the sheet.")
        patient = _patient_text(rec["Case"])
        if patient is None:
            raise ManifestError(f"{where}, column 'Case': empty; every image needs its patient. Fix the sheet.")
        centre = device_id(rec["Device"]) if not pd.isna(rec["Device"]) else ""
        if not centre:
            raise ManifestError(f"{where}, column 'Device': value {rec['Device']!r} names no scanner. Fix the sheet.")
        image = src / "Images" / f"{rec['ID']}.png"
        mask = src / "Masks" / f"mask_{m.group('n')}.png"
        for p, what in ((image, "Images"), (mask, "Masks")):
            if not p.exists():
                raise InputError(f"{where}: file {p} does not exist. Restore it in {what}/ or drop the row from the sheet.")
        width, height = _check_same_size(image, [mask], where)
        if not _union_mask([mask], None).any():
            raise InputError(f"{where}: mask {mask} is empty (no non-zero pixel). Redraw the mask or drop the image.")
        if (rec["Width"], rec["Height"]) != (width, height):
            resized.append(rec["ID"])
        row = dict(
            case_id=rec["ID"],
            image=str(image.absolute()),
            mask=str(mask.absolute()),
            label=int(cls == "malignant"),
            spacing=np.nan,
            patient_id=patient,
            centre=centre,
            device=str(rec["Device"]).strip(),
            birads=None if pd.isna(rec["BIRADS"]) else rec["BIRADS"],
            histology=None if pd.isna(rec["Histology"]) else str(rec["Histology"]).strip(),
            view=None if pd.isna(rec["Side"]) else str(rec["Side"]).strip(),
        )
        for col, f in folds.items():
            row[col] = int(f[i])
        row.update(width_px=width, height_px=height)
        rows.append(row)
    if not rows:
        raise InputError(f"{sheet} has no rows; nothing to import.")
    df = pd.DataFrame(rows)
    out = _write(df, output, "image")
    n_mal = int(df["label"].sum())
    per_patient = df.groupby("patient_id")["label"].max()
    log.info(
        "wrote %d images of %d patients (%d benign, %d malignant patients; %d benign, %d malignant images) from %d scanner(s) %s to %s; "
        "spacing unknown (shape features in pixels); %d image size(s) in bus_data.csv differ from the PNG%s",
        len(df), len(per_patient), int((per_patient == 0).sum()), int(per_patient.sum()), len(df) - n_mal, n_mal,
        df["centre"].nunique(), df["centre"].value_counts().to_dict(), out, len(resized), f" ({', '.join(resized)}; the PNG's size is kept)" if resized else "",
    )
    return out
