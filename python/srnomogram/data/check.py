"""Check a whole cohort: every image and mask readable, matching and non-empty."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ..errors import InputError
from .manifest import load_manifest, mask_paths, path_columns
from .readers import read_case


def check_cohort(manifest: str | os.PathLike | pd.DataFrame, image_col: str = "image", mask_col: str = "mask", progress: bool | None = None) -> dict:
    """Load a manifest and read every case with :func:`~srnomogram.data.readers.read_case`.

    Parameters
    ----------
    manifest : path-like or pandas.DataFrame
        A manifest CSV, or a DataFrame returned by :func:`~srnomogram.data.manifest.load_manifest`.
    image_col, mask_col : str
        The image and mask columns to check (e.g. ``image_sr``/``mask_sr``).
    progress : bool or None
        Show a progress bar (None: only on a terminal).

    Returns
    -------
    dict
        ``n`` (lesions), ``by_label`` ({0: n_benign, 1: n_malignant}), ``by_split``
        ({"train": ..., "test": ...} or {} without a split) and ``dims`` (set of image dimensions).

    Raises
    ------
    InputError
        The first bad case, naming the manifest, its row (header = row 1) and the remedy.
    """
    from tqdm.auto import tqdm

    df = load_manifest(manifest) if not isinstance(manifest, pd.DataFrame) else manifest
    source = df.attrs.get("manifest_path") or "manifest"
    for col in (image_col, mask_col):
        if col not in df.columns:
            raise InputError(f"{source}: column {col!r} not found; columns with paths are {path_columns(df)}.")
    dims = set()
    for i, row in tqdm(df.iterrows(), total=len(df), desc="checking cases", unit="case", disable=None if progress is None else not progress):
        spacing = row.get("spacing")
        spacing = None if spacing is None or pd.isna(spacing) else float(spacing)
        try:
            image, _ = read_case(row[image_col], mask_paths(row[mask_col]), spacing, case_id=row["case_id"])
        except InputError as exc:
            raise InputError(f"{Path(source).name}, row {i + 2}: {exc}") from None
        dims.add(image.GetDimension())
    by_split = df["split"].value_counts().to_dict() if "split" in df.columns else {}
    return dict(n=len(df), by_label={int(k): int(v) for k, v in df["label"].value_counts().sort_index().items()}, by_split={str(k): int(v) for k, v in by_split.items()}, dims=dims)


def check_clinical(df: pd.DataFrame, columns, source="manifest", setting: str = "cohort.clinical",
                   require_rows: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check the clinical-factor columns of a manifest; keep the lesions with every factor known.

    The one check of clinical values: ``srnomogram run`` (the study's split stage) and
    ``srnomogram validate``/``predict`` (the external cohort, on the factors it has) both call it,
    so a cell the study refuses is refused on an external cohort too.

    Parameters
    ----------
    df : pandas.DataFrame
        The manifest (one row per lesion, header = row 1 of ``source``).
    columns : ClinicalSchema or sequence
        The clinical factors: a :class:`~srnomogram.data.clinical.ClinicalSchema`, or names
        (numeric factors, e.g. ``age``, ``max_diameter_cm``) and ``cohort.clinical`` mappings.
    source : str or path-like
        The manifest's file, named in errors.
    setting : str
        The setting that names ``columns``, named in errors.
    require_rows : bool
        Refuse a manifest where no lesion has every factor (the study needs some); an external
        cohort passes False and then has no clinical model or nomogram.

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame)
        The lesions with every factor known (numeric factors as numbers, categorical ones as pandas
        categoricals with the declared levels, reference first; index reset) and the excluded ones
        (``case_id``, ``label``, ``reason``).

    Raises
    ------
    ConfigError
        A column the manifest lacks.
    InputError
        A cell that is neither empty nor a number (numeric factor) or not one of the declared levels
        (categorical factor), naming the row, column, value and what is allowed; with
        ``require_rows``, no lesion left (names the empty cells per column).
    """
    from ..errors import ConfigError
    from .clinical import ClinicalSchema

    schema = ClinicalSchema.parse(columns)
    columns = schema.names
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ConfigError(
            f"{setting} names column {missing[0]!r}, which the manifest {source} lacks; "
            f"its columns are: {', '.join(df.columns)}."
        )
    df = schema.check(df, source=source, setting=setting)
    incomplete = df[columns].isna().any(axis=1)
    if require_rows and len(df) and incomplete.all():
        empty = ", ".join(f"{c!r} empty in {n} row{'s' if n != 1 else ''}" for c, n in df[columns].isna().sum().items() if n)
        raise InputError(
            f"{source}: 0 of {len(df)} lesions are left after excluding those with a missing clinical value "
            f"({setting}: {empty}); fill in the values or remove the factor from {setting}."
        )
    excluded = df.loc[incomplete, [c for c in ("case_id", "label") if c in df.columns]].assign(reason="missing clinical value")
    return df.loc[~incomplete].reset_index(drop=True), excluded
