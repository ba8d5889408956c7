"""Cohort manifest: one CSV row per lesion.

Columns
-------
case_id : str, unique
image : path of the image (relative to the manifest's folder, or absolute)
mask : path of the lesion mask (same rules); several masks may be joined with ``;``
label : 1 malignant / 0 benign (``malignant``/``benign`` accepted)
spacing : mm per pixel for 2D rasters, finite and > 0 (3D volumes take it from the header); may be empty
    when unknown (features are then per pixel)
split : optional, ``train`` or ``test``
patient_id : optional; lesions (or views) of one patient share it. The patient is then the unit of
    the split, the cross-fitting folds and every bootstrap; without it each lesion is its own patient.
centre : optional; the centre (hospital, or scanner as in BUS-BRA) of each row, a clean text id. Written
    by ``cohort import bus-bra`` and ``cohort combine`` (:func:`srnomogram.data.combine.combine_manifests`,
    which also makes ``patient_id`` ``<centre>:<patient>``).
anything else : clinical columns (``age``, ``max_diameter_cm``, ...)

Other image columns (``image_sr``, ...) hold paths too; every column whose name starts with
``image`` or ``mask`` is treated as a path column.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ManifestError
from ..utils import check_user_file, not_a_file, write_csv_atomic

REQUIRED = ("case_id", "image", "mask", "label")
LABEL_WORDS = {"malignant": 1, "benign": 0, "1": 1, "0": 0, "1.0": 1, "0.0": 0}
SPLITS = ("train", "test")


def _show(value) -> str:
    """repr of a cell value without NumPy's type wrapper (``-0.1``, not ``np.float64(-0.1)``)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def patient_ids(df: pd.DataFrame) -> pd.Series:
    """The patient of each row, as str: ``patient_id`` where the manifest has it, else ``case_id``.

    The one place that decides what a patient is: the split, the folds, the bootstraps and the
    flow counts all call it, so that one patient's lesions never straddle train/test or folds.
    """
    ids = df["case_id"].astype(str)
    if "patient_id" not in df.columns:
        return ids.rename("patient_id")
    pid = df["patient_id"]
    missing = pid.isna() | (pid.astype(str).str.strip() == "")
    # a row without a patient is its own patient, under a name no real patient_id can take
    return pid.astype(str).str.strip().where(~missing, "\x00case:" + ids).rename("patient_id")


def patient_codes(ids) -> np.ndarray:
    """The patient of each row as an integer code: 1 for the first patient met, 2 for the next new one, ...

    How the patient reaches R (the ``cluster`` of every bootstrap over patients): R strings cannot
    hold the NUL byte with which :func:`patient_ids` marks a lesion without a ``patient_id``
    (``"\\x00case:<case_id>"``), so the names stay in Python and R gets these codes.

    Parameters
    ----------
    ids : array-like
        The patient of each row, e.g. ``patient_ids(df)``; compared as text (``7`` and ``"7"`` are
        one patient).

    Returns
    -------
    numpy.ndarray of int64
        Codes 1, 2, ... in order of first appearance; rows of one patient share a code.
    """
    codes, _ = pd.factorize(pd.Series(np.asarray(ids, dtype=object)).astype(str), sort=False)
    return codes.astype(np.int64) + 1


def path_columns(df: pd.DataFrame) -> list[str]:
    """Columns that hold file paths: ``image*`` and ``mask*``."""
    return [c for c in df.columns if c.startswith("image") or c.startswith("mask")]


def _resolve(value: str, base: Path, where: str) -> str:
    p = Path(value)
    if p.is_absolute():
        return str(p)
    resolved = (base / p).resolve()
    try:
        resolved.relative_to(base.resolve())
    except ValueError:
        raise ManifestError(
            f"{where}: path {value!r} escapes the manifest's folder {base}. "
            "Write an absolute path, or move the manifest above the images."
        ) from None
    return str(resolved)


def load_manifest(path: str | os.PathLike, check_files: bool = True, require_label: bool = True) -> pd.DataFrame:
    """Read and validate a manifest; return it with absolute paths and integer labels.

    Parameters
    ----------
    path : path-like
        The manifest CSV.
    check_files : bool
        Check that every image and mask file exists.
    require_label : bool
        Refuse a manifest without a ``label`` column (a study, ``validate``). False reads an
        unlabelled cohort (``predict``): the column may be absent, and its empty cells stay missing
        (``label`` is then a nullable ``Int64``).

    Returns
    -------
    pandas.DataFrame
        One row per lesion, ``case_id`` as str, ``label`` as int (0/1), path columns absolute,
        ``patient_id`` (when present) as str with missing values kept missing.
        ``df.attrs["manifest_path"]`` holds the manifest's absolute path.

    Raises
    ------
    ManifestError
        Naming the file, the row (1-based, header = row 1) and column, and the remedy.
    """
    path = Path(path)
    if not path.exists():
        raise ManifestError(f"Manifest {path} not found. Create one with 'srnomogram cohort import ...'.")
    check_user_file(path, "Manifest", ManifestError, (".csv",), "manifest.csv", noun="CSV")  # a folder, a named pipe
    try:
        # patient and centre ids are names, not numbers: "007" stays "007", and 12 does not come back as "12.0"
        df = pd.read_csv(path, dtype={"case_id": str, "split": str, "patient_id": str, "centre": str}, keep_default_na=True)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise ManifestError(f"Manifest {path} is not a readable CSV ({str(exc).splitlines()[0]}).") from None
    return validate_manifest(df, base=path.parent, source=str(path), check_files=check_files, require_label=require_label)


def validate_manifest(df: pd.DataFrame, base: str | os.PathLike, source: str = "manifest", check_files: bool = True,
                      require_label: bool = True) -> pd.DataFrame:
    """Validate a manifest DataFrame (see :func:`load_manifest`); paths are resolved against ``base``."""
    base = Path(base).absolute()
    df = df.copy()
    required = REQUIRED if require_label else tuple(c for c in REQUIRED if c != "label")
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ManifestError(f"{source}: missing column(s) {missing}; a manifest needs {list(required)}.")
    if not len(df):  # else every command fails later, far from the cause (KeyError 'spacing', 'train', ...)
        raise ManifestError(f"{source} has no rows (only a header); a manifest needs one row per lesion.")

    def row(i):  # CSV line number, the header being line 1
        return f"{source}, row {i + 2}"

    df["case_id"] = df["case_id"].astype(str).str.strip()
    dup = df["case_id"].duplicated(keep=False)
    if dup.any():
        first = df.index[dup][0]
        raise ManifestError(f"{row(first)}: case_id {_show(df.at[first, 'case_id'])} appears more than once. Each lesion needs its own case_id.")

    if "label" in df.columns:
        labels = []
        for i, v in df["label"].items():
            if not require_label and (pd.isna(v) or str(v).strip() == ""):
                labels.append(pd.NA)  # an unlabelled lesion: nothing to validate it against, but it can be scored
                continue
            key = str(v).strip().lower()
            if key not in LABEL_WORDS:
                raise ManifestError(f"{row(i)}, column 'label': value {_show(v)} is not 0/1 or benign/malignant. Fix the label or drop the row.")
            labels.append(LABEL_WORDS[key])
        df["label"] = pd.array(labels, dtype="Int64") if any(v is pd.NA for v in labels) else np.asarray(labels, dtype=int)

    if "patient_id" in df.columns:
        df["patient_id"] = [None if pd.isna(v) or str(v).strip() == "" else str(v).strip() for v in df["patient_id"]]

    if "split" in df.columns:
        df["split"] = df["split"].astype(str).str.strip().str.lower()
        bad = ~df["split"].isin(SPLITS)
        if bad.any():
            i = df.index[bad][0]
            raise ManifestError(f"{row(i)}, column 'split': value {_show(df.at[i, 'split'])} is not 'train' or 'test'.")

    if "spacing" in df.columns:
        sp = pd.to_numeric(df["spacing"], errors="coerce")
        bad = df["spacing"].notna() & ~(np.isfinite(sp) & (sp > 0))  # an empty cell is unknown spacing; inf is an error
        if bad.any():
            i = df.index[bad][0]
            raise ManifestError(f"{row(i)}, column 'spacing': value {_show(df.at[i, 'spacing'])} is not a finite number > 0 (mm per pixel); "
                                "fix it, or leave the cell empty when the spacing is unknown.")
        df["spacing"] = sp

    for col in path_columns(df):
        out = []
        for i, v in df[col].items():
            if pd.isna(v) or str(v).strip() == "":
                if col in ("image", "mask"):
                    raise ManifestError(f"{row(i)}, column {col!r}: empty path. Every lesion needs an image and a mask.")
                out.append(None)
                continue
            parts = [_resolve(s.strip(), base, f"{row(i)}, column {col!r}") for s in str(v).split(";")]
            if check_files:
                for p in parts:
                    if not os.path.exists(p):
                        raise ManifestError(f"{row(i)}, column {col!r}: file {p} does not exist. Fix the path (relative to {base}).")
                    kind = not_a_file(p)  # before anything opens it: a named pipe would be waited on for ever
                    if kind and kind != "a folder":  # a folder may be a DICOM series (the readers check it)
                        raise ManifestError(f"{row(i)}, column {col!r}: {p} is {kind}, not a file. Give the path of "
                                            f"{'a mask' if col.startswith('mask') else 'an image'} file or a DICOM series folder.")
            out.append(";".join(parts))
        df[col] = out
    df.attrs["manifest_path"] = str(Path(source).absolute()) if source != "manifest" else None
    df.attrs["base"] = str(base)
    return df.reset_index(drop=True)


def mask_paths(value: str) -> str | list[str]:
    """Split a mask cell into one path or a list of paths (joined with ``;``)."""
    parts = str(value).split(";")
    return parts[0] if len(parts) == 1 else parts


def write_manifest(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a manifest atomically, making paths inside the manifest's folder relative."""
    path = Path(path).absolute()
    base = path.parent.resolve()
    out = df.copy()
    for col in path_columns(out):
        def rel(v):
            if v is None or (isinstance(v, float) and np.isnan(v)):
                return v
            parts = []
            for s in str(v).split(";"):
                p = Path(s).absolute()
                try:
                    parts.append(str(p.resolve().relative_to(base)))
                except ValueError:
                    parts.append(str(p))
            return ";".join(parts)
        out[col] = out[col].map(rel)
    return write_csv_atomic(out, path)


def manifest_hashes(path: str | os.PathLike, df: pd.DataFrame) -> dict:
    """SHA-256 of a manifest file and one hash over every image and mask its table ``df`` names.

    Returns
    -------
    dict
        ``manifest`` (the file's SHA-256) and ``images_and_masks`` (one hash over the files' hashes,
        column by column, in row order): a study's raw inputs, in its stage keys.
    """
    from ..utils import file_sha256, hash_bytes

    files = {"manifest": file_sha256(path)}
    h = []
    for col in path_columns(df):
        for cell in df[col].dropna():
            for p in np.atleast_1d(mask_paths(cell)) if col.startswith("mask") else [cell]:
                h.append(file_sha256(p))
    files["images_and_masks"] = hash_bytes(*h)
    return files
