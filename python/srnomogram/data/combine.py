"""Combine the manifests of several cohorts into one multi-centre manifest.

:func:`combine_manifests` stacks manifests (each read and checked by
:func:`~srnomogram.data.manifest.load_manifest`) and writes one with a ``centre`` column, the
group that multi-centre methods read (leave-one-centre-out, meta-analysis, harmonisation).

Rules
-----
* **Centre.** Each manifest is one centre named by the user (``centres``), or carries one per row
  in a column of its own (``centre_from``, e.g. BUS-BRA's ``centre``, its scanner). A centre id is
  letters, digits, ``.``, ``_`` and ``-``, starting with a letter or digit. A centre comes from one
  manifest only, and a patient belongs to one centre: a held-out centre must hold all of its
  patients' images.
* **Patients.** ``12`` in two hospitals is two patients, so every ``patient_id`` becomes
  ``<centre>:<patient_id>`` (left as it is when it already starts so, so that combining a combined
  manifest again changes nothing). A row without a patient stays without one: it is its own patient,
  named by its ``case_id``.
* **Case ids** must be unique across the manifests; ``prefix_case_ids`` makes every one
  ``<centre>_<case_id>``.
* **Paths** are read as absolute and written relative to the combined manifest's folder when they
  lie inside it (absolute otherwise), as :func:`~srnomogram.data.manifest.write_manifest` does.
* **Labels** are read by :func:`~srnomogram.data.manifest.load_manifest` in each manifest, so
  ``benign``/``malignant`` and ``0``/``1`` both become 0/1; any other coding is refused with its
  manifest, row and value.
* **Other columns** present in only some manifests are kept, with empty cells for the rows of the
  others (e.g. ``age`` of BrEaST, ``fold5`` of BUS-BRA). A column that holds numbers in one manifest
  and text in another (BrEaST's BI-RADS ``4a`` against BUS-BRA's ``4``) is refused: recode or
  rename it in one, or leave it out (``drop``). Integer columns stay integers. ``split`` must be in
  every manifest or in none.
* **Spacing** known in one cohort and unknown in another (BUS-BRA has no pixel size) is allowed and
  logged as a warning: the shape features are then in mm for some rows and in pixels for others.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError, ManifestError, param_error
from .manifest import REQUIRED, load_manifest, write_manifest

log = logging.getLogger(__name__)

#: A centre id: letters, digits, ``.``, ``_`` and ``-``, starting with a letter or digit (never ``:``,
#: which separates the centre from the patient in a combined ``patient_id``).
CENTRE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
#: Between the centre and a patient's own id in a combined ``patient_id``.
PATIENT_SEP = ":"
#: Columns that :func:`combine_manifests` itself checks (not compared as numbers or text).
_OWN = (*REQUIRED, "patient_id", "centre", "split", "spacing")


def _per_manifest(value, n, name):
    """``value`` broadcast to one entry per manifest (a str, None, or a sequence of n of them)."""
    if value is None or isinstance(value, str):
        return [value] * n
    value = list(value)
    if len(value) != n:
        raise param_error(name, "combine_manifests", f"one entry per manifest ({n})", value)
    return value


def _kind(col: pd.Series) -> str:
    """``empty``, ``number`` or ``text``: what a manifest column holds, as read from its CSV."""
    if col.isna().all():
        return "empty"
    return "number" if pd.api.types.is_numeric_dtype(col) else "text"


def _first_text(col: pd.Series):
    """The first cell of a text column that is not a number (row index, value)."""
    num = pd.to_numeric(col, errors="coerce")
    bad = col.notna() & num.isna()
    i = col.index[bad][0] if bad.any() else col.first_valid_index()
    return i, col[i]


def combine_manifests(manifests, output: str | os.PathLike, centres=None, centre_from=None, drop=(), prefix_case_ids: bool = False) -> Path:
    """Stack the manifests of several cohorts into one, with a ``centre`` column.

    Parameters
    ----------
    manifests : sequence of path-like
        The manifests to combine, each as ``srnomogram cohort import`` writes it.
    output : path-like
        The combined manifest CSV to write (atomically; paths are rewritten relative to its folder).
    centres : sequence of (str or None), optional
        One entry per manifest: the centre id of all its rows, or None to take each row's centre
        from the manifest's ``centre_from`` column.
    centre_from : str or sequence of (str or None), optional
        The column that holds each row's centre, for the manifests whose ``centres`` entry is None
        (one name for all, or one entry per manifest). When neither ``centres`` nor ``centre_from``
        is given, every manifest must have a ``centre`` column.
    drop : sequence of str
        Columns to leave out of every manifest (a column whose type clashes between cohorts).
    prefix_case_ids : bool
        Make every case id ``<centre>_<case_id>``, for cohorts whose case ids clash.

    Returns
    -------
    pathlib.Path
        The combined manifest: ``case_id``, ``image``, ``mask``, ``label``, then ``patient_id``
        (``<centre>:<patient>``) when any manifest has one, ``centre``, then the other columns in
        order of first appearance. The module docstring gives the rules.

    Raises
    ------
    ManifestError
        One line naming the manifest(s), the column or id that clash, and the remedy.
    """
    paths = [Path(p) for p in ([manifests] if isinstance(manifests, (str, os.PathLike)) else manifests)]
    if not paths:
        raise param_error("manifests", "combine_manifests", "a sequence of at least one manifest path", manifests)
    n = len(paths)
    if centres is None and centre_from is None:
        centre_from = "centre"
    names = _per_manifest(centres, n, "centres")
    columns = _per_manifest(centre_from, n, "centre_from")
    drop = [drop] if isinstance(drop, str) else list(drop)
    for c in drop:
        if c in REQUIRED:
            raise param_error("drop", "combine_manifests", f"columns other than {list(REQUIRED)}", drop)

    frames, source_of_centre = [], {}
    for path, name, column in zip(paths, names, columns):
        if (name is None) == (column is None):
            raise InputError(f"Manifest {path}: give either its centre (centres, --centre NAME) or the column of its rows' centres "
                             f"(centre_from, --centre-from COLUMN), {'not both' if name is not None else 'one of them'}.")
        df = load_manifest(path)
        df = df.drop(columns=[c for c in drop if c in df.columns])
        if name is not None:
            if not (isinstance(name, str) and CENTRE_ID.fullmatch(name)):
                raise param_error("centres", "combine_manifests", "centre ids (letters, digits, '.', '_', '-'; starting with a letter or digit)", name)
            if "centre" in df.columns:
                raise ManifestError(f"Manifest {path} already has a 'centre' column; keep it with --centre-from centre, "
                                    f"or leave it out with --drop centre to name the centre {name!r}.")
            centre = pd.Series(name, index=df.index)
        else:
            if column != "centre" and "centre" in df.columns:
                raise ManifestError(f"Manifest {path} already has a 'centre' column; take the centre from it (--centre-from centre), "
                                    f"or leave it out with --drop centre to take it from {column!r}.")
            if column not in df.columns:
                raise ManifestError(f"Manifest {path} has no column {column!r} to take the centre from; name its centre with --centre NAME.")
            centre = df[column].map(lambda v: None if pd.isna(v) else str(v).strip())
            bad = centre.map(lambda v: v is None or not CENTRE_ID.fullmatch(v))
            if bad.any():
                i = df.index[bad][0]
                raise ManifestError(f"{path}, row {i + 2}, column {column!r}: value {df.at[i, column]!r} is not a centre id (letters, digits, "
                                    "'.', '_', '-'; starting with a letter or digit). Clean the column, or name the centre with --centre NAME.")
        for c in pd.unique(centre):
            if c in source_of_centre and source_of_centre[c] != path:
                raise ManifestError(f"Centre {c!r} is in both {source_of_centre[c]} and {path}; a centre is one source of patients. "
                                    "Give one of them another name.")
            source_of_centre[c] = path
        if "patient_id" in df.columns:
            known = df["patient_id"].notna()
            per_patient = centre[known].groupby(df.loc[known, "patient_id"]).unique()
            straddle = per_patient[per_patient.map(len) > 1]
            if len(straddle):
                raise ManifestError(f"Manifest {path}: patient {straddle.index[0]!r} has images at centres {sorted(straddle.iloc[0])}; "
                                    "a patient belongs to one centre, so that a held-out centre holds all of its patients. Fix the centre or the patient_id.")
            df["patient_id"] = [None if pd.isna(p) else p if p.startswith(f"{c}{PATIENT_SEP}") else f"{c}{PATIENT_SEP}{p}"
                                for p, c in zip(df["patient_id"], centre)]
        df["centre"] = centre.to_numpy()
        if prefix_case_ids:
            df["case_id"] = [f"{c}_{cid}" for c, cid in zip(centre, df["case_id"])]
        df.attrs = {}
        frames.append((path, df))

    seen: dict[str, Path] = {}
    for path, df in frames:
        for cid in df["case_id"]:
            if cid in seen:
                raise ManifestError(f"case_id {cid!r} is in both {seen[cid]} and {path}. Rename it in one, "
                                    "or prefix every case id with its centre (--prefix-case-ids).")
        seen.update(dict.fromkeys(df["case_id"], path))

    order = [*REQUIRED]
    for _, df in frames:
        order += [c for c in df.columns if c not in order]
    has = {c: [(p, df) for p, df in frames if c in df.columns] for c in order}
    if 0 < len(has.get("split", [])) < n:
        without = next(p for p, df in frames if "split" not in df.columns)
        raise ManifestError(f"Column 'split' is in {has['split'][0][0]} but not in {without}; a split must cover every row. "
                            "Leave it out with --drop split and split the combined manifest (srnomogram cohort split).")
    integer = []
    for c, where in has.items():
        if c in _OWN or c.startswith(("image", "mask")):  # the path columns, as manifest.path_columns
            continue
        kinds = {p: _kind(df[c]) for p, df in where}
        number = next((p for p, k in kinds.items() if k == "number"), None)
        text = next((p for p, k in kinds.items() if k == "text"), None)
        if number is not None and text is not None:
            df = dict(where)[text]
            i, v = _first_text(df[c])
            raise ManifestError(f"Column {c!r} holds numbers in {number} but text in {text} (row {i + 2}: {v!r}). "
                                f"Recode or rename it in one manifest, or leave it out with --drop {c}.")
        if all(pd.api.types.is_integer_dtype(df[c]) or kinds[p] == "empty" for p, df in where) and number is not None:
            integer.append(c)

    out = pd.concat([df for _, df in frames], ignore_index=True, sort=False)
    first = ["case_id", "image", "mask", "label", *(["patient_id"] if "patient_id" in out.columns else []), "centre"]
    out = out[first + [c for c in order if c not in first]]
    for c in integer:
        out[c] = out[c].astype("Int64")
    if "spacing" in out.columns:
        known = out["spacing"].notna()
        if known.any() and not known.all():
            by = out.groupby("centre")["spacing"].apply(lambda s: s.notna().all())
            log.warning("spacing is known for %d rows (centres %s) and unknown for %d (centres %s): shape features will be in mm for some "
                        "rows and in pixels for others", int(known.sum()), sorted(by.index[by]), int((~known).sum()), sorted(by.index[~by]))
    written = write_manifest(out, output)
    log.info("combined %d manifest(s) into %s: %d lesions, %d centre(s) %s", n, written, len(out), out["centre"].nunique(),
             out["centre"].value_counts(sort=False).to_dict())
    return written
