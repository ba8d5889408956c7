"""The stages of Yang & Ma's study, each calling the public API of its area.

split → sr → radiomics_or / radiomics_sr → radiomics_models → deep_<images>_<arch> (four CNNs) →
table2 (the 8 models, best model → deep-learning score) → clinical (Table 1, univariate and
multivariate logistic: Table S2) → nomogram (clinical model and deep-learning nomogram: cut-offs from
their out-of-fold training risks, the test set validated as held-out data by ``external_validation``,
added value (likelihood-ratio test on train; DeLong and paired net-benefit difference on test), bootstrap
calibration, optimism-corrected internal validation, Hosmer–Lemeshow, decision curves with bootstrap
bands on train and test) →
figures → report.

Each stage function receives a :class:`~srnomogram.study.cache.StageContext`, reads its inputs,
calls the API of its area (``data``, ``validation``, ``radiomics``, ``deep``, ``metrics``, ``stats``)
and writes plain files (CSV tables, JSON, images, model weights) into its own folder; the runner
caches them. Each :class:`~srnomogram.study.cache.Stage` declares the pins it writes (``pins=``);
the study's publisher pins them. The area commands (``srnomogram deep train``, ``srnomogram
radiomics fit``) call the same API functions and write the same pins.

``srnomogram validate`` and ``predict`` run the same stages in apply mode (``Stage.apply``,
``Stage.applied``): the same names and dependencies, each stage's apply half reading the frozen study
instead of fitting, as ``Pipeline.predict`` runs a fitted pipeline's steps. ``ctx.config`` is then the
application run (:class:`srnomogram.study.external.ApplyRun`): ``.study`` (the ``FinishedStudy``: ``app``,
``summary``, ``design``, ``file()``), ``.manifest``, ``.out``, ``.need_label``, ``.options``.

One module per stage family, each holding its stages' fit and apply halves side by side (one reads
what the other froze, so they change together): :mod:`.split`, :mod:`.sr`, :mod:`.radiomics`,
:mod:`.deep`, :mod:`.table2`, :mod:`.nomogram` (the ``clinical`` and ``nomogram`` stages), and
:mod:`.statistics` (the external statistics that ``validate`` adds after the applied stages); what they
share is in :mod:`._common`. This module lists the stages (:func:`build_stages`) and re-exports the
stage functions and helpers other modules use.
"""

from __future__ import annotations

from ... import names
from ..cache import Apply, Pin, Stage, pins, record
from ..freeze import load_cohort, sr_region  # noqa: F401 - shared with the application stage, which sits below the stages
from ._common import _alpha_key, _deep_key, _manifest_inputs, _seed_key, _split_key, with_labels  # noqa: F401
from .deep import _deep_pins, apply_deep, deep_scores, make_deep_stage  # noqa: F401
from .nomogram import (  # noqa: F401
    APPLY_NOMOGRAM_PINS,
    DEEP_SCORE_OR_UNIT,
    added_value,
    apply_nomogram,
    clinical_skip,
    cross_fit_nomogram,
    dca_range_thresholds,
    fit_clinical_models,
    heldout_validation,
    hl_groups,
    negative_coefficient_message,
    net_benefit_thresholds,
    nomogram_thresholds,
    run_clinical,
    run_nomogram,
    score_coefficient,
    score_distribution,
    shift_message,
)
from .radiomics import _models_key, _radiomics_pins, _reference_inputs, apply_radiomics, apply_radiomics_models, run_radiomics_models, run_radiomics_or, run_radiomics_sr
from .split import (  # noqa: F401
    APPLY_SPLIT_PINS,
    SIZE_TOLERANCE,
    SPACING_TOLERANCE,
    _apply_manifest_inputs,
    _cohort_pin,
    apply_split,
    cohort_overlap,
    load_apply_cohort,
    range_warnings,
    run_split,
)
from .sr import _sr_key, apply_sr, run_sr
from .table2 import _model_labels, apply_table2, no_signal_message, run_table2  # noqa: F401


#: Report titles of the stages' tables (``{level}``, ``{B}``: see :meth:`Pin.title_for`).
TITLES = {
    "table1": "Table 1. Clinical characteristics",
    "table2": "Table 2. Diagnostic performance of the radiomics and deep-learning models",
    "score_check": "Score check: cross-validated training AUC (DeLong {level}% CI) of the model behind the "
    "deep-learning score (no_signal: the interval reaches 0.5)",
    "table_s2": "Table S2. Univariate and multivariate logistic regression (odds ratios, Wald {level}% CI)",
    "nomogram_coefficients": "Nomogram and clinical model coefficients (odds ratios, Wald {level}% CI)",
    "roc_auc": "AUC (DeLong {level}% CI) of the clinical model and the nomogram",
    "roc_comparison": "DeLong comparison: nomogram vs clinical model (test set, held-out)",
    "hosmer_lemeshow": "Hosmer–Lemeshow test (train: apparent, df = groups - 2; test: held-out, df = groups; groups capped "
    "at min(events, non-events) / 5, not reported below 3 groups)",
    "calibration_summary": "Calibration: bootstrap (train) and held-out (test: calibration-in-the-large, slope)",
    "nomogram_thresholds": "Cut-offs of the clinical model and the nomogram (out-of-fold training risks or pre-specified) "
    "with their cross-validated training classification",
    "heldout_validation": "Held-out validation on the test set (external_validation at the frozen cut-offs, {level}% CI)",
    "added_value": "Added value of the deep-learning score: likelihood-ratio test (train) and mean difference in net "
    "benefit, nomogram - clinical model (test, paired bootstrap {level}% CI)",
    "net_benefit_difference": "Difference in net benefit, nomogram - clinical model, per threshold (test, paired "
    "bootstrap {level}% CI)",
    "net_benefit_thresholds": "Net benefit at the pre-specified thresholds (test set; patient bootstrap {level}% CI) "
    "of the clinical model and the nomogram, treat-all beside them, and the nomogram - clinical model difference",
    "internal_validation": "Internal validation (bootstrap, B = {B}): apparent and optimism-corrected indexes "
    "of the clinical model and the nomogram on the training set (rms::validate)",
}
#: The nomogram stage's tables in the report, in order.
NOMOGRAM_TABLES = ("nomogram_coefficients", "roc_auc", "roc_comparison", "hosmer_lemeshow", "calibration_summary",
                   "nomogram_thresholds", "heldout_validation", "added_value", "net_benefit_difference", "net_benefit_thresholds",
                   "internal_validation")


def build_stages(cfg) -> list[Stage]:
    """The stages a config asks for, in dependency order, each with the pins it writes."""
    stages = [Stage("split", run_split, sections=("cohort", "split"), inputs=_manifest_inputs, extra_key=_split_key, version="3",
                    pins=(Pin("manifest", read=_cohort_pin, title="Cohort manifest with train/test split"), *pins("split_counts", "excluded"),
                          record("split_info", "Split record: source, unit, lesion and patient counts (JSON)")),
                    apply=Apply(apply_split, inputs=_apply_manifest_inputs, pins=APPLY_SPLIT_PINS, version="2"))]
    if cfg.sr.enabled:
        stages.append(Stage("sr", run_sr, deps=("split",), sections=("sr",), extra_key=_sr_key, version="3", pins=pins("sr_history", "sr_quality"),
                            apply=Apply(apply_sr)))
    model_deps = []
    if cfg.radiomics.enabled:
        stages.append(Stage("radiomics_or", run_radiomics_or, deps=("split",), sections=("radiomics",), pins=pins("radiomics_features_or"),
                            apply=Apply(apply_radiomics("or"))))
        rad_deps = ["split", "radiomics_or"]
        if cfg.sr.enabled:
            stages.append(Stage("radiomics_sr", run_radiomics_sr, deps=("sr",), sections=("radiomics",), pins=pins("radiomics_features_sr"),
                                apply=Apply(apply_radiomics("sr"))))
            rad_deps.append("radiomics_sr")
        stages.append(Stage("radiomics_models", run_radiomics_models, deps=tuple(rad_deps), sections=("radiomics", "board"),
                            extra_key=_models_key, version="6", pins=_radiomics_pins(cfg),
                            apply=Apply(apply_radiomics_models, inputs=_reference_inputs,
                                        pins=(record("radiomics_harmonisation", "Harmonisation of the features across centres: "
                                                     "method, reference sample, new centres (JSON)"),))))
        model_deps.append("radiomics_models")
    if cfg.deep.enabled:
        for images in cfg.deep.images:
            for arch in cfg.deep.archs:
                name = f"deep_{names.model_id(images, arch)}"
                deps = ("split", "sr") if images == "sr" else ("split",)
                stages.append(Stage(name, make_deep_stage(images, arch), deps=deps, extra_key=_deep_key, version="3", pins=_deep_pins(images, arch),
                                    apply=Apply(apply_deep(images, arch))))
                model_deps.append(name)
    stages.append(Stage("table2", run_table2, deps=("split", *model_deps), sections=("nomogram",), version="6",
                        pins=(*pins("scores", "scores_oof", "model_aucs"), Pin("model_labels", read=_model_labels,
                                                                            title="Display label of every model id"),
                              Pin("table2", section="tables", order=20, title=TITLES["table2"]),
                              Pin("score_check", section="tables", order=30, title=TITLES["score_check"]),
                              record("best_model", "The model behind the deep-learning score: id, label, rule, score check (JSON)")),
                        apply=Apply(apply_table2, version="2")))
    stages.append(Stage("clinical", run_clinical, deps=("split", "table2"), sections=("cohort",), extra_key=_alpha_key, version="2",
                        pins=(Pin("table1", section="tables", order=10, title=TITLES["table1"]),
                              Pin("table_s2", section="tables", order=40, title=TITLES["table_s2"]))))
    stages.append(Stage("nomogram", run_nomogram, deps=("split", "table2"), sections=("cohort", "nomogram"), extra_key=_seed_key, version="11",
                        pins=(*pins("predictions", "nomogram_points", "clinical_points", "calibration"),
                              *(Pin(n, section="tables", order=o, title=TITLES[n]) for o, n in zip(range(50, 160, 10), NOMOGRAM_TABLES)),
                              Pin("decision_curves", section="tables", order=160, show=False,
                                  title="Decision curves (net benefit per threshold) of the clinical model and the nomogram"),
                              record("score_coefficient", "Sign check of the deep-learning score's nomogram coefficient (JSON)")),
                        apply=Apply(apply_nomogram, version="3", pins=APPLY_NOMOGRAM_PINS)))
    from ..freeze import application_stage  # what `srnomogram validate/predict` needs, frozen

    stages.append(application_stage(stages))
    if cfg.study.subgroups:  # after application: reporting only, it changes nothing a finished study applies
        from .subgroups import heldout_subgroups_stage

        stages.append(heldout_subgroups_stage(cfg))
    from ..main_result import main_result_stage  # the paper's two questions, the TRIPOD+AI flow and sample size

    stages.append(main_result_stage(cfg))
    return stages
