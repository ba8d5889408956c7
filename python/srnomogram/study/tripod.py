"""The TRIPOD+AI checklist of a study's report: all 52 items, and where the report answers each.

TRIPOD+AI (Collins GS, Moons KGM, Dhiman P, et al. TRIPOD+AI statement: updated guidance for
reporting clinical prediction models that use regression or machine learning methods. BMJ
2024;385:e078378, doi:10.1136/bmj-2023-078378) has 27 numbered topics and 52 items. :data:`ITEMS`
holds them with their official numbers, sections and topics, and each item's recommendation in
short form; :data:`ANSWERS` says, per item, which pins, figures, report sections or settings of
the study answer it. :func:`tripod_checklist` resolves those against what a study has (its pins
and figures; the internal-external cross-validation tables only with ``split.method: centre``, the
repeated splits only with ``validation.repeats``): an item nothing answers reads "to be completed
by the authors" (funding, registration, patient and public involvement, ...). The ``main_result``
stage pins it as ``tripod_ai`` (:func:`board_checklist`, made again at every run, so that it quotes the
current settings); the report shows it in its TRIPOD+AI section and exports it to ``tables/tripod_ai.csv``.

Sources of the item list (numbers, sections and topics cross-checked between them):

* Collins et al., BMJ 2024;385:e078378, Table 1 (TRIPOD+AI checklist), as reproduced from Europe
  PMC (PMC11019967, CC BY 4.0) in a stored public checklist file;
* the TRIPOD+AI checklist form "Version: 11-January-2024" (tripod-statement.org), as reproduced in a
  second stored public checklist file: the same 52 items, 12a-12g, 18a-18f, 20a-20c, 23a-23b, 27a-27c;
* https://skills.sh/htlin222/dotfiles/tripod-check (items 1 to 6c, same numbers and topics).
"""

from __future__ import annotations

import pandas as pd

__all__ = ["ITEMS", "ANSWERS", "COLUMNS", "TODO", "tripod_checklist"]

TODO = "to be completed by the authors"
COLUMNS = ["item", "section", "topic", "recommendation", "where the report answers it", "pins"]

#: The 52 items of TRIPOD+AI: (item, section, topic, recommendation in short form).
ITEMS = (
    ("1", "Title", "Title", "Identify the study as developing or evaluating a multivariable prediction model, the target population and the outcome"),
    ("2", "Abstract", "Abstract", "See the TRIPOD+AI for Abstracts checklist"),
    ("3a", "Introduction", "Background", "Healthcare context (diagnostic or prognostic) and rationale, with references to existing models"),
    ("3b", "Introduction", "Background", "Target population, intended purpose in the care pathway and intended users"),
    ("3c", "Introduction", "Background", "Known health inequalities between sociodemographic groups"),
    ("4", "Introduction", "Objectives", "Study objectives: development, validation, or both"),
    ("5a", "Methods", "Data", "Sources of data (development and evaluation), rationale and representativeness"),
    ("5b", "Methods", "Data", "Dates of the data: start and end of accrual, end of follow-up"),
    ("6a", "Methods", "Participants", "Study setting, with the number and location of centres"),
    ("6b", "Methods", "Participants", "Eligibility criteria"),
    ("6c", "Methods", "Participants", "Treatments received and how they were handled"),
    ("7", "Methods", "Data preparation", "Data pre-processing and quality checking, and whether similar across sociodemographic groups"),
    ("8a", "Methods", "Outcome", "Outcome definition and time horizon, how and when assessed, rationale, consistency across groups"),
    ("8b", "Methods", "Outcome", "Qualifications and demographics of the outcome assessors, if subjective"),
    ("8c", "Methods", "Outcome", "Actions to blind assessment of the outcome"),
    ("9a", "Methods", "Predictors", "Choice of initial predictors and any pre-selection before model building"),
    ("9b", "Methods", "Predictors", "Definition of all predictors, how and when measured (and blinding)"),
    ("9c", "Methods", "Predictors", "Qualifications and demographics of the predictor assessors, if subjective"),
    ("10", "Methods", "Sample size", "How the study size was arrived at and why it suffices; any sample size calculation"),
    ("11", "Methods", "Missing data", "How missing data were handled; reasons for omitting data"),
    ("12a", "Methods", "Analytical methods", "How the data were used (development, evaluation), including partitioning"),
    ("12b", "Methods", "Analytical methods", "How predictors were handled (functional form, rescaling, transformation, standardisation)"),
    ("12c", "Methods", "Analytical methods", "Type of model, rationale, model-building steps, hyperparameter tuning, internal validation"),
    ("12d", "Methods", "Analytical methods", "Heterogeneity of model parameters and performance across clusters (eg, hospitals)"),
    ("12e", "Methods", "Analytical methods", "Measures and plots of performance (discrimination, calibration, clinical utility); model comparison"),
    ("12f", "Methods", "Analytical methods", "Any model updating (eg, recalibration) arising from the evaluation"),
    ("12g", "Methods", "Analytical methods", "For evaluation, how the model predictions were calculated (formula, code, object, API)"),
    ("13", "Methods", "Class imbalance", "Class imbalance methods, why and how, and any recalibration after them"),
    ("14", "Methods", "Fairness", "Approaches to address model fairness and their rationale"),
    ("15", "Methods", "Model output", "Model output (probabilities, classification); rationale for any thresholds"),
    ("16", "Methods", "Training versus evaluation", "Differences between development and evaluation data (setting, eligibility, outcome, predictors)"),
    ("17", "Methods", "Ethical approval", "Ethics committee and informed consent or its waiver"),
    ("18a", "Open science", "Funding", "Source of funding and role of the funders"),
    ("18b", "Open science", "Conflicts of interest", "Conflicts of interest and financial disclosures of all authors"),
    ("18c", "Open science", "Protocol", "Where the protocol can be accessed, or that none was prepared"),
    ("18d", "Open science", "Registration", "Registry name and number, or that the study was not registered"),
    ("18e", "Open science", "Data sharing", "Availability of the study data"),
    ("18f", "Open science", "Code sharing", "Availability of the analytical code"),
    ("19", "Patient and public involvement", "Patient and public involvement", "Patient and public involvement, or a statement of none"),
    ("20a", "Results", "Participants", "Flow of participants, with and without the outcome (a diagram may help)"),
    ("20b", "Results", "Participants", "Characteristics overall and per data source or setting, events and missing data"),
    ("20c", "Results", "Participants", "For evaluation, comparison with the development data of important predictors and outcome"),
    ("21", "Results", "Model development", "Number of participants and outcome events in each analysis"),
    ("22", "Results", "Model specification", "The full prediction model (formula, code, object, API), and any restrictions to its use"),
    ("23a", "Results", "Model performance", "Performance estimates with confidence intervals, including key subgroups"),
    ("23b", "Results", "Model performance", "Heterogeneity of performance across clusters, if examined"),
    ("24", "Results", "Model updating", "Results of any model updating: the updated model and its performance"),
    ("25", "Discussion", "Interpretation", "Overall interpretation of the main results, including fairness"),
    ("26", "Discussion", "Limitations", "Limitations and their effects on bias, uncertainty and generalisability"),
    ("27a", "Discussion", "Usability of the model in the context of current care", "How poor quality or unavailable input data should be assessed and handled in use"),
    ("27b", "Discussion", "Usability of the model in the context of current care", "Whether users interact with the input data or the model, and the expertise required"),
    ("27c", "Discussion", "Usability of the model in the context of current care", "Next steps for future research: applicability and generalisability"),
)

#: How the checklist names the pins it points at.
PIN_NAMES = {
    "main_result": "Main result table", "participant_flow": "Participant flow", "sample_size": "Sample size",
    "table1": "Table 1", "table2": "Table 2", "table_s2": "Table S2", "score_check": "Score check",
    "nomogram_coefficients": "Nomogram and clinical model coefficients", "roc_auc": "AUC of the clinical model and the nomogram",
    "roc_comparison": "DeLong comparison", "hosmer_lemeshow": "Hosmer–Lemeshow test", "calibration_summary": "Calibration",
    "nomogram_thresholds": "Cut-offs", "heldout_validation": "Held-out validation", "heldout_subgroups": "Subgroups", "added_value": "Added value",
    "decision_curves": "Decision curves", "internal_validation": "Internal validation",
    "repeated_splits_summary": "Test AUC over split seeds", "iecv_pooled": "Internal-external cross-validation (pooled)",
    "iecv_centres": "Internal-external cross-validation (per centre)",
}

#: Pins that only count with these settings (they are declared whatever the settings).
CONDITIONS = {
    "iecv_pooled": lambda cfg: cfg.split.method == "centre",
    "iecv_centres": lambda cfg: cfg.split.method == "centre",
    "repeated_splits_summary": lambda cfg: bool(cfg.validation.repeats),
}

_CLUSTERS_NOT_EXAMINED = "not examined: one split of the cohort (split.method: random; centre gives internal-external cross-validation)"

#: What answers each item: ``("pin", name)``, ``("figure", name)`` (of
#: :data:`srnomogram.study.figures.FIGURE_TITLES`), ``("section", title)`` (a section of every study
#: report), ``("calculator",)``, ``("setting", key)`` (quoted, or asked of the authors),
#: ``("text", words)`` (said when anything else of the item is there, or alone when it is all),
#: ``("else", words)`` (said only when nothing else answers) and ``("todo", what)`` (a part left
#: to the authors). An item without an entry, or whose entries all fail, is left to the authors.
ANSWERS = {
    "3b": [("setting", "study.intended_use")],
    "4": [("section", "Main result"), ("text", "development of the nomogram and its held-out evaluation")],
    "5a": [("setting", "cohort.source"), ("pin", "iecv_centres")],
    "5b": [("setting", "cohort.source")],
    "6a": [("setting", "cohort.source"), ("pin", "iecv_centres")],
    "6b": [("pin", "participant_flow"), ("text", "exclusions per reason")],
    "7": [("section", "Methods"), ("pin", "participant_flow")],
    "8a": [("setting", "cohort.outcome")],
    "9a": [("section", "Methods"), ("pin", "table_s2")],
    "9b": [("pin", "table1"), ("section", "Settings"), ("text", "cohort.clinical"), ("todo", "how and when measured")],
    "10": [("pin", "sample_size")],
    "11": [("pin", "participant_flow"), ("text", "lesions with a missing clinical value excluded; complete-case analysis")],
    "12a": [("section", "Methods"), ("pin", "participant_flow"), ("pin", "repeated_splits_summary"), ("pin", "iecv_centres")],
    "12b": [("section", "Methods"), ("pin", "nomogram_coefficients")],
    "12c": [("section", "Methods"), ("pin", "score_check"), ("pin", "internal_validation")],
    "12d": [("pin", "iecv_pooled"), ("pin", "iecv_centres"), ("else", _CLUSTERS_NOT_EXAMINED)],
    "12e": [("section", "Methods"), ("pin", "table2"), ("pin", "roc_auc"), ("pin", "roc_comparison"),
            ("pin", "calibration_summary"), ("pin", "decision_curves"), ("figure", "figure7_validation")],
    "12g": [("pin", "nomogram_coefficients"), ("calculator",)],
    "13": [("pin", "participant_flow"), ("text", "the class counts; no class imbalance method applied")],
    "14": [("pin", "heldout_subgroups"), ("text", "performance per subgroup (study.subgroups), no fairness method applied"),
           ("todo", "fairness approaches")],
    "15": [("pin", "nomogram_thresholds"), ("text", "cut-offs chosen on the training set"), ("pin", "heldout_validation"),
           ("calculator",), ("text", "a risk (probability) per lesion")],
    "16": [("pin", "table1"), ("pin", "iecv_centres")],
    "18f": [("section", "Software versions"), ("section", "Settings"), ("todo", "the analysis code's location")],
    "20a": [("pin", "participant_flow")],
    "20b": [("pin", "table1"), ("pin", "iecv_centres")],
    "20c": [("pin", "table1"), ("text", "train and test columns")],
    "21": [("pin", "participant_flow"), ("pin", "sample_size")],
    "22": [("pin", "nomogram_coefficients"), ("figure", "figure6_nomogram"), ("calculator",)],
    "23a": [("pin", "main_result"), ("pin", "table2"), ("pin", "roc_auc"), ("pin", "calibration_summary"),
            ("pin", "heldout_validation"), ("pin", "heldout_subgroups"), ("figure", "figure7_validation")],
    "23b": [("pin", "iecv_pooled"), ("pin", "iecv_centres"), ("else", _CLUSTERS_NOT_EXAMINED)],
    "25": [("section", "Main result"), ("todo", "interpretation")],
    "26": [("section", "Main result"), ("text", "Caveats"), ("todo", "the other limitations")],
}


def _setting(cfg, key: str) -> str:
    section, name = key.split(".")
    value = getattr(getattr(cfg, section), name, None)
    return f"{key}: {value}" if value else ""


def tripod_checklist(cfg, available, calculator: bool = True) -> pd.DataFrame:
    """The TRIPOD+AI checklist of a study: :data:`ITEMS` with where its report answers each.

    Parameters
    ----------
    cfg : StudyConfig
        The study's settings (``study.intended_use``, ``cohort.outcome`` and ``cohort.source`` are
        quoted; ``split.method`` and ``validation.repeats`` decide whether the internal-external
        cross-validation and repeated-split tables count).
    available : iterable of str
        The pins and figures the report has.
    calculator : bool
        Whether the study has its nomogram calculator (``calculator.html``).

    Returns
    -------
    DataFrame
        One row per item, :data:`COLUMNS`: ``pins`` names the pins and figures the pointer names
        (``;``-separated), each also written in the pointer as ``(pin NAME)`` or ``(figure NAME)``.
    """
    from .figures import FIGURE_TITLES

    have = set(available)
    rows = []
    for item, section, topic, text in ITEMS:
        said, pins, todo, fallback = [], [], [], None
        for kind, *arg in ANSWERS.get(item, ()):
            if kind == "pin" and arg[0] in have and CONDITIONS.get(arg[0], lambda c: True)(cfg):
                said.append(f"{PIN_NAMES.get(arg[0], arg[0])} (pin {arg[0]})")
                pins.append(arg[0])
            elif kind == "figure" and arg[0] in have:
                said.append(f"{FIGURE_TITLES[arg[0]].split('.')[0]} (figure {arg[0]})")
                pins.append(arg[0])
            elif kind == "section":
                said.append(arg[0])
            elif kind == "calculator" and calculator:
                said.append("Nomogram calculator")
            elif kind == "setting":
                quoted = _setting(cfg, arg[0])
                said.append(quoted) if quoted else todo.append(f"setting {arg[0]}")
            elif kind == "text" and said:
                said[-1] += f": {arg[0]}"
            elif kind == "else":
                fallback = arg[0]
            elif kind == "todo":
                todo.append(arg[0])
        where = "; ".join(said) if said else (fallback or "")
        if todo or not where:
            ask = f"{TODO} ({', '.join(todo)})" if todo else TODO
            where = f"{where}; {ask}" if where else ask
        rows.append((item, section, topic, text, where, ";".join(pins)))
    return pd.DataFrame(rows, columns=COLUMNS)
