"""Apply a finished study, frozen, to another cohort: external validation and prospective scoring.

At study time (:mod:`srnomogram.study.freeze`: the nomogram stage's design file and the ``application``
stage) every fitted piece is kept:
radiomics pipelines as skops files, CNN and SR checkpoints with their SHA-256, the clinical model
and the nomogram as coefficients and design (``nomogram_design.json``, so Python and the calculator
need no R) and as rms fits (``*.rds``, for R users), and ``application.json`` with what is needed to
apply the study the same way (the chosen model, the training Youden cut-offs exactly as Table 2
computed them, SR, ROI and PyRadiomics settings) beside ``training_summary.json`` (ranges of the
clinical factors, image spacing and size, score distributions) for out-of-range warnings.

:func:`validate` (``srnomogram validate STUDY_DIR MANIFEST -o OUT``) reads a labelled manifest,
applies the study's own SR model, extracts the same features, scores every model, and computes
through the R package (:func:`srnomogram.stats.external_validation`) the external statistics of each one:
``external_validation`` (AUC with DeLong CI, calibration-in-the-large and slope with CIs,
``rms::val.prob``, Brier, Hosmer–Lemeshow, the frozen-cut-off sensitivity, specificity, PPV, NPV)
and ``decision_curve`` (with bootstrap CIs). :func:`predict` (``srnomogram predict``) scores an
unlabelled manifest. Both run the study's own stages (:func:`srnomogram.study.stages.build_stages` of
its resolved config) in apply mode (:class:`~srnomogram.study.cache.Apply`), as ``Pipeline.predict``
runs a fitted pipeline's steps: split (load and check the cohort, label optional) → sr (the study's
generator) → radiomics_or/sr (the same extraction) → radiomics_models and deep_* (the saved models
score) → table2 (the deep-learning score) → nomogram (risks and points from the design), then, to
validate, the external statistics (:mod:`srnomogram.study.stages.statistics`). They are cached and resumable
(:class:`~srnomogram.study.cache.Runner`) under the output folder's ``stages/``; ``tables/``,
``board/`` and the report come from the pins those stages declare.

With a Dask scheduler (``scheduler=``, ``--scheduler`` or ``$DASK_SCHEDULER_ADDRESS``) the per-lesion
work runs on the cluster's workers (:mod:`srnomogram.parallel`): feature extraction one lesion per
task, CNN scoring one inference batch per task (the local batches, so each lesion is scored in the
same batch as locally), and SR apply one lesion per task. The scheduler is in no cache key: a cluster run reuses a local run's stages and back.
"""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path

import numpy as np

from ..errors import InputError, param_error
from .. import names
from ..utils import atomic_path, check_output_dir, check_output_file, write_csv_atomic
from .applying import (  # noqa: F401 - the apply path, re-exported where it used to live
    RERUN,
    ApplyRun,
    FinishedStudy,
    _apply_stages,
    _board_metadata,
    _prepare,
    _run_stages,
    load_study,
)
from .freeze import (  # noqa: F401 - the study-time half, re-exported where it used to live
    APP_FORMAT,
    EXTRA_LABELS,
    application_stage,
    run_application,
    nomogram_predict,
    save_nomogram_fits,
)
from .stages.statistics import (  # noqa: F401 - the external statistics stage, re-exported where it used to live
    DCA_CURVE,
    LESION_ESTIMAND,
    PATIENT_ESTIMAND,
    STAT_OPTIONS,
    STATISTICS_PINS,
    UNITS,
    _ext_statistics,
    _model_statistics,
    _units,
    patient_risks,
    statistics_stage,
)

logger = logging.getLogger(__name__)

__all__ = ["validate", "predict", "load_study", "FinishedStudy", "nomogram_predict"]


# ================================================================================ public API
STUDY_FOLDER = "the study folder STUDY_DIR"


def _claim(run: ApplyRun, command: str, option: str):
    """Claim the run's output folder for ``command`` on this study (:func:`srnomogram.study.folders.claim_output`)."""
    from .folders import Owner, claim_output

    return claim_output(run.out, Owner(command, command, study=str(run.study.path), study_key=run.study.key, option=option))


def validate(study_dir, manifest, out, recalibrate: bool = False, unit: str = "lesion", bootstraps: int = 1000,
             dca_bootstraps: int = 500, jobs=None, device: str = "auto", force=(), scheduler=None,
             strict: bool = False, centre_reference=None, by=()) -> Path:
    """External validation of a finished study on a labelled manifest; returns ``OUT/report.html``.

    Parameters
    ----------
    study_dir : path-like
        The output folder of ``srnomogram run``.
    manifest : path-like
        Labelled manifest of the external cohort (``case_id``, ``image``, ``mask``, ``label``,
        ``spacing``, the study's clinical columns; optional ``patient_id``).
    out : path-like
        Output folder: ``report.html``, ``tables/*.csv``, ``figures/*.png``, ``board/``, ``stages/``. A new or
        empty folder, or this command's own folder of the same study (resumed); a study folder, another
        study's validation or a folder of other files is refused (:mod:`srnomogram.study.folders`).
    recalibrate : bool
        Add a logistic recalibration (intercept, slope) of every model as a separate, labelled result.
    unit : {"lesion", "patient"}
        ``"lesion"`` (default): every lesion is a unit (the lesion-level estimand, as the study's
        own); when a patient (``patient_id``, see :func:`srnomogram.data.manifest.patient_ids`)
        has several lesions, every CI (AUC, calibration-in-the-large, slope, Brier, the threshold
        metrics, the decision-curve bands) is a percentile bootstrap over patients; otherwise the
        AUC has a DeLong CI, calibration Wald CIs, the threshold metrics Wilson CIs.
        ``"patient"``: a different estimand, one row per patient: outcome "any lesion malignant",
        risk ``1 − ∏(1 − pᵢ)`` over the patient's lesions (:func:`patient_risks`), with DeLong,
        Wald and Wilson CIs; the frozen cut-offs, chosen on lesions, are applied to that risk.
    bootstraps, dca_bootstraps : int
        Resamples of the patient bootstrap (lesion level, when a patient has several lesions) and
        of the calibration curves' bands; resamples of the decision-curve bands.
    force : iterable of str
        Stages to recompute: the study's stage names in apply mode (``"split"``, ``"nomogram"``, ...),
        ``"statistics"``, or ``"all"``.
    scheduler : str or None
        Dask scheduler address (``tcp://host:8786``) for the per-lesion work (see the module notes);
        None reads ``$DASK_SCHEDULER_ADDRESS``, ``"local"`` runs here. The study, the manifest's
        images and ``out`` must be on a filesystem the workers share, at the same paths.
    strict : bool
        Refuse a cohort with lesions of the study's own cohort (the same ``case_id``, or an image with the same
        bytes: :func:`~srnomogram.study.stages.cohort_overlap`), which is otherwise a warning in the log
        and the report.
    centre_reference : path-like, optional
        A study that harmonises its features by centre (``radiomics.harmonise``) brings in each centre of
        ``manifest`` that it was not fitted on from an unlabelled reference sample of that centre: by
        default the cohort itself (its features and centre column only, never its labels); this manifest
        (labels not read) instead. A centre of the study's training keeps its frozen parameters.
    by : iterable of str
        Subgroup variables, columns of ``manifest``: ``COLUMN`` (categorical or text) or ``COLUMN:EDGES``
        (numeric, left-closed bands, e.g. ``age:40,60``); each model's statistics per subgroup, with CIs from a
        bootstrap over the subgroup's patients, go to the table ``external_subgroups``
        (:mod:`srnomogram.study.subgroups`; no subgroup p-values).
    """
    from .subgroups import check_manifest_subgroups, parse_subgroups

    if unit not in UNITS:
        raise param_error("unit", "validate", "'lesion' or 'patient'", unit)
    for name, v in (("bootstraps", bootstraps), ("dca_bootstraps", dca_bootstraps)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < (1 if name == "bootstraps" else 0):
            raise param_error(name, "validate", "an int >= 1" if name == "bootstraps" else "an int >= 0", v)
    opts = {"recalibrate": bool(recalibrate), "unit": unit, "bootstraps": int(bootstraps),
            "dca_bootstraps": int(dca_bootstraps), "jobs": jobs, "device": device, "scheduler": scheduler,
            "strict": bool(strict), "by": [str(s) for s in parse_subgroups(by)]}
    # -o STUDY_DIR would replace the study's own report.html and run_log.json and mix into its stages/
    check_output_dir(out, "-o/--output", outside={STUDY_FOLDER: study_dir})
    check_manifest_subgroups(manifest, opts["by"], "--by", unit)  # a missing or unbanded column: before any work
    run = _prepare(study_dir, manifest, out, True, opts)
    run.options.update(_reference_option(run.study, centre_reference))
    run.options["force"] = tuple(force)
    with _claim(run, "validate", "-o/--output"):  # its own folder (of this study), one writer
        runner, stages, _ = _run_stages(run, with_stats=True)
        return _publish(run, runner, stages)


def predict(study_dir, manifest, output, jobs=None, device: str = "auto", work_dir=None, force=(), scheduler=None,
            centre_reference=None) -> Path:
    """Score an (unlabelled) manifest with every model of a finished study; write ``output`` (CSV).

    The CSV has one row per lesion: ``case_id`` (and ``patient_id``), one column per image model,
    ``deep_score`` (the chosen model's), and, when the clinical columns exist, ``clinical`` and
    ``nomogram`` (risks) with ``clinical_points`` and ``nomogram_points`` (total points). The
    stages are cached in ``work_dir`` (default ``<output stem>_work`` beside it): a new or empty folder, or
    predict's own work folder of the same study (resumed); any other is refused, as in :func:`validate`.
    ``scheduler`` and ``centre_reference``: as in :func:`validate`.
    """
    check_output_file(output, "-o/--output", inputs={"MANIFEST": manifest}, outside={STUDY_FOLDER: study_dir}, example="scores.csv")
    output = Path(output).resolve()
    option = "--work-dir" if work_dir is not None else "--work-dir (default: <SCORES_CSV stem>_work beside it)"
    work = work_dir if work_dir is not None else output.with_name(output.stem + "_work")
    work = check_output_dir(work, option, outside={STUDY_FOLDER: study_dir})
    run = _prepare(study_dir, manifest, work, False, {"jobs": jobs, "device": device, "scheduler": scheduler})
    run.options.update(_reference_option(run.study, centre_reference))
    run.options["force"] = tuple(force)
    with _claim(run, "predict", option):  # the work folder: one writer (the CSV itself is written atomically)
        _, _, results = _run_stages(run, with_stats=False)
        scores = results["nomogram"].table("scores")
        write_csv_atomic(scores, output)
    logger.info("Scores of %d lesions: %s", len(scores), output)
    return output


def _reference_option(study, centre_reference) -> dict:
    """``{"centre_reference": absolute path}`` of a readable manifest (read here, to fail before any stage runs), or {};
    refused for a ``study`` that harmonises nothing (the reference would be silently unused)."""
    if centre_reference is None:
        return {}
    from ..data.manifest import load_manifest

    if not any(m.get("harmoniser") for m in study.app["models"].values()):
        raise InputError(f"--centre-reference is for a study that harmonises its radiomics features by centre "
                         f"(radiomics.harmonise); the study {study.path} does not, so leave it out.")

    ref = Path(centre_reference).resolve()
    load_manifest(ref, require_label=False)
    return {"centre_reference": str(ref)}


# -------------------------------------------------------------------------------- outputs
def _publish(run: ApplyRun, runner, stages) -> Path:
    """``tables/``, ``figures/`` and ``report.html`` from the pins on ``OUT/board`` alone, as a study's
    (:func:`srnomogram.study.pipeline.publish`): the pins of section ``external``, in their order."""
    from .cache import report_pins
    from .pipeline import export_tables
    from .report import BoardRecords, ExternalSection, write_report

    out = run.out
    shown = report_pins(stages)
    tables = export_tables(out / "board", [p.name for p in shown], out / "tables")
    figs = _figures(out / "board", out / "figures", [m for m in tables["external_auc"]["model"]])
    records = BoardRecords(out / "board", stages)  # the stages' JSON records, pinned like their tables
    info = {**records["nomogram"].json("scores_info"), **records["statistics"].json("statistics_info"),
            **records["split"].json("cohort_info")}
    if "radiomics_models" in records:  # a study that harmonises its features by centre
        with contextlib.suppress(FileNotFoundError):
            info["harmonisation"] = records["radiomics_models"].json("radiomics_harmonisation")
    with atomic_path(out / "run_log.json") as tmp:
        tmp.write_text(json.dumps(runner.log, indent=1), encoding="utf-8")
    section = ExternalSection(title=f"External validation: {run.study.app['study']} on {run.manifest.name}",
                              methods=methods_text(run, info), estimand=info.get("estimand", ""),
                              ci_method=info.get("ci_method", ""), study=run.study.path,
                              options={k: v for k, v in run.options.items() if k != "force"})
    report = write_report(run.cfg, records, tables, figs, runner.log, out / "report.html", pins=shown,
                          board_dir=out / "board", external=section)
    logger.info("External validation report: %s", report)
    return report


EXTERNAL_FIGURES = ("external_roc", "external_calibration", "external_dca")


def _figures(board, folder, models) -> dict:
    """The external ROC, calibration (lowess with its bootstrap band) and decision-curve figures, drawn in R
    from the run's board by the study's own plot functions (``board_figures``: ``roc_plot``,
    ``calibration_plot``, ``dca_plot``), as PNG."""
    from .figures import r_figures

    return r_figures(board, folder, labels={m: names.label(m) for m in models}, formats=("png",), names=EXTERNAL_FIGURES)


def methods_text(run: ApplyRun, info: dict) -> str:
    app = run.study.app
    n = info.get("n")
    parts = [f"The finished study {app['study']!r} (config hash {app['config_hash'][:12]}) was applied unchanged to "
             f"{n} lesions of {run.manifest.name} (external validation: no model, threshold or setting was refitted)."]
    overlap = info.get("overlap") or {}
    if overlap.get("message"):  # the cohort is not wholly external: said where the claim is made
        parts.append("Overlap with the study's own cohort: " + overlap["message"])
    elif overlap.get("checked"):
        parts.append(f"No lesion shares an image file or a case_id with the study's own cohort "
                     f"({overlap['n_study_images']} images compared).")
    if app["sr"]["enabled"]:
        parts.append("The study's own super-resolution generator was applied to every image.")
    if app["radiomics"]["enabled"]:
        parts.append("PyRadiomics features were extracted with "
                     + (f"the study's parameter file {app['radiomics']['params_name']}" if app["radiomics"]["params_name"] else "the package's default parameters")
                     + " and scored by the study's fitted pipelines (selection, z-score and pruning from the training set).")
    parts.append(harmonisation_text(info.get("harmonisation")))
    deep = [m for m in app["models"].values() if m["kind"] == "deep"]
    if deep:
        parts.append(f"The study's CNNs scored ROI crops with their training settings (image size {deep[0]['image_size']} px, "
                     f"margin {deep[0]['margin']}).")
    if info.get("clinical_skipped"):
        parts.append(info.get("message", ""))
    else:
        parts.append(f"The clinical model and the nomogram used the study's coefficients; the deep-learning score was "
                     f"{names.label(app['best_model']['model'])}'s.")
    parts.append(_unit_text(run, info))
    parts.append(
        f"Every model was assessed by its AUC, calibration-in-the-large and calibration slope, the smoothed calibration "
        f"curve and rms::val.prob statistics, the Brier score, the Hosmer–Lemeshow test ({app['hl_groups']} groups), "
        "decision curves, and accuracy, sensitivity, specificity, PPV and NPV at its frozen training Youden cut-off."
    )
    if run.options.get("by"):
        parts.append(f"Every model was also assessed within the subgroups of {', '.join(run.options['by'])} (numeric columns "
                     "in left-closed bands), each subgroup alone, with CIs from a bootstrap over its own patients; these "
                     "estimates are descriptive and no subgroup p-values were computed.")
    if run.options.get("recalibrate"):
        parts.append("A logistic recalibration (intercept and slope refitted on the external cohort) is reported "
                     "separately; its figures are apparent on this cohort, not external.")
    return " ".join(p for p in parts if p)


def harmonisation_text(record) -> str:
    """The methods' sentences on the harmonisation of the features by centre (the apply half's record), or ""."""
    if not record:
        return ""
    trained = ", ".join(map(str, record["training_centres"]))
    text = (f"Before scoring, the features were harmonised by centre (column {record['column']!r}) with the study's frozen "
            f"harmoniser, {record['words']}, fitted on the training lesions of centres {trained}; a lesion of one of "
            "those centres was harmonised with that centre's training parameters.")
    new, ref = record.get("new_centres") or {}, record.get("reference")
    if new and ref:
        counts = ", ".join(f"{c} ({n} lesions)" for c, n in new.items())
        source = (f"the cohort itself ({ref['name']}: its features and centres only, never its labels)" if ref.get("is_cohort")
                  else f"the reference manifest {ref['name']} (SHA-256 {ref['sha256'][:12]}; labels not read)")
        text += (f" The parameters of the new centres {counts} were estimated from the unlabelled reference sample of "
                 f"{source}, the training fit staying frozen; the results are conditional on that reference sample.")
    return text


def _unit_text(run: ApplyRun, info: dict) -> str:
    """The methods' sentences on the unit of analysis and on how every CI was obtained."""
    level = f"{100 * (1 - run.study.app.get('alpha', 0.05)):g}%"
    dca_b = run.options.get("dca_bootstraps")
    bands = (f"the decision-curve bands are percentile bootstraps over patients ({dca_b} resamples)" if dca_b
             else "the decision curves have no bands")
    n_pat, n_les = info.get("n_patients"), info.get("n_lesions")
    if info.get("unit") == "patient":
        return (f"The unit of analysis was the patient ({n_pat} patients, {n_les} lesions), an estimand different from "
                f"the study's lesion-level one: {PATIENT_ESTIMAND}, that is, a patient is malignant when any of their "
                "lesions is, and a model's patient risk is 1 − ∏(1 − pᵢ) over the risks pᵢ of the patient's lesions "
                "(the lesions taken as independent); the frozen cut-offs, chosen on lesions, were applied to that risk. "
                f"{level} CIs: DeLong (AUC), Wald (calibration-in-the-large and slope) and Wilson (threshold metrics); "
                f"the Brier score has none; {bands}.")
    if info.get("patient_bootstrap"):
        return (f"The unit of analysis was the lesion ({n_les} lesions of {n_pat} patients; "
                f"{info.get('n_patients_several_lesions')} patients had several lesions). Every {level} CI (AUC, "
                "calibration-in-the-large and slope, Brier score, threshold metrics) is a percentile bootstrap over "
                f"patients ({run.options.get('bootstraps')} resamples, each keeping all of a patient's lesions), "
                f"and {bands}.")
    return (f"The unit of analysis was the lesion ({n_les} lesions, each its own patient). {level} CIs: DeLong (AUC), "
            f"Wald (calibration-in-the-large and slope) and Wilson (threshold metrics); the Brier score has none; {bands}.")
