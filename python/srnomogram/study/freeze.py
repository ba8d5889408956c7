"""Freezing a study: what applying it later needs, written at study time.

The nomogram stage writes ``nomogram_design.json`` (coefficients, terms, points axes: Python and
the calculator need no R) and the rms fits (``*.rds``, for R users) through
:func:`save_nomogram_fits`; the ``application`` stage (:func:`application_stage`, after every other
stage) writes ``application.json`` (the models and their files, the training Youden cut-offs exactly
as Table 2 computed them, the nomogram stage's cut-offs, SR, ROI and PyRadiomics settings) and
``training_summary.json`` (ranges of the clinical factors, image spacing and size, score
distributions) for out-of-range warnings. :mod:`srnomogram.study.external` reads them back.

This module sits below :mod:`srnomogram.study.stages` (which uses it) and above
:mod:`srnomogram.study.cache`; it imports no other study module.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from .. import names
from ..errors import InputError
from .cache import Stage

logger = logging.getLogger(__name__)

__all__ = ["APP_FORMAT", "save_nomogram_fits", "application_stage", "run_application", "calculator_spec",
           "load_cohort", "sr_region", "nomogram_predict"]

APP_FORMAT = "srnomogram.application/1"
EXTRA_LABELS = names.labels(("clinical", "nomogram"))


# ------------------------------------------------------------------- shared with the stages
def load_cohort(result, clinical=None) -> pd.DataFrame:
    """The cohort table a stage wrote (manifest with split), paths absolute; with ``clinical`` (a
    :class:`~srnomogram.data.clinical.ClinicalSchema`) its factors typed: categorical ones as pandas
    categoricals with the declared levels, reference first, which the rpy2 bridge passes as R factors."""
    from ..data.manifest import load_manifest

    df = load_manifest(result.file("cohort.csv"))
    return df if clinical is None else clinical.to_frame(df)


def sr_region(cfg) -> tuple[str, float]:
    """``(region, roi_margin)`` of the SR stage: ``sr.region``, with the CNNs' ROI margin; "image"
    when the radiomics parameters read beyond the lesion box, where ROI-only SR would change features."""
    from ..deep.model import DeepClassifier

    margin = float(dict(cfg.deep.params or {}).get("margin", DeepClassifier().margin))
    region = getattr(cfg.sr, "region", "roi")
    if region == "roi" and cfg.radiomics.enabled:
        from ..radiomics.extraction import reads_only_lesion_box

        if not reads_only_lesion_box(cfg.radiomics.params):
            region = "image"
    return region, margin


# ----------------------------------------------------------------------------- design file
def calculator_spec(points: pd.DataFrame, labels: dict | None = None) -> dict:
    """The numbers the calculator needs, from R's ``nomogram_points_table``.

    Risk comes from the fitted logistic model (intercept + Σ coef·x, then the logistic function), so
    it equals R's ``predict()``. A numeric predictor's points are the nomogram's own scale,
    interpolated linearly between its tick marks (exact for linear terms). A categorical predictor
    (a factor, whose rms terms are ``name=level``) has one coefficient and one points value per level,
    in R's level order (reference first, coefficient 0): ``levels``, ``coef`` and ``points`` are lists
    of the same length.
    """
    labels = labels or {}
    sc = points[points["axis"] == "scaling"].set_index("variable")["value"].astype(float)
    preds = []
    for var, part in points[points["axis"] == "predictor"].groupby("variable", sort=False):
        label = labels.get(var, var)
        if f"coef:{var}" not in sc.index:  # a factor: rms names its terms name=level
            from ..data.clinical import level_text

            levels = [level_text(v) for v in part["value"]]  # a CSV round trip may read levels 3, 4 as 3.0, 4.0
            preds.append({
                "name": var, "label": label, "type": "categorical", "levels": levels, "reference": next(
                    (lv for lv in levels if f"coef:{var}={lv}" not in sc.index), levels[0]),
                "coef": [float(sc.get(f"coef:{var}={lv}", 0.0)) for lv in levels],
                "points": part["points"].astype(float).tolist(),
            })
            continue
        xs = part["value"].astype(float).to_numpy()
        ps = part["points"].astype(float).to_numpy()
        o = np.argsort(xs)
        preds.append({
            "name": var,
            "label": label,
            "type": "numeric",
            "coef": float(sc[f"coef:{var}"]),
            "x": xs[o].tolist(),
            "points": ps[o].tolist(),
        })
    return {"intercept": float(sc["coef:Intercept"]), "predictors": preds}


def predictor_terms(p: dict) -> list[str]:
    """The rms terms of one design predictor: its name, or ``name=level`` for each non-reference level."""
    if p.get("type") != "categorical":
        return [p["name"]]
    return [f"{p['name']}={lv}" for lv in p["levels"] if lv != p["reference"]]


# ----------------------------------------------------------------- Python prediction
def _interp(xs, ps, x):
    """Linear interpolation with linear extrapolation past the ends, as the calculator's ``interp``."""
    xs, ps, x = np.asarray(xs, float), np.asarray(ps, float), np.asarray(x, float)
    if len(xs) == 1:
        return np.full_like(x, ps[0])
    i = np.clip(np.searchsorted(xs, x, side="left") - 1, 0, len(xs) - 2)
    t = (x - xs[i]) / (xs[i + 1] - xs[i])
    return ps[i] + t * (ps[i + 1] - ps[i])


def level_values(p: dict, data: pd.DataFrame) -> pd.Series:
    """The levels (as text) of a design's categorical predictor ``p`` in ``data``; InputError naming the
    column for a value that is not one of its levels."""
    from ..data.clinical import level_text

    text = data[p["name"]].map(level_text)
    unknown = text.notna() & ~text.isin(p["levels"])
    if unknown.any():
        raise InputError(f"Column {p['name']!r}: {text[unknown].iloc[0]!r} is not a level of the study's categorical "
                         f"factor; allowed: {', '.join(p['levels'])}.")
    return text


def nomogram_predict(design: dict, data: pd.DataFrame) -> pd.DataFrame:
    """Risk and points of a saved clinical model or nomogram (``nomogram_design.json`` entry), no R.

    A numeric term adds ``coef * x`` and its points interpolated on its axis; a categorical term
    adds the coefficient and the points of the lesion's level (the reference level's coefficient is
    0), which is how ``rms::predict.lrm`` evaluates a factor.

    Returns
    -------
    pandas.DataFrame
        ``risk`` (``plogis(intercept + sum(coef * x))``), ``points`` (total points on the
        nomogram's scale) and one ``points_<term>`` column per term; NaN where a value is missing.

    Raises
    ------
    InputError
        A categorical value that is not one of the design's levels (external cohorts are checked
        against the study's levels before this, with their file and row).
    """
    lp = np.full(len(data), float(design["intercept"]))
    out = pd.DataFrame(index=data.index)
    total = np.zeros(len(data))
    for p in design["predictors"]:
        if p.get("type") == "categorical":
            text = level_values(p, data)
            idx = text.map({lv: i for i, lv in enumerate(p["levels"])}).to_numpy(dtype=float)
            known = np.isfinite(idx)
            coef, pts = np.full(len(data), np.nan), np.full(len(data), np.nan)
            coef[known] = np.asarray(p["coef"], float)[idx[known].astype(int)]
            pts[known] = np.asarray(p["points"], float)[idx[known].astype(int)]
            lp = lp + coef
        else:
            x = pd.to_numeric(data[p["name"]], errors="coerce").to_numpy(dtype=float)
            lp = lp + p["coef"] * x
            pts = _interp(p["x"], p["points"], x)
        out[f"points_{p['name']}"] = pts
        total = total + pts
    out.insert(0, "points", total)
    out.insert(0, "risk", 1.0 / (1.0 + np.exp(-lp)))
    return out


# ------------------------------------------------------------------------- the freezing
def save_nomogram_fits(ctx, fits: dict, train: pd.DataFrame, clinical=None) -> None:
    """Write ``nomogram_design.json`` (coefficients, terms, points axes) and ``<name>.rds`` per fit.

    The design is R's own ``nomogram_points_table`` reduced to what a prediction needs
    (:func:`calculator_spec`): the intercept, each term's coefficient and
    its points axis. The models are linear in their terms (no splines or transforms), so
    ``risk = plogis(intercept + sum(coef * x))`` equals ``predict(fit)``; a categorical factor has
    one coefficient (its rms term ``name=level``; 0 for the reference) and one points value per level.
    ``clinical`` (the study's :class:`~srnomogram.data.clinical.ClinicalSchema`) adds each factor's
    declaration and training range (numeric) or level counts (categorical) as ``clinical_factors``.
    """
    from .. import stats

    design = {}
    for name, fit in fits.items():
        points = stats.nomogram_points(fit)
        spec = calculator_spec(points)
        coef = fit.summary()
        b = {str(t): float(c) for t, c in zip(coef["term"], coef["coef"])}
        for p in spec["predictors"]:  # full precision (the points table holds 15 significant digits)
            if p["type"] == "categorical":
                p["coef"] = [0.0 if lv == p["reference"] else b[f"{p['name']}={lv}"] for lv in p["levels"]]
            else:
                p["coef"] = b[p["name"]]
        design[name] = {
            "formula": stats.model_formula(fit),
            "terms": [t for p in spec["predictors"] for t in predictor_terms(p)],
            "transforms": "none (every term enters linearly)",
            "coefficients": b,
            "intercept": b["Intercept"],
            "predictors": spec["predictors"],
            "n_train": int(len(train)),
        }
        if clinical is not None:
            design[name]["clinical_factors"] = [
                {**f.to_dict(), "training": describe_factor(f, train[f.name])} for f in clinical if f.name in spec_names(spec)]
        stats.call("saveRDS", fit, file=str(ctx.path(f"{name}.rds")), _namespace="base")
    ctx.write_json("nomogram_design", design)


def application_stage(stages) -> Stage:
    """The ``application`` stage, after every other stage of the study."""
    # version 2: clinical_schema (the factors' types and levels) and level counts of categorical factors
    return Stage("application", run_application, deps=tuple(s.name for s in stages), version="2",
                 sections=("cohort", "sr", "radiomics", "deep", "nomogram"))


def image_geometry(cohort: pd.DataFrame, col: str = "image") -> pd.DataFrame:
    """Per row: in-plane spacing (mm, mean of x and y) and width/height in pixels, from the headers."""
    import SimpleITK as sitk

    from ..data.readers import is_2d_path

    rows = []
    for r in cohort.itertuples():
        path = getattr(r, col)
        w = h = sp = np.nan
        try:
            if is_2d_path(path):
                from PIL import Image

                with Image.open(path) as im:
                    w, h = im.size
                s = getattr(r, "spacing", np.nan)
                sp = float(s) if s is not None and str(s) not in ("", "nan") else np.nan
            else:
                reader = sitk.ImageFileReader()
                reader.SetFileName(str(path))
                reader.ReadImageInformation()
                w, h = reader.GetSize()[:2]
                sp = float(np.mean(reader.GetSpacing()[:2]))
        except Exception as exc:  # noqa: BLE001 - geometry only feeds warnings
            logger.debug("geometry of %s unreadable: %s", path, exc)
        rows.append({"case_id": r.case_id, "spacing": sp, "width": w, "height": h})
    return pd.DataFrame(rows)


def spec_names(spec: dict) -> list[str]:
    return [p["name"] for p in spec["predictors"]]


def describe_factor(factor, values) -> dict:
    """A factor's training summary: :func:`describe` of a numeric one; ``n`` and ``counts`` per level of a
    categorical one (levels in declared order)."""
    if not factor.categorical:
        return describe(values)
    from ..data.clinical import level_text

    text = pd.Series(values).map(level_text).dropna()
    return {"n": int(len(text)), "counts": {lv: int((text == lv).sum()) for lv in factor.levels}}


def describe(values) -> dict:
    """``n``, range, 5/25/50/75/95 % quantiles, mean and SD of the numeric values (non-numbers dropped)."""
    v = pd.to_numeric(pd.Series(values), errors="coerce").dropna().to_numpy(dtype=float)
    if not len(v):
        return {"n": 0}
    q = np.quantile(v, [0.05, 0.25, 0.5, 0.75, 0.95])
    return {"n": int(len(v)), "min": float(v.min()), "q05": float(q[0]), "q25": float(q[1]), "median": float(q[2]),
            "q75": float(q[3]), "q95": float(q[4]), "max": float(v.max()), "mean": float(v.mean()),
            "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0}


def run_application(ctx):
    """Freeze what applying the study needs: models, cut-offs, settings, training summary."""
    cfg = ctx.config
    inputs = ctx.inputs
    cohort = load_cohort(inputs["split"])
    train = cohort[cohort["split"] == "train"]
    t2 = inputs["table2"].table("table2")
    # Table 2's training cut-offs: Youden on the cross-fitted (out-of-fold) scores where the model has them
    t2train = t2[t2["set"] == "train"]
    cut = {r.model: float(r.threshold) for r in t2train.itertuples()}
    cut_from = dict(zip(t2train["model"], t2train["threshold_from"])) if "threshold_from" in t2train else {}
    models = {}
    if "radiomics_models" in inputs:
        # the stage's frozen harmoniser (radiomics.harmonise), applied before each of its pipelines
        harm = {"harmoniser": "stages/radiomics_models/harmoniser.json"} if inputs["radiomics_models"].file("harmoniser.json").is_file() else {}
        for f in sorted((inputs["radiomics_models"].path / "model").glob("*.skops")):
            key = f.stem
            models[key] = {"kind": "radiomics", "images": names.parse_model_id(key)[0],
                           "file": f"stages/radiomics_models/model/{f.name}", **harm}
    for name in inputs:
        if name.startswith("deep_"):
            key = name[5:]
            meta = json.loads((inputs[name].path / "model" / "meta.json").read_text(encoding="utf-8"))
            models[key] = {"kind": "deep", "images": names.parse_model_id(key)[0], "file": f"stages/{name}/model",
                           "image_size": meta["params"].get("image_size"), "margin": meta["params"].get("margin"),
                           "roi_bounds": meta["params"].get("roi_bounds"), "roi": meta.get("roi", {})}
    for key, m in models.items():  # Table 2 is keyed by model id (its `model` column)
        m["label"] = names.label(key)
        if key not in cut:
            raise InputError(f"Table 2 has no training row for model {key!r}; rerun the study's table2 stage.")
        m["threshold"] = cut[key]
        m["threshold_from"] = f"Youden cut-off of the {cut_from.get(key, 'apparent')} training scores"
    # the nomogram stage's cut-offs: out-of-fold training risks (or nomogram.threshold, pre-specified)
    preds = inputs["nomogram"].table("predictions")
    ptrain = preds[preds["split"] == "train"]  # the training risks' range, for the summary below
    cuts = inputs["nomogram"].table("nomogram_thresholds").set_index("model")
    clinical = {}
    for name in ("clinical", "nomogram"):
        clinical[name] = {"label": EXTRA_LABELS[name], "file": f"stages/nomogram/{name}.rds",
                          "threshold": float(cuts.loc[name, "threshold"]),
                          "threshold_from": str(cuts.loc[name, "threshold_from"])}
    best = inputs["table2"].json("best_model")
    params_file = None
    if cfg.radiomics.enabled and cfg.radiomics.params:
        shutil.copyfile(cfg.radiomics.params, ctx.path("pyradiomics_params" + Path(cfg.radiomics.params).suffix))
        params_file = "stages/application/pyradiomics_params" + Path(cfg.radiomics.params).suffix
    app = {
        "format": APP_FORMAT,
        "study": cfg.study.name,
        "config_hash": cfg.config_hash,
        "models": models,
        "clinical_models": clinical,
        "clinical_factors": cfg.cohort.schema.names,
        "clinical_schema": cfg.cohort.schema.to_dicts(),
        "best_model": best,
        "thresholds": "image models: the training Youden cut-off of Table 2 (metrics.table2_rows), from the cross-fitted "
                      "(out-of-fold) training scores; clinical model and nomogram: the nomogram stage's cut-offs "
                      "(nomogram_thresholds: Youden of their out-of-fold training risks, or nomogram.threshold)",
        "sr": {"enabled": cfg.sr.enabled, "params": dict(cfg.sr.params or {}), "model": "stages/sr/model" if cfg.sr.enabled else None,
               **dict(zip(("region", "roi_margin"), sr_region(cfg)))},
        "radiomics": {"enabled": cfg.radiomics.enabled, "params_file": params_file,
                      "params_name": Path(cfg.radiomics.params).name if cfg.radiomics.params else None},
        "design": "stages/nomogram/nomogram_design.json",
        "hl_groups": cfg.nomogram.hl_groups,
        "dca_thresholds": list(cfg.nomogram.dca_thresholds),
        "alpha": cfg.nomogram.alpha,
        "bootstrap_seed": cfg.bootstrap_seed,
    }
    ctx.write_json("application", app)
    geo = image_geometry(train)
    scores = inputs["table2"].table("scores")
    strain = scores[scores["split"] == "train"]
    summary = {
        "n_train": int(len(train)),
        "clinical": {f.name: describe_factor(f, train[f.name]) for f in cfg.cohort.schema},
        "spacing": describe(geo["spacing"]),
        "width": describe(geo["width"]),
        "height": describe(geo["height"]),
        "scores": {m: describe(strain[m]) for m in models if m in strain.columns},
        "risks": {n: describe(ptrain[f"risk_{n}"]) for n in clinical},
    }
    ctx.write_json("training_summary", summary)
