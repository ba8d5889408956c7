"""Stratified train/test split that Python and R reproduce identically.

No random number generator is shared between the languages. Instead, within each label the
cases are ranked by ``sha256("<seed>:<case_id>")`` (hex digest of the UTF-8 bytes, ties broken by
``case_id``), and the first ``floor(test_size * n_class + 0.5)`` of each class go to the test set.
The R function ``srnomogram::stratified_split()`` (``R/split.R``) implements the same rule with
``digest::digest(x, algo = "sha256", serialize = FALSE)``.

When the cohort has a ``patient_id`` column the unit is the patient
(:func:`~srnomogram.data.manifest.patient_ids`): a patient is malignant when any of their lesions
is, the patients of each class are ranked by ``sha256("<seed>:<patient_id>")`` in the same way,
and all of a patient's lesions follow the patient, so that no patient is on both sides. A lesion
without a patient id is its own patient, ranked by its ``case_id`` (after a real patient of the same
name, should one exist). Without the column the patient is the lesion and the split is the lesion
split above, bit for bit.

A case's assignment depends only on the seed, its id and its rank inside its class, so adding a
case to a cohort moves few others.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError, ManifestError, param_error
from ..utils import write_csv_atomic

log = logging.getLogger(__name__)


def _hash_key(seed: int, case_id: str) -> str:
    return hashlib.sha256(f"{seed}:{case_id}".encode("utf-8")).hexdigest()


def _check_args(test_size, seed, func):
    if isinstance(test_size, bool) or not isinstance(test_size, (int, float, np.floating, np.integer)) or not (0 < float(test_size) < 1):
        raise param_error("test_size", func, "a float in (0, 1)", test_size)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise param_error("seed", func, "an int >= 0", seed)


def n_test_per_class(n_class: int, test_size: float) -> int:
    """Number of test cases of a class of ``n_class``: ``floor(test_size * n_class + 0.5)``."""
    return int(math.floor(test_size * n_class + 0.5))


def stratified_split(df: pd.DataFrame, test_size: float = 0.2, seed: int = 0, id_col: str = "case_id", label_col: str = "label", source: str | None = None,
                     patient_col: str | None = "patient_id") -> pd.Series:
    """Assign each row to ``"train"`` or ``"test"``, stratified by label, by patient when patients are known.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per lesion with an id column and a label column.
    test_size : float
        Fraction of each class that goes to the test set (0.2 gives the paper's 8:2 split).
    seed : int
        Seed (>= 0) mixed into the hash; the same seed gives the same split in Python and R.
    id_col, label_col : str
        Column names of the case id and the label.
    source : str, optional
        Name of the manifest, used in error messages.
    patient_col : str or None, default "patient_id"
        Column of patient ids. When ``df`` has it, whole patients are split (stratified by the
        patient's label, the largest of their lesions' labels, i.e. malignant if any lesion is) and
        ``test_size`` is a fraction of each class's patients; ``None`` (or an absent column) splits
        lesions.

    Returns
    -------
    pandas.Series
        ``"train"``/``"test"`` per row, with ``df``'s index, named ``split``.

    Raises
    ------
    InputError
        If a column is missing, ids repeat, a label is missing, or a class would be empty in
        the train or the test set.
    """
    _check_args(test_size, seed, "stratified_split")
    where = source or "stratified_split"
    for col in (id_col, label_col):
        if col not in df.columns:
            raise ManifestError(f"{where}: column {col!r} is missing; the split needs case ids and labels.")
    ids = df[id_col].astype(str).str.strip()
    if ids.duplicated().any():
        raise ManifestError(f"{where}: case_id {ids[ids.duplicated()].iloc[0]!r} appears more than once. Each lesion needs its own case_id.")
    labels = df[label_col]
    if labels.isna().any():
        i = int(np.flatnonzero(labels.isna().to_numpy())[0])
        raise ManifestError(f"{where}, row {i + 2}: label is missing. Fill in 0/1 or drop the row.")
    if patient_col is not None and patient_col in df.columns:
        from .manifest import patient_ids

        group = patient_ids(pd.DataFrame({"case_id": ids, "patient_id": df[patient_col]}, index=df.index))
        unit = "patient(s)"
    else:
        group, unit = ids, "case(s)"
    # one row per unit (patient, or lesion): the name it is hashed under, whether it is a lesion
    # without a patient id (ranked after a patient of the same name), and its label
    lone = group.str.startswith("\x00case:")
    units = pd.DataFrame({"name": group.where(~lone, ids), "lone": lone, "label": labels}).groupby(group.to_numpy(), sort=False)
    units = units.agg(name=("name", "first"), lone=("lone", "first"), label=("label", "max"))
    names, lones = units["name"].to_dict(), units["lone"].to_dict()
    keys = {g: _hash_key(int(seed), name) for g, name in names.items()}
    test_units = set()
    for lab in sorted(units["label"].unique(), key=str):
        members = units.index[units["label"] == lab]
        n = len(members)
        k = n_test_per_class(n, float(test_size))
        if k < 1 or k > n - 1:
            side = "test" if k < 1 else "train"
            raise InputError(
                f"{where}: the split leaves class label={lab} empty in the {side} set "
                f"({n} {unit}, test_size={test_size}). Add cases of that class or change test_size."
            )
        order = sorted(members, key=lambda g: (keys[g], names[g], bool(lones[g])))
        test_units.update(order[:k])
    split = pd.Series(np.where(group.isin(test_units), "test", "train"), index=df.index, name="split", dtype=object)
    return split


def split_manifest(manifest: str | os.PathLike, test_size: float = 0.2, seed: int = 0, output: str | os.PathLike | None = None) -> Path:
    """Write (or overwrite) the ``split`` column of a manifest, atomically.

    An existing ``split`` (train/test: the column this writes) is replaced with a warning that says how
    many rows change side; no other column is written.

    Other columns are kept exactly as written (paths stay relative) when ``output`` lies in the
    manifest's folder; elsewhere paths are rewritten as :func:`~srnomogram.data.manifest.write_manifest` does.

    Parameters
    ----------
    manifest : path-like
        The manifest CSV.
    test_size, seed
        See :func:`stratified_split`.
    output : path-like, optional
        Where to write; defaults to overwriting ``manifest``.

    Returns
    -------
    pathlib.Path
        The written manifest.
    """
    from .manifest import load_manifest

    _check_args(test_size, seed, "split_manifest")
    manifest = Path(manifest)
    checked = load_manifest(manifest, check_files=False)
    split = stratified_split(checked, test_size=test_size, seed=seed, source=str(manifest))
    out = Path(output) if output is not None else manifest
    if "split" in checked.columns:  # its own column (load_manifest admits only train/test there): said, not silent
        changed = int((checked["split"].astype(str).to_numpy() != split.to_numpy()).sum())
        if changed:
            log.warning("%s already has a split column; %d of its %d rows change side (seed %d, test_size %s). "
                        "Pass -o to keep it and write the new split elsewhere.", manifest, changed, len(split), seed, test_size)
    if out.absolute().parent.resolve() == manifest.absolute().parent.resolve():
        raw = pd.read_csv(manifest, dtype=str, keep_default_na=False)
        raw["split"] = split.to_numpy()
        write_csv_atomic(raw, out)
    else:  # another folder: relative paths must be rewritten against it
        from .manifest import write_manifest

        checked["split"] = split.to_numpy()
        write_manifest(checked, out)
    counts = pd.crosstab(split, checked["label"])
    log.info(
        "wrote split (seed %d, test_size %s) into %s: train %d (%d malignant), test %d (%d malignant)",
        seed, test_size, out, (split == "train").sum(), counts.loc["train"].get(1, 0), (split == "test").sum(), counts.loc["test"].get(1, 0),
    )
    return out


def check_centres(df: pd.DataFrame, column: str, source: str = "manifest", by_centre: bool = False) -> pd.Series:
    """The centre of each lesion (``column``: hospital, scanner or both), as str, checked.

    Parameters
    ----------
    df : pandas.DataFrame
        The cohort, as :func:`~srnomogram.data.manifest.load_manifest` read it (index: CSV row − 2).
    column : str
        The manifest column naming each lesion's centre (``cohort.centre``).
    source : str
        The manifest's path, for the messages.
    by_centre : bool
        The centres split the cohort (``split.method: centre``): a patient
        (:func:`~srnomogram.data.manifest.patient_ids`) must then have all their lesions in one
        centre, else a held-out centre would share a patient with the centres a model was fitted on.

    Raises
    ------
    ManifestError
        The column is absent, a cell is empty (naming its row), or, with ``by_centre``, a patient has
        lesions in two centres (naming the patient and the centres).
    """
    from .manifest import patient_ids

    if column not in df.columns:
        raise ManifestError(f"{source}: no column {column!r}, which cohort.centre names as the lesions' centre; add it "
                            "(one centre name per lesion) or set cohort.centre to the column that has them.")
    centre = df[column]
    path = df.attrs.get("manifest_path")
    if path is not None and Path(path).is_file():  # centres are names, not numbers: "01" stays "01", as patient ids do
        raw = pd.read_csv(path, usecols=[column], dtype=str)[column]
        if len(raw) == len(df):
            centre = raw.set_axis(df.index)
    centre = centre.astype("string").str.strip()
    empty = centre.isna() | (centre == "")
    if empty.any():
        i = empty.to_numpy().nonzero()[0][0]
        raise ManifestError(f"{source}, row {int(df.index[i]) + 2}, column {column!r}: the centre is empty; every lesion "
                            "needs the centre (hospital or scanner) where it was imaged.")
    centre = centre.astype(str)
    if by_centre:
        pid = patient_ids(df)
        seen = centre.groupby(pid.to_numpy(), sort=False).unique()
        two = seen[seen.map(len) > 1]
        if len(two):
            raise ManifestError(f"{source}, column {column!r}: patient {two.index[0]!r} has lesions in centres "
                                f"{', '.join(map(repr, sorted(two.iloc[0])))}; a centre split needs each patient in one centre "
                                "(correct the centre or the patient_id).")
    return centre.rename(column)
