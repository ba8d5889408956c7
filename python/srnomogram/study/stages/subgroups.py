"""The subgroup stages: the study's held-out statistics per subgroup (``study.subgroups``: the
``subgroups`` stage) and, in ``srnomogram validate --by``, the external statistics per subgroup (the
``external_subgroups`` stage). Both apply :func:`srnomogram.study.subgroups.subgroup_table`, the
whole cohort's ``external_validation`` on each subgroup alone with a bootstrap over its patients."""

from __future__ import annotations

import pandas as pd

from ..cache import Pin, Stage
from ..freeze import load_cohort
from ..subgroups import check_subgroups, parse_subgroups, patient_subgroups, subgroup_table, subgroups_of

HELDOUT_TITLE = ("Held-out statistics per subgroup (test set; {level}% CIs from a bootstrap over each subgroup's "
                 "patients; descriptive, no subgroup p-values)")
EXTERNAL_TITLE = ("External statistics per subgroup ({level}% CIs from a bootstrap over each subgroup's patients; "
                  "descriptive, no subgroup p-values)")


def _groups(specs, cohort: pd.DataFrame, case_ids, source, setting) -> dict:
    """``{str(spec): subgroup of each case of case_ids}`` read from the cohort table."""
    check_subgroups(specs, cohort, source, setting)
    idx = pd.Index(cohort["case_id"].astype(str)).get_indexer([str(c) for c in case_ids])
    rows = cohort.iloc[idx].reset_index(drop=True)
    return {str(s): subgroups_of(rows[s.column], s) for s in specs}


# --------------------------------------------------------------------------------- the study's test set
def run_heldout_subgroups(ctx):
    """``heldout_subgroups``: the test set's statistics per subgroup of ``study.subgroups`` (columns of the
    study's manifest) for the model behind the deep-learning score, the clinical model and the nomogram,
    with CIs from ``nomogram.calibration_b`` resamples of each subgroup's patients (the bootstrap seed)."""
    from ...data.manifest import patient_ids

    cfg = ctx.config
    specs = parse_subgroups(cfg.study.subgroups, "study.subgroups")
    cohort = load_cohort(ctx.inputs["split"])
    best = ctx.inputs["table2"].json("best_model")["model"]
    preds = ctx.inputs["nomogram"].table("predictions")
    test = preds[preds["split"] == "test"].reset_index(drop=True)
    scores = ctx.inputs["table2"].table("scores").set_index("case_id")
    data = pd.DataFrame({"label": test["label"].to_numpy(dtype=float),
                         best: scores.loc[test["case_id"], best].to_numpy(dtype=float),
                         "clinical": test["risk_clinical"].to_numpy(dtype=float),
                         "nomogram": test["risk_nomogram"].to_numpy(dtype=float)})
    groups = _groups(specs, cohort, test["case_id"], cfg.cohort.manifest, "study.subgroups")
    pid = dict(zip(cohort["case_id"].astype(str), patient_ids(cohort)))
    table = subgroup_table(data, groups, [best, "clinical", "nomogram"], [pid[str(c)] for c in test["case_id"]],
                           bootstraps=cfg.nomogram.calibration_b, seed=cfg.bootstrap_seed, conf_level=1 - cfg.nomogram.alpha)
    ctx.write_table("heldout_subgroups", table.assign(estimate="held-out"))


def _heldout_key(cfg, results):
    return {"subgroups": list(cfg.study.subgroups), "seed": cfg.bootstrap_seed}


def heldout_subgroups_stage(cfg) -> Stage:
    """The ``subgroups`` stage of a study with ``study.subgroups`` (after ``application``, which it does not change)."""
    return Stage("subgroups", run_heldout_subgroups, deps=("split", "table2", "nomogram"), sections=("nomogram",),
                 extra_key=_heldout_key, version="1",
                 pins=(Pin("heldout_subgroups", section="tables", order=115, title=HELDOUT_TITLE),))


# --------------------------------------------------------------------------------- srnomogram validate --by
def run_external_subgroups(ctx):
    """``external_subgroups``: the external statistics of every model per subgroup of ``--by`` (columns of the
    validated manifest), on the statistics' units (lesions, or patients with ``--unit patient``), with CIs
    from ``--bootstraps`` resamples of each subgroup's patients (the study's bootstrap seed)."""
    from ...data.manifest import patient_ids
    from .statistics import _units

    run = ctx.config
    app = run.study.app
    specs = parse_subgroups(run.options.get("by"), "--by")
    scores = ctx.inputs["nomogram"].table("scores")
    cohort = load_cohort(ctx.inputs["split"])
    models = [k for k in app["models"]] + [k for k in ("clinical", "nomogram") if k in scores.columns]
    unit = run.options.get("unit", "lesion")
    pid = patient_ids(scores)
    groups = _groups(specs, cohort, scores["case_id"], run.manifest, "--by")
    data, _, estimand = _units(scores, unit, models, pid)
    if unit == "patient":
        groups, patients = patient_subgroups(groups, pid), data["patient_id"].to_numpy()
    else:
        patients = pid.to_numpy()
    table = subgroup_table(data, groups, models, patients, bootstraps=run.options.get("bootstraps", 1000),
                           seed=int(app["bootstrap_seed"]), conf_level=1 - float(app.get("alpha", 0.05)))
    ctx.write_table("external_subgroups", table.assign(unit=estimand))  # as the other external tables name it


def _external_key(run, results):
    return {"study": run.study.key, **{k: run.options.get(k) for k in ("by", "unit", "bootstraps")}}


def external_subgroups_stage() -> Stage:
    """The ``external_subgroups`` stage, which ``validate --by`` appends after ``statistics``."""
    return Stage("external_subgroups", run_external_subgroups, deps=("split", "nomogram"), version="1",
                 extra_key=_external_key,
                 pins=(Pin("external_subgroups", section="external", order=35, title=EXTERNAL_TITLE),))
