"""The ``split`` stage: the checked cohort with its train/test split and cross-fitting folds; in apply mode,
the new cohort loaded and checked, with the places it leaves the training ranges."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ...errors import InputError, ManifestError
from ..cache import record

logger = logging.getLogger(__name__)


def run_split(ctx):
    """Validate the cohort, check the clinical columns, assign train/test (8:2 stratified), by patient
    when the manifest has ``patient_id`` (split and cross-fitting folds alike)."""
    from ...data import check_clinical, stratified_split
    from ...data.manifest import load_manifest, patient_ids, write_manifest
    from ...data.split import check_centres
    from ...validation import training_folds

    cfg = ctx.config
    df = load_manifest(cfg.cohort.manifest)
    if cfg.cohort.centre is not None:  # before the clinical check drops rows: its messages name the CSV's rows
        df[cfg.cohort.centre] = check_centres(df, cfg.cohort.centre, source=cfg.cohort.manifest,
                                              by_centre=cfg.split.method == "centre").to_numpy()
    df, excluded = check_clinical(df, cfg.cohort.schema, source=cfg.cohort.manifest)
    if "split" in df.columns and cfg.split.use_manifest_split and df["split"].notna().all():
        source = "manifest"
    else:
        df["split"] = stratified_split(df, test_size=cfg.split.test_size, seed=cfg.split_seed).to_numpy()
        by = "patient" if "patient_id" in df.columns else "lesion"
        source = f"stratified hash split by {by}, test_size={cfg.split.test_size}, seed={cfg.split_seed}"
    for s in ("train", "test"):
        part = df[df["split"] == s]
        if part["label"].nunique() < 2:
            raise InputError(f"The {s} set has only one class; a study needs benign and malignant lesions in both.")
    cfg.cohort.schema.check_levels_present(  # before rms::lrm stops on a level it cannot estimate
        df[df["split"] == "train"], where="the training set" + ("" if source == "manifest" else f" of split seed {cfg.split_seed}"))
    pid = patient_ids(df)
    sides = df.groupby(pid.to_numpy())["split"].nunique()
    straddle = sides.index[sides > 1]
    if len(straddle):  # only a split given in the manifest can do this
        logger.warning("%d patient(s) have lesions in both the train and test sets of the manifest's split (e.g. %r); "
                       "their test lesions are not independent of training.", len(straddle), straddle[0])
    write_manifest(df, ctx.path("cohort.csv"))
    ctx.write_table("folds", training_folds(df, n_splits=cfg.validation.folds, seed=cfg.study.seed))
    ctx.write_table("excluded", excluded)
    # lesions (n) and patients per split and label; a patient counts under each label they have
    counts = df.assign(patient=pid).groupby(["split", "label"]).agg(n=("case_id", "size"), patients=("patient", "nunique")).reset_index()
    ctx.write_table("split_counts", counts)
    ctx.write_json("split_info", {"source": source, "n": len(df), "n_patients": int(pid.nunique()),
                                  "unit": "patient" if "patient_id" in df.columns else "lesion",
                                  "n_patients_both_sides": len(straddle), "n_excluded": len(excluded),
                                  **({"n_centres": int(df[cfg.cohort.centre].nunique())} if cfg.cohort.centre else {})})


def _cohort_pin(result) -> pd.DataFrame:
    return pd.read_csv(result.file("cohort.csv"), dtype={"case_id": str})


SPACING_TOLERANCE = 0.25  # relative: warn when external spacing leaves the training range by more
SIZE_TOLERANCE = 0.5  # relative, for image width/height


def load_apply_cohort(path, need_label: bool, clinical=()) -> pd.DataFrame:
    """A cohort to apply a finished study to, read by the study's loader and checked by its clinical check.

    :func:`~srnomogram.data.manifest.load_manifest` with ``require_label=False`` (``label`` is
    needed only to validate: ``need_label``), and :func:`~srnomogram.data.check.check_clinical` on
    the study's ``clinical`` factors the manifest has: a value that is not a number is refused with its
    row and column, as ``srnomogram run`` refuses it. A factor the manifest lacks, or leaves empty, is
    no error: the clinical model and the nomogram are then skipped (:func:`apply_nomogram`). SR
    columns are dropped: the study makes its own SR images.

    ``clinical``: the study's :class:`~srnomogram.data.clinical.ClinicalSchema`, or its factors'
    names (numeric). Its cells get the schema's own check (:meth:`ClinicalSchema.check
    <srnomogram.data.clinical.ClinicalSchema.check>`, as ``check_clinical`` does at study time): a
    value that is not a number, or a level the study did not declare, is refused with its row and
    column rather than silently becoming missing.
    """
    from ...data.clinical import ClinicalSchema
    from ...data.manifest import load_manifest

    df = load_manifest(path, require_label=False, check_files=False)
    has_label = "label" in df.columns and df["label"].notna().all()
    if need_label and not has_label:  # said before any missing file: the wrong command is the first thing to fix
        raise ManifestError(f"{path}: no 'label' column (or empty labels), so there is nothing to validate against; "
                            "score unlabelled lesions with 'srnomogram predict STUDY_DIR MANIFEST -o scores.csv'.")
    df = load_manifest(path, require_label=False)
    df = df.drop(columns=[c for c in ("image_sr", "mask_sr") if c in df.columns] + ([] if has_label or "label" not in df.columns else ["label"]))
    schema = ClinicalSchema.parse(clinical)
    present = ClinicalSchema(f for f in schema if f.name in df.columns)
    if present:  # every row kept: numbers as numbers, categories among the study's levels (else an error)
        df = present.check(df, source=str(path), setting="the study's cohort.clinical")
    return df


def _apply_manifest_inputs(run, results):
    """Hashes of the new cohort's manifest and of every image and mask it names."""
    from ...data.manifest import manifest_hashes

    return manifest_hashes(run.manifest, load_apply_cohort(run.manifest, run.need_label))


def apply_split(ctx):
    """Apply mode of ``split``: load and check the new cohort (no split: every lesion is scored), and
    warn where its clinical values and images leave the training ranges (:func:`range_warnings`)."""
    from ...data.manifest import write_manifest

    run = ctx.config
    factors = run.study.app["clinical_factors"]
    df = load_apply_cohort(run.manifest, run.need_label, clinical=run.study.clinical)
    write_manifest(df, ctx.path("cohort.csv"))
    overlap = cohort_overlap(run.study, df, run.manifest.name)
    warns = range_warnings(run.study.summary, df, factors)
    if overlap.get("message"):  # first: the cohort itself is not external
        logger.warning("%s", overlap["message"])
        warns = pd.concat([pd.DataFrame([{"kind": "overlap", "column": "case_id, image", "n_outside": overlap["n"],
                                          "training_range": "", "external_range": "", "message": overlap["message"]}]),
                           warns], ignore_index=True)
    ctx.write_table("warnings", warns)
    ctx.write_json("cohort_info", {"n": int(len(df)), "missing_clinical": [c for c in factors if c not in df.columns],
                                   "has_label": "label" in df.columns, "has_patient_id": "patient_id" in df.columns,
                                   "overlap": overlap})


def cohort_overlap(study, df: pd.DataFrame, name: str = "the cohort") -> dict:
    """Lesions of ``df`` that may be the study's own: an image file with the same bytes (SHA-256), or the same
    ``case_id``, as a lesion of the study's cohort (``stages/split/cohort.csv``: its training and test sets).

    An identical image is the study's own lesion; a shared ``case_id`` with a different image may be the
    same lesion re-exported, or two cohorts that number their cases alike (``demo001``, ``case001``): both
    are reported, in separate sentences. Masks are not compared (a drawn rectangle can repeat in unrelated
    cohorts); a study image that is no longer where the study read it is skipped (``n_study_images``:
    those compared).

    Returns
    -------
    dict
        ``checked`` (False when the study has no readable cohort), ``n`` (lesions of ``df`` that overlap either
        way), ``n_image`` (an identical image), ``n_case_id_only`` (a shared case_id, a different image),
        ``n_train`` (of the ``n``, those matching the study's training set), ``examples`` (up to 3 case ids of
        ``df``), ``n_study_images``, and ``message`` (None when nothing overlaps).
    """
    from ...data.manifest import load_manifest
    from ...utils import file_sha256

    path = study.path / "stages" / "split" / "cohort.csv"
    try:
        own = load_manifest(path, require_label=False, check_files=False)
    except (OSError, InputError) as exc:
        logger.warning("The study's cohort %s cannot be read (%s): the overlap of %s with it is not checked.", path, exc, name)
        return {"checked": False, "message": None}

    def hashes(paths) -> list:
        out = []
        for p in paths:
            try:
                out.append(file_sha256(p))
            except OSError:  # a study image moved since: not compared
                out.append(None)
        return out

    own_ids = own["case_id"].astype(str).to_numpy()
    own_hash = np.array(hashes(own["image"]), dtype=object)
    train = own["split"].eq("train").to_numpy() if "split" in own.columns else np.ones(len(own), bool)
    ids = df["case_id"].astype(str).to_numpy()
    new_hash = hashes(df["image"])
    known = {h for h in own_hash if h is not None}
    by_image = np.array([h in known for h in new_hash], dtype=bool)
    by_id = np.isin(ids, own_ids)
    both = by_image | by_id
    train_known = {h for h in own_hash[train] if h is not None}
    in_train = both & (np.isin(ids, own_ids[train]) | np.array([h in train_known for h in new_hash], dtype=bool))
    id_only = by_id & ~by_image
    info = {"checked": True, "n": int(both.sum()), "n_image": int(by_image.sum()), "n_case_id_only": int(id_only.sum()),
            "n_train": int(in_train.sum()), "examples": ids[both][:3].tolist(), "n_study_images": len(known), "message": None}
    parts = []

    def eg(mask):
        return ", ".join(map(repr, ids[mask][:3].tolist()))

    if by_image.any():
        parts.append(f"{int(by_image.sum())} of the {len(df)} lesions of {name} have an image file identical to one of the "
                     f"study's own cohort ({int((by_image & in_train).sum())} of its training set; e.g. {eg(by_image)}): "
                     "they are the study's own lesions, and their results are not an external validation.")
    if id_only.any():
        parts.append(f"{int(id_only.sum())} of the {len(df)} lesions of {name} share a case_id with a lesion of the study's "
                     f"own cohort ({int((id_only & in_train).sum())} of its training set; e.g. {eg(id_only)}) but not its "
                     "image file: if they are the same lesions (images saved again), their results are not an external "
                     "validation; if not, the two cohorts only number their cases alike.")
    if parts:
        info["message"] = " ".join(parts)
    return info


def range_warnings(summary, df, factors) -> pd.DataFrame:
    """Where a new cohort leaves the training ranges of ``training_summary.json``: clinical values,
    pixel spacing (and its presence), image width and height; one row (and one logged warning) each."""
    from ...data.readers import is_2d_path
    from ..freeze import image_geometry

    rows = []

    def add(kind, column, n_out, train_range, ext_range, message):
        rows.append({"kind": kind, "column": column, "n_outside": int(n_out), "training_range": train_range,
                     "external_range": ext_range, "message": message})

    for c in factors:
        s = summary["clinical"].get(c, {})
        if c not in df.columns or not s.get("n") or "counts" in s:  # a categorical factor's levels were checked on reading
            continue
        v = df[c].to_numpy(dtype=float)
        out = (v < s["min"]) | (v > s["max"])
        if out.any():
            add("clinical", c, out.sum(), f"{s['min']:g} to {s['max']:g}", f"{np.nanmin(v):g} to {np.nanmax(v):g}",
                f"{int(out.sum())} lesion(s) have {c} outside the training range {s['min']:g} to {s['max']:g}; "
                "the nomogram extrapolates there.")
    # A 2D image's spacing is its manifest cell: empty means features per pixel. Mixed with a study
    # trained in mm (or the reverse) every shape and texture feature changes scale.
    is_2d = df["image"].map(is_2d_path).to_numpy(dtype=bool)
    sp = pd.to_numeric(df["spacing"], errors="coerce") if "spacing" in df.columns else pd.Series(np.nan, index=df.index)
    known = sp.notna().to_numpy()
    s = summary.get("spacing", {})
    if s.get("n") and (is_2d & ~known).any():
        n = int((is_2d & ~known).sum())
        add("image", "spacing", n, f"{s['min']:g} to {s['max']:g}", "empty",
            f"{n} image(s) have no pixel spacing (empty 'spacing' cell) but the study's training images had {s['min']:g} to "
            f"{s['max']:g} mm per pixel: their features are per pixel, not per mm, and the radiomics models' scores shift. "
            "Fill in the spacing.")
    elif not s.get("n") and (is_2d & known).any():
        n = int((is_2d & known).sum())
        add("image", "spacing", n, "none (per pixel)", f"{sp[known].min():g} to {sp[known].max():g}",
            f"{n} image(s) have a pixel spacing but the study's training images had no pixel spacing: their features are per mm, "
            "not per pixel as the study's, and the radiomics models' scores shift. Leave the 'spacing' cells empty, as the study did.")
    geo = image_geometry(df)
    for col, tol, what in (("spacing", SPACING_TOLERANCE, "pixel spacing (mm)"), ("width", SIZE_TOLERANCE, "image width (px)"),
                           ("height", SIZE_TOLERANCE, "image height (px)")):
        s = summary.get(col, {})
        v = geo[col].to_numpy(dtype=float)
        if not s.get("n") or not np.isfinite(v).any():
            continue
        lo, hi = s["min"] / (1 + tol), s["max"] * (1 + tol)
        out = np.isfinite(v) & ((v < lo) | (v > hi))
        if out.any():
            add("image", col, out.sum(), f"{s['min']:g} to {s['max']:g}", f"{np.nanmin(v):g} to {np.nanmax(v):g}",
                f"{int(out.sum())} image(s) have a {what} more than {tol:.0%} outside the training range "
                f"{s['min']:g} to {s['max']:g}; features and CNN inputs may shift.")
    for r in rows:
        logger.warning("%s", r["message"])
    return pd.DataFrame(rows, columns=["kind", "column", "n_outside", "training_range", "external_range", "message"])


# its warnings reach the board through the nomogram's apply half, with the score shifts
APPLY_SPLIT_PINS = (record("cohort_info", "The applied cohort: lesions, missing clinical columns (JSON)"),)
