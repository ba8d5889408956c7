"""The radiomics stages: ``radiomics_or`` and ``radiomics_sr`` (PyRadiomics features) and
``radiomics_models`` (LR and SVM on them); in apply mode, the same extraction and the fitted pipelines' scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ... import names
from ...errors import ConfigError, InputError
from ..cache import Pin
from ..freeze import load_cohort
from ._common import _applied_cohort, _write_timing


def _run_radiomics(ctx, images):
    cfg = ctx.config
    cohort = load_cohort(ctx.inputs["sr" if images == "sr" else "split"])
    _write_features(ctx, cohort, images, params=cfg.radiomics.params, jobs=cfg.radiomics.jobs,
                    cache=Path(cfg.study.output) / "cache" / f"radiomics_{images}", scheduler=cfg.study.scheduler)


def _write_features(ctx, cohort, images, params, jobs, cache, scheduler):
    """PyRadiomics features of ``cohort``'s ``images`` (``or``/``sr``), one row per lesion in its order:
    the one extraction wiring of the study (fit) and of ``validate``/``predict`` (apply)."""
    from ...radiomics import extract

    feats = extract(cohort, image_col=names.image_col(images), jobs=jobs, params=params, cache_dir=cache, scheduler=scheduler)
    feats = feats.reindex(cohort["case_id"].astype(str))
    feats.index.name = "case_id"
    ctx.write_table(f"radiomics_features_{images}", feats.reset_index())


def run_radiomics_or(ctx):
    """PyRadiomics features of the original images."""
    _run_radiomics(ctx, "or")


def run_radiomics_sr(ctx):
    """PyRadiomics features of the super-resolved images."""
    _run_radiomics(ctx, "sr")


def run_radiomics_models(ctx):
    """LR and SVM on OR and SR features (Mann–Whitney → z-score → |r| > 0.9 pruning), fitted on train.

    Writes the fitted models' scores (``radiomics_scores``) and the cross-fitted ones
    (``radiomics_scores_oof``: training rows out-of-fold over the study's folds, test rows as fitted),
    both from :func:`srnomogram.radiomics.fit_or_sr_models`, which ``srnomogram radiomics fit`` calls too.
    """
    from ...data.manifest import patient_ids
    from ...radiomics import fit_or_sr_models
    from ...radiomics.persist import save_model  # skops, hash-checked: what `validate` applies

    cfg = ctx.config
    cohort = load_cohort(ctx.inputs["split"])
    patients = patient_ids(cohort).set_axis(cohort["case_id"]) if "patient_id" in cohort.columns else None
    feats = {im: ctx.inputs[f"radiomics_{im}"].table(f"radiomics_features_{im}").set_index("case_id")
             for im in ("or", "sr") if f"radiomics_{im}" in ctx.inputs}
    if cfg.radiomics.harmonise != "none":
        feats = _harmonise_training(ctx, cohort, feats)
    cohort = cohort.set_index("case_id")
    res = fit_or_sr_models(cohort["label"], cohort["split"], feats["or"], feats.get("sr"), random_state=cfg.study.seed,
                           kinds=cfg.radiomics.models, folds=ctx.inputs["split"].table("folds"), groups=patients)
    for m, model in res["models"].items():
        save_model(model, ctx.path(f"model/{m}.skops"), res["features"][m], model=m, seed=cfg.study.seed)
    _write_timing(ctx, res["timing"])
    ctx.write_table("radiomics_scores", res["scores"])
    ctx.write_table("radiomics_scores_oof", res["scores_oof"])
    ctx.write_table("radiomics_selected", res["report"])


# ---------------------------------------------------------------------------- harmonisation across centres
#: The frozen harmoniser of ``radiomics_models`` (its own folder): what ``application.json`` lists beside the
#: fitted pipelines and what the apply half re-applies.
HARMONISER_FILE = "harmoniser.json"
HARMONISER_FORMAT = "srnomogram.harmoniser/1"
HARMONISE_NEEDS_CENTRE = ("radiomics.harmonise must be 'none' unless cohort.centre names the manifest's centre column "
                          "(harmonisation is by centre).")
HARMONISE_WORDS = {"centre": "each centre standardised by its own mean and SD (CentreStandardiser)",
                   "combat": "ComBat with parametric empirical Bayes (ComBat)"}


def _harmoniser_class(method):
    from ...radiomics.harmonise import CentreStandardiser, ComBat

    return {"centre": CentreStandardiser, "combat": ComBat}[method]


def _finite_columns(X: pd.DataFrame) -> list:
    """The columns finite for every row (the ones :func:`~srnomogram.radiomics.fit_or_sr_models` keeps)."""
    return [c for c, ok in zip(X.columns, np.isfinite(X.to_numpy(dtype=float)).all(axis=0)) if ok]


def harmonise_training(method: str, feats: dict, centre: pd.Series, train) -> tuple[dict, dict]:
    """Fit the harmoniser of each feature set on the training lesions alone and apply it to every lesion.

    Parameters
    ----------
    method : {"centre", "combat"}
        ``radiomics.harmonise``.
    feats : dict
        Image set (``or``/``sr``) -> features indexed by case_id.
    centre : pandas.Series
        Each lesion's centre (str), indexed by case_id: the cohort's lesions, in order.
    train : array of bool
        The training lesions (aligned with ``centre``). Only their features and centres are read to fit
        (never a label); a test lesion is transformed with its centre's training parameters and estimates
        nothing.

    Returns
    -------
    (dict, dict)
        The harmonised feature sets (every lesion of ``centre``; non-finite columns passed through, as the
        models leave them out) and the frozen state of each (``to_dict``).
    """
    cls = _harmoniser_class(method)
    train = np.asarray(train, dtype=bool)
    out, states = {}, {}
    for im, X in feats.items():
        X = X.loc[centre.index]
        cols = _finite_columns(X)
        est = cls().fit(X.loc[train, cols], centre=centre[train].to_numpy())
        unseen = sorted(set(centre[~train]) - set(est.training_centres_))
        if unseen:
            raise InputError(f"Centre {unseen[0]!r} has no training lesion, so its test lesions cannot be harmonised with "
                             "training parameters; merge it with another centre or leave it out of the cohort.")
        H = X.copy()
        H[cols] = est.transform(X[cols], centre=centre.to_numpy())
        out[im], states[im] = H, est.to_dict()
    return out, states


def _harmonise_training(ctx, cohort, feats):
    """``radiomics.harmonise`` in fit mode: :func:`harmonise_training` on the study's split, state frozen as
    ``harmoniser.json`` in this stage's folder."""
    from ...data.split import check_centres

    cfg = ctx.config
    col = cfg.cohort.centre
    if col is None:  # the config refuses it; a config built by dataclasses.replace is checked here
        raise ConfigError(HARMONISE_NEEDS_CENTRE)
    centre = check_centres(cohort, col, source=str(cfg.cohort.manifest)).set_axis(cohort["case_id"].astype(str))
    out, states = harmonise_training(cfg.radiomics.harmonise, feats, centre, (cohort["split"] == "train").to_numpy())
    ctx.write_json("harmoniser", {
        "format": HARMONISER_FORMAT, "method": cfg.radiomics.harmonise, "column": col, "images": states,
        "fitted_on": "the training lesions' features and centres (no label); test lesions use their centre's training "
                     "parameters"})
    return out


def _models_key(cfg, results):
    """``radiomics_models``' extra key: the seed and device; with harmonisation, the centre column too."""
    from ._common import _seed_key

    key = _seed_key(cfg, results)
    if cfg.radiomics.harmonise != "none":  # 'none' keeps the keys of studies without it
        key["centre"] = cfg.cohort.centre
    return key


def _reference_inputs(run, results) -> dict:
    """Apply-mode inputs of ``radiomics_models``: the reference manifest's hashes (and its images') when one is given."""
    ref = run.options.get("centre_reference")
    if ref is None:
        return {}
    from ...data.manifest import load_manifest, manifest_hashes

    return {"centre_reference": manifest_hashes(ref, load_manifest(ref, require_label=False))}


def _reference_features(ctx, run, images) -> tuple[pd.DataFrame, dict, pd.Series, str]:
    """The unlabelled reference sample of the new centres: ``(cohort, features per image set, centres, name)``.

    Default: the applied cohort itself (its features and centre column; its labels are never read).
    ``options["centre_reference"]``: another manifest, run through the study's own apply stages up to the
    features (split, SR, extraction) in ``OUT/centre_reference`` (cached as every applied stage)."""
    from ...data.split import check_centres

    col = run.cfg.cohort.centre
    ref = run.options.get("centre_reference")
    if ref is None:
        cohort = _applied_cohort(ctx.inputs["split"])
        feats = {im: ctx.inputs[f"radiomics_{im}"].table(f"radiomics_features_{im}").set_index("case_id") for im in images}
        name = Path(run.manifest).name
    else:
        import dataclasses

        from ..cache import Runner

        ref = Path(ref).resolve()
        # the same application run (its study and settings) on the reference manifest, in its own folder, through
        # the run's own applied stages up to the features (keyed by the study, need_label False)
        sub = dataclasses.replace(run, manifest=ref, out=run.out / "centre_reference", need_label=False,
                                  options={k: run.options.get(k) for k in ("jobs", "device", "scheduler")})
        wanted = {"split", "sr"} | {f"radiomics_{im}" for im in images}
        stages = [s for s in run.applied if s.name in wanted]
        res = Runner(sub, stages, root=sub.out / "stages").run()
        cohort = _applied_cohort(res["split"])
        feats = {im: res[f"radiomics_{im}"].table(f"radiomics_features_{im}").set_index("case_id") for im in images}
        name = ref.name
    centre = check_centres(cohort, col, source=name).set_axis(cohort["case_id"].astype(str))
    return cohort, feats, centre, name


def _applied_harmonisers(ctx, run, cohort) -> dict:
    """Image set -> the study's frozen harmoniser with every new centre of ``cohort`` added from its reference
    sample (:func:`_reference_features`); a centre seen in training keeps its frozen parameters. Writes the
    record ``radiomics_harmonisation`` (method, reference, centres). Empty when the study harmonises nothing."""
    import json

    from ...data.split import check_centres
    from ...utils import file_sha256

    files = {m["harmoniser"] for m in run.study.app["models"].values() if m["kind"] == "radiomics" and m.get("harmoniser")}
    if not files:
        return {}
    state = json.loads(run.study.file(files.pop()).read_text(encoding="utf-8"))
    cls = _harmoniser_class(state["method"])
    col = state["column"]
    centre = check_centres(cohort, col, source=Path(run.manifest).name).set_axis(cohort["case_id"].astype(str))
    ests = {im: cls.from_dict(s) for im, s in state["images"].items()}
    training = next(iter(ests.values())).training_centres_
    new = [c for c in pd.unique(centre) if c not in training]
    record = {"method": state["method"], "words": HARMONISE_WORDS[state["method"]], "column": col,
              "training_centres": list(training), "new_centres": {}, "reference": None}
    if new:
        _, feats, ref_centre, name = _reference_features(ctx, run, list(ests))
        ref = run.options.get("centre_reference")
        record["reference"] = {"name": name, "path": str(Path(ref).resolve() if ref else run.manifest),
                               "sha256": file_sha256(Path(ref) if ref else run.manifest), "is_cohort": ref is None}
        for c in new:
            rows = (ref_centre == c).to_numpy()
            if not rows.any():
                raise InputError(f"{name}: no lesion of centre {c!r} (column {col!r}), so its features cannot be harmonised; "
                                 "give a reference manifest (--centre-reference) with unlabelled lesions of that centre.")
            for im, est in ests.items():
                X = feats[im].loc[ref_centre.index[rows], list(est.feature_names_in_)]
                try:
                    est.add_reference(X, c)
                except InputError as exc:
                    raise InputError(f"{name}: {exc}") from None
            record["new_centres"][c] = int(rows.sum())
    ctx.write_json("radiomics_harmonisation", record)
    return {im: (est, centre) for im, est in ests.items()}


def _radiomics_pins(cfg) -> tuple:
    """``radiomics_scores``, ``radiomics_selected`` and ``scores_<model_id>``: what ``srnomogram radiomics fit --board`` writes."""
    from ...board import model_scores, scores_pin_name
    from ...radiomics.models import PIN_TITLES

    ids = [names.model_id(im, k) for im in ("or", "sr") if im == "or" or cfg.sr.enabled for k in cfg.radiomics.models]
    # board.pickle_models: the fitted pipelines as joblib pickles too (the stage keeps them as skops files)
    pickles = tuple(Pin(f"model_{m}", read=lambda r, m=m: _fitted_radiomics_model(r, m), title=f"{names.label(m)} fitted pipeline (pickle)")
                    for m in ids) if cfg.board.pickle_models else ()
    return (*(Pin(n, title=PIN_TITLES[n]) for n in ("radiomics_scores", "radiomics_selected")),
            *(Pin(scores_pin_name(m), read=lambda r, m=m: model_scores(r.table("radiomics_scores"), m)) for m in ids), *pickles)


def _fitted_radiomics_model(result, m):
    """The fitted pipeline of model ``m`` from its skops file (hash-checked), or None when the stage has none."""
    from ...radiomics.persist import load_model

    path = result.file(f"model/{m}.skops")
    return load_model(path)[0] if path.is_file() else None


def apply_radiomics(images):
    """Apply mode of ``radiomics_<images>``: the study's extraction (its PyRadiomics parameter file) on the new cohort."""

    def fn(ctx):
        run = ctx.config
        pf = run.study.app["radiomics"]["params_file"]
        cohort = _applied_cohort(ctx.inputs["sr" if images == "sr" else "split"])
        _write_features(ctx, cohort, images, params=str(run.study.file(pf)) if pf else None, jobs=run.options.get("jobs"),
                        cache=run.out / "cache" / f"radiomics_{images}", scheduler=run.options.get("scheduler"))

    fn.__name__ = f"apply_radiomics_{images}"
    return fn


def apply_radiomics_models(ctx):
    """Apply mode of ``radiomics_models``: each fitted pipeline (skops, hash-checked) scores the new cohort's features."""
    from ...radiomics.persist import load_model

    run = ctx.config
    cohort = _applied_cohort(ctx.inputs["split"])
    scores = cohort[["case_id"]].copy()
    harm = _applied_harmonisers(ctx, run, cohort)
    for key, m in run.study.app["models"].items():
        if m["kind"] != "radiomics":
            continue
        pipe, meta = load_model(run.study.file(m["file"]))
        im = m["images"]
        feats = ctx.inputs[f"radiomics_{im}"].table(f"radiomics_features_{im}").set_index("case_id")
        feats = feats.loc[cohort["case_id"].astype(str)]
        if im in harm:  # the frozen harmoniser first, as the pipelines were fitted on harmonised features
            est, centre = harm[im]
            cols = list(est.feature_names_in_)
            feats = feats.copy()
            feats[cols] = est.transform(feats[cols], centre=centre.to_numpy())
        scores[key] = pipe.predict_proba(feats[meta["features"]])[:, 1]
    ctx.write_table("radiomics_scores", scores)
