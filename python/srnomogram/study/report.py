"""The study report (one self-contained HTML file) and the offline nomogram calculator.

Both pages embed everything they show (CSS, base64 PNG figures, inline JavaScript) and make no
network request, so they open from a USB stick or an e-mail attachment.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import names
from ..metrics import TEST_SET_RULES
from ..utils import atomic_path
from .freeze import calculator_spec  # the design file (freeze) and the calculator page share it
from .stages import DEEP_SCORE_OR_UNIT, negative_coefficient_message, no_signal_message

logger = logging.getLogger(__name__)

CSS = """
body{font-family:Georgia,serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1,h2,h3{font-family:Helvetica,Arial,sans-serif}h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;margin-top:2em}
table{border-collapse:collapse;font-size:.82em;margin:1em 0}th,td{border:1px solid #ccc;padding:3px 6px;text-align:right}
th{background:#f2f2f2}td:first-child,th:first-child,td.t{text-align:left}img{max-width:100%;border:1px solid #eee}
.meta{color:#666;font-size:.85em}code{background:#f6f6f6;padding:0 3px}.note{font-size:.9em;max-width:60em}
.warning{border:2px solid #b00020;background:#fdecee;color:#5a0010;padding:.6em 1em;margin:1em 0;max-width:60em}
"""


_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


#: Columns that count: printed as integers even when their values are only 0 and 1.
COUNT_COLUMNS = {"n", "df", "hl_df", "tp", "fp", "tn", "fn", "n_seeds", "n_events", "events", "lesions", "patients",
                 "times_chosen", "seed", "b", "n_clipped", "n_excluded"}


def is_p_column(name) -> bool:
    """Whether a column holds p-values, by its name: ``p``, ``p_value``, ``pvalue``, ``p.value``, ``hl_p``, ``*_p``."""
    n = str(name).lower()
    return n in ("p", "p_value", "pvalue", "p.value", "p-value") or n.endswith(("_p", "_p_value", ".p"))


def format_p(p) -> str:
    """A p-value as a reader expects it: ``< 0.001``, else three decimals (``0.034``); empty when missing."""
    if p is None or (isinstance(p, (float, np.floating)) and not np.isfinite(p)):
        return ""
    p = float(p)
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def format_number(v, digits: int = 3, integer: bool = False) -> str:
    """A number as a reader expects it: integers as integers (``1000``, not ``1000.000``), others with
    ``digits`` decimals, very small ones with ``digits`` significant digits; empty for NaN."""
    if v is None or isinstance(v, bool):
        return "" if v is None else str(v)
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    v = float(v)
    if not np.isfinite(v):
        return "" if np.isnan(v) else str(v)
    if integer or (v.is_integer() and abs(v) >= 1e3):
        return f"{v:.0f}"
    return f"{v:.{digits}g}" if abs(v) < 1e-3 and v != 0 else f"{v:.{digits}f}"


def _column_formatter(col: pd.Series, name, digits):
    """How one column's cells print: p-values by name; a numeric column whose values are all whole
    numbers as integers (a count read back from CSV as float: ``n``, ``df``, ``B``); number-like text in
    a mixed column (``value`` of the sample-size table) as numbers; everything else escaped."""
    if is_p_column(name):
        def fmt_p(v):
            if isinstance(v, str) and not _NUMBER.match(v.strip()):
                return html.escape(v)  # e.g. "<0.001" as R wrote it
            try:
                return html.escape(format_p(float(v)))
            except (TypeError, ValueError):
                return html.escape(str(v))
        return fmt_p
    numeric = pd.to_numeric(col, errors="coerce")
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        finite = numeric[np.isfinite(numeric)]
        # whole numbers read back as floats (a count with a NaN): integers; but not a column of 0s and 1s
        # that happens to be whole (an interval clipped at 1), unless its name says it counts
        whole = len(finite) > 0 and bool((finite == np.round(finite)).all()) and (
            bool((finite.abs() > 1).any()) or str(name).lower() in COUNT_COLUMNS)
        return lambda v: format_number(v, digits, integer=whole)

    def fmt(v):
        if isinstance(v, (float, np.floating, int, np.integer)) and not isinstance(v, bool):
            return format_number(v, digits, integer=float(v).is_integer())
        if isinstance(v, str) and _NUMBER.match(v.strip()):
            x = float(v)
            return format_number(x, digits, integer=x.is_integer())
        return html.escape(str(v))

    return fmt


def _table_html(df: pd.DataFrame, digits=3) -> str:
    """An HTML table with every cell formatted by :func:`_column_formatter` and escaped."""
    fmts = [_column_formatter(df.iloc[:, i], c, digits) for i, c in enumerate(df.columns)]
    # text columns (a label, a method) read left-aligned; numbers stay right-aligned
    text = [i > 0 and (df.iloc[:, i].dtype == object or pd.api.types.is_string_dtype(df.iloc[:, i])) and pd.to_numeric(df.iloc[:, i], errors="coerce").isna().mean() > 0.5
            for i in range(df.shape[1])]
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = "".join("<tr>" + "".join(f'<td class="t">{f(v)}</td>' if t else f"<td>{f(v)}</td>" for f, v, t in zip(fmts, row, text))
                   + "</tr>" for row in df.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"><figcaption>{html.escape(alt)}</figcaption></figure>'


class BoardRecords:
    """What the report knows of a study's stages, read from its board alone.

    ``stage in records`` when the board holds one of the pins that stage declares (``stages``: the
    study's :class:`~srnomogram.study.cache.Stage` list); ``records[stage].json(name)`` reads the JSON
    record ``name`` that stage pinned (:func:`srnomogram.study.cache.record`: the split's
    ``split_info``, Table 2's ``best_model``, the nomogram's ``score_coefficient``; in an external run
    ``cohort_info``, ``scores_info``, ``statistics_info``), and raises FileNotFoundError when the board
    has no such record. A pin that no stage of ``stages`` declares (left by an earlier config) is not read.
    """

    class _Stage:
        def __init__(self, board_dir, name, pinned):
            self.board_dir, self.name, self.pinned = board_dir, name, pinned

        def json(self, name: str):
            from ..board import read_file_pin

            if name not in self.pinned:
                raise FileNotFoundError(f"the board {self.board_dir} holds no record {name!r} of stage {self.name!r}")
            return json.loads(read_file_pin(self.board_dir, name).read_text(encoding="utf-8"))

    def __init__(self, board_dir, stages):
        from ..board import list_pins

        self.board_dir = Path(board_dir)
        have = set(list_pins(board_dir)) if self.board_dir.is_dir() else set()
        pinned = {s.name: {p.name for p in s.pins} & have for s in stages}
        self._stages = {name: self._Stage(self.board_dir, name, on_board) for name, on_board in pinned.items() if on_board}

    def __contains__(self, stage):
        return stage in self._stages

    def __getitem__(self, stage):
        return self._stages[stage]

    def __iter__(self):
        return iter(self._stages)

    def get(self, stage, default=None):
        return self._stages.get(stage, default)


def _record(results, stage, name):
    """The JSON record ``name`` of ``stage`` (:class:`BoardRecords`, or ``{stage: StageResult}``), None when absent."""
    r = results.get(stage)
    if r is None:
        return None
    try:
        return r.json(name)
    except FileNotFoundError:
        return None


def methods_text(cfg, results) -> str:
    """Methods paragraph generated from the settings actually used (and what the cohort held)."""
    parts = []
    info = _record(results, "split", "split_info") or {}
    n = info.get("n")
    parts.append(
        f"The cohort comprised {n} lesions" + (f" of {info['n_patients']} patients" if "n_patients" in info else "")
        + (f" ({info.get('n_excluded')} excluded for a missing clinical value)" if info.get("n_excluded") else "")
        + f"; they were divided into training and test sets ({info.get('source', 'split')})."
    )
    parts.append(unit_text(info))
    if cfg.sr.enabled:
        p = dict(cfg.sr.params or {})
        parts.append(
            "A self-supervised super-resolution GAN (SMORE-style degradation-and-restore) was trained on the "
            + ("training images only" if cfg.sr.fit_on == "train" else
               "images of the whole cohort, test images included, once for all split seeds (sr.fit_on: all; it learns "
               "from the images alone, never from labels)")
            + (f" ({', '.join(f'{k}={v}' for k, v in sorted(p.items()))})" if p else "")
            + " and applied to every image, giving super-resolved (SR) images beside the originals (OR)."
        )
    if cfg.radiomics.enabled:
        parts.append(
            "PyRadiomics features were extracted from the lesion masks on OR"
            + (" and SR" if cfg.sr.enabled else "")
            + " images"
            + (f" with the parameter file {Path(cfg.radiomics.params).name}" if cfg.radiomics.params else " (package default parameters)")
            + "; features with a Mann–Whitney p < 0.05 were z-scored, pruned at |r| > 0.9 and fed to "
            + " and ".join({"lr": "logistic regression", "svm": "a support vector machine"}[m] for m in cfg.radiomics.models)
            + "."
        )
    if cfg.deep.enabled:
        extra = dict(cfg.deep.params or {})
        parts.append(
            f"{' and '.join(names.arch_label(a) for a in cfg.deep.archs)} "
            f"were trained on {' and '.join(i.upper() for i in cfg.deep.images)} lesion ROIs "
            f"(weights: {cfg.deep.weights}; {cfg.deep.epochs} epochs, batch size {cfg.deep.batch_size}, "
            f"SGD learning rate {cfg.deep.lr}"
            + (f"; {', '.join(f'{k}={v}' for k, v in sorted(extra.items()))}" if extra else "")
            + ")."
        )
    best = _record(results, "table2", "best_model")
    if best is not None:
        k = best.get("folds", cfg.validation.folds)
        rule = {
            "cv_auc": "the highest cross-validated training AUC",
            "test_auc": "the highest test-set AUC (the paper's rule)",
            "train_auc": "the highest apparent training-set AUC",
            "test_auc_cnn": "the highest test-set AUC among the CNNs",
        }[best["rule"]]
        parts.append(
            f"Every model was also cross-fitted: the training lesions were divided into {k} stratified folds "
            f"(seed {cfg.study.seed}, the same folds for every model), and each training lesion was scored by a model "
            f"fitted on the other {k - 1} folds (out-of-fold scores); test scores came from the model fitted on the "
            f"whole training set. Models were compared by AUC with DeLong {_level(cfg)}% confidence intervals (on the "
            f"training set both apparent and cross-validated), sensitivity, specificity and accuracy at the Youden "
            f"threshold of the out-of-fold training scores, frozen for the test set (Table 2; cross-validated on train). The model with {rule} ({best['label']}) provided the deep-learning score"
            + (
                f"; on the training set its out-of-fold scores entered the nomogram, so that the nomogram's "
                f"coefficient is fitted to scores of lesions the model had not seen."
                if best.get("train_score", cfg.nomogram.train_score) == "cross_fitted"
                else "; on the training set its fitted (in-sample) scores entered the nomogram, as in the paper, "
                "which lets an overfitted model's memorised scores inflate the nomogram's training performance."
            )
        )
        if best["rule"] in TEST_SET_RULES:
            parts.append(TEST_SET_CHOSE)
        parts.append(
            f"Because the nomogram takes the deep-learning score as given, the score was checked for signal: it was "
            f"flagged when the DeLong {_level(cfg)}% interval of the chosen model's cross-validated training AUC "
            f"reached 0.5 (score check), or when its coefficient in the nomogram was negative"
            + ("; a flag stops the study (nomogram.require_signal)." if cfg.nomogram.require_signal
               else "; a flag is reported as a warning.")
        )
    clin = ", ".join(cfg.cohort.schema.names)
    cats = "; ".join(f"{f.name}: {', '.join(f.ordered_levels)}, reference {f.reference}" for f in cfg.cohort.schema.categorical)
    if cats:  # TRIPOD+AI 10a: how predictors were handled
        parts.append(f"Categorical clinical factors entered every model with levels pre-specified in the study file ({cats}): "
                     "one coefficient, odds ratio and nomogram points value per level against the reference.")
    parts.append(
        f"Clinical factors ({clin}) and the deep-learning score were tested by univariate and multivariate logistic "
        f"regression (Table S2; odds ratios with Wald {_level(cfg)}% confidence intervals per unit of each factor and "
        f"per {DEEP_SCORE_OR_UNIT:g} of the score). "
        f"A clinical model ({clin}) and a deep-learning nomogram ({clin} and the deep-learning score) were fitted "
        f"on the training set with rms::lrm; their cut-offs came from "
        + ("the Youden index of their out-of-fold training risks (refitted over the same folds)"
           if cfg.nomogram.threshold == "youden" else f"a pre-specified risk of {cfg.nomogram.threshold:g}")
        + f". The deep-learning score's added value was tested on the training set by the likelihood-ratio test of "
        f"the nomogram against the clinical model (rms::lrtest; DeLong's test of nested models' training AUCs is "
        f"invalid), and on the test set by DeLong's test and the difference in net benefit over thresholds "
        f"{cfg.nomogram.dca_range[0]:g}-{cfg.nomogram.dca_range[1]:g} with a paired bootstrap over patients. Calibration was "
        f"assessed by {cfg.nomogram.calibration_b} bootstrap repetitions (rms::calibrate, seed {cfg.bootstrap_seed}) "
        f"on the training set; the test set was validated as held-out data by the same function as an external "
        f"cohort (external_validation: calibration-in-the-large and slope with {_level(cfg)}% CIs, Brier, the "
        f"Hosmer–Lemeshow test with df = {cfg.nomogram.hl_groups} groups, a smoothed curve with a bootstrap band, "
        f"classification at the frozen cut-offs); the training Hosmer–Lemeshow test ({cfg.nomogram.hl_groups} groups) "
        f"is apparent. Clinical "
        f"usefulness was assessed by decision curves (thresholds {cfg.nomogram.dca_thresholds[0]:g} to "
        f"{cfg.nomogram.dca_thresholds[1]:g} by {cfg.nomogram.dca_thresholds[2]:g}"
        + (
            f"; {_level(cfg)}% bootstrap percentile bands from {cfg.nomogram.dca_bootstraps} resamples of each set, "
            f"seed {cfg.bootstrap_seed}, as rmda computes them)."
            if cfg.nomogram.dca_bootstraps > 0
            else "; no confidence bands)."
        )
    )
    parts.append(
        f"Both models were validated internally by Harrell's optimism-corrected bootstrap (rms::validate, "
        f"B = {cfg.nomogram.calibration_b}, seed {cfg.bootstrap_seed}): each model was refitted on every bootstrap "
        f"resample of the training set, the mean drop of its indexes from the resample to the original training set "
        f"(the optimism) was subtracted from the apparent indexes, giving optimism-corrected AUC (Dxy/2 + 0.5), "
        f"calibration slope and Brier score (table Internal validation). The refits take the deep-learning score "
        f"as given, so they correct for fitting the nomogram, not for training the image model."
    )
    parts.append(f"All confidence intervals are {_level(cfg)}%. All random steps used seed {cfg.study.seed}.")
    parts.append(figures_text(cfg, results))
    return " ".join(p for p in parts if p)


def unit_text(info: dict) -> str:
    """Which unit the split, the folds and the bootstraps resampled, from the split stage's ``split_info``."""
    if info.get("unit") == "patient":
        both = int(info.get("n_patients_both_sides") or 0)
        side = (f"the manifest's own split put {both} patient(s) on both sides of train/test; all lesions of a patient "
                if both else "all lesions of a patient went to the same side of the train/test split and ")
        return ("The patient was the unit of resampling: " + side + "went to the same cross-fitting fold "
                "(stratified by the patient's label, malignant if any lesion was), and every bootstrap "
                "(rms::calibrate, rms::validate, the decision-curve bands) drew patients, each with all their lesions.")
    if info.get("unit") == "lesion":
        return ("The manifest gave no patient_id, so each lesion was taken as its own patient: the split, the "
                "cross-fitting folds and the bootstraps resampled lesions.")
    return ""


def figures_text(cfg, results) -> str:
    """Which software drew the figures: every one in R (ggplot2, the rms nomogram), from the study's board."""
    r_figs = [f for f, stage in (("3", "table2"), ("6", "nomogram"), ("7", "nomogram")) if stage in results]
    if any(n.startswith("deep_") for n in results):
        r_figs[1:1] = ["4", "5"]
    if not r_figs:
        return ""
    try:
        from .. import stats

        v = stats.r_versions()
    except Exception:  # the report still renders without R
        v = {}
    ver = lambda k: f" {v[k]}" if v.get(k) else ""  # noqa: E731
    names = r_figs[0] if len(r_figs) == 1 else ", ".join(r_figs[:-1]) + " and " + r_figs[-1]
    return (
        f"Figure{'s' if len(r_figs) > 1 else ''} {names} {'were' if len(r_figs) > 1 else 'was'} drawn in R{ver('R')} with ggplot2{ver('ggplot2')} by the "
        f"srnomogram R package{ver('srnomogram')} from the study's board alone (study_figures: roc_plot for the ROC curves with "
        f"pROC, nomogram_plot for the rms{ver('rms')} nomogram, calibration_plot for the apparent and bootstrap "
        f"bias-corrected curves of rms::calibrate and the test set's lowess curve, dca_plot for the decision curves "
        f"and their bootstrap bands"
        + ("; the CNNs' loss histories and Grad-CAM maps from their pins" if "4" in r_figs else "")
        + "); inst/scripts/figures_from_board.R redraws them from the board with one call."
    )


def _level(cfg) -> str:
    """The study's confidence level in percent (``nomogram.alpha`` = 0.05 gives '95')."""
    return f"{100 * (1 - cfg.nomogram.alpha):.10g}"


TEST_SET_CHOSE = (
    "The test set chose the model (nomogram.best_model_rule: test_auc, the paper's rule), so the test AUCs of "
    "the chosen model and of the nomogram are optimistic: they are not held-out estimates."
)


def table_notes(cfg, results) -> dict:
    """Notes printed under tables, saying how an estimate was obtained when that weakens it."""
    notes = {}
    best = _record(results, "table2", "best_model")
    if best is not None:
        note = (f"Training AUC: apparent (auc) and {best.get('folds', cfg.validation.folds)}-fold cross-validated "
                f"(cv_auc, out-of-fold scores); test AUC: held out. The deep-learning score is {best['label']}'s, "
                f"chosen by {best['rule']}.")
        if best["rule"] in TEST_SET_RULES:
            note += " " + TEST_SET_CHOSE
        notes["table2"] = note
    return notes


def score_warnings(results) -> list[str]:
    """The score check's findings, one plain line each: no cross-validated signal, negative coefficient.

    Read from the table2 stage's ``best_model`` record (``score_check``) and the nomogram stage's
    ``score_coefficient`` (``results``: :class:`BoardRecords`); empty when the deep-learning score passed both checks.
    """
    lines, label = [], "deep_score"
    best = _record(results, "table2", "best_model")
    if best is not None:
        label = best.get("label", label)
        check = best.get("score_check")
        if check is not None and check.get("no_signal") is not False:
            lines.append(no_signal_message(label, check))
    coef = _record(results, "nomogram", "score_coefficient")
    if coef is not None and coef["negative"]:
        lines.append(negative_coefficient_message(label, coef))
    return lines


def _warning_box(lines, title="Warning: the deep-learning score.") -> str:
    items = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
    return f'<div class="warning" role="alert"><strong>{html.escape(title)}</strong>{items}</div>'


# the warning box stands above these tables (Table 2 and the first of the nomogram's results)
WARNING_BEFORE = ("table2", "nomogram_coefficients")


def _versions():
    from ..board import provenance

    prov = provenance()
    v = dict(prov["versions"])
    v["srnomogram"] = prov["srnomogram_version"]
    if prov["git_sha"]:
        v["git"] = prov["git_sha"][:12]
    try:
        from .. import stats

        for k, val in stats.r_versions().items():
            v[f"R: {k}" if k != "R" else "R"] = val
    except Exception:  # the report still renders without R
        pass
    return v


def declared_pins(cfg) -> dict:
    """``{name: Pin}`` of every pin a study with these settings declares (its stages and the repeated splits)."""
    from .repeats import repeats_stage
    from .stages import build_stages

    return {p.name: p for s in [*build_stages(cfg), repeats_stage(cfg)] for p in s.pins}


def table_title(name: str, cfg, pins=None) -> str:
    """The report title of a pin (declared in its stage's ``pins=``), with the study's confidence level and
    bootstrap B filled in; ``pins`` (``{name: Pin}``) defaults to :func:`declared_pins`."""
    pin = (declared_pins(cfg) if pins is None else pins).get(name)
    return pin.title_for(cfg) if pin is not None else name


FIGURE_TITLES = {
    "figure3_roc_models": "Figure 3. ROC curves of the radiomics and deep-learning models",
    "figure4_loss": "Figure 4. Training loss of the CNNs",
    "figure5_gradcam": "Figure 5. Grad-CAM of test lesions",
    "figure6_nomogram": "Figure 6. Deep-learning nomogram",
    "figure7_validation": "Figure 7. ROC, calibration and decision curves: clinical model vs nomogram",
}


@dataclass(frozen=True)
class ExternalSection:
    """What :func:`write_report` needs, beside the pins, to write the report of ``srnomogram validate``.

    ``title``: the page's heading; ``methods``: the external methods text; ``estimand`` and
    ``ci_method``: how every row and interval was obtained; ``study``: the applied study's folder;
    ``options``: the run's settings (shown with the study's own under Settings).
    """

    title: str
    methods: str
    estimand: str
    ci_method: str
    study: Path
    options: dict


def write_report(cfg, results, tables: dict, figures: dict, log, path, calculator=None, pins=None, board_dir=None,
                 external: ExternalSection | None = None) -> Path:
    """Write ``report.html``: main result, methods, tables, figures, TRIPOD+AI, run, versions, settings.

    Every table is a pin of the board (``board_dir``, default ``<study.output>/board``): ``tables``
    holds them (``{pin: DataFrame}``, as :func:`srnomogram.study.pipeline.export_tables` reads them)
    and ``pins`` says where each goes: the :class:`~srnomogram.study.cache.Pin` its stage declares,
    with its title, section (``tables``, ``repeats``, ``external``; the main result and the TRIPOD+AI
    tables, pins ``main_result``, ``participant_flow``, ``sample_size``, are read from the board) and
    order. A table without a declared pin goes to the Tables section under its name. ``figures``:
    ``{name: PNG}``; ``figure_repeated_splits`` goes to the repeated-splits section.

    ``external``: the report of ``srnomogram validate`` (the study ``cfg`` applied to another
    cohort): the same page, with the external section (:class:`ExternalSection`; its pins are those
    of section ``external``) in place of the study's main result, methods, tables and figures.
    """
    from .cache import Pin

    declared = declared_pins(cfg) if external is None else {}  # an external run's pins all come in ``pins``
    declared.update({p.name: p for p in (pins or ())})
    placed = {n: declared.get(n) or Pin(n, section="tables", order=float("inf")) for n in tables}
    board_dir = Path(cfg.study.output) / "board" if board_dir is None else Path(board_dir)
    if external is None:
        title = cfg.report.title or f"srnomogram study: {cfg.study.name}"
        meta = f"config hash <code>{cfg.config_hash[:12]}</code>"
        body = _study_sections(cfg, results, tables, figures, placed, board_dir, calculator)
        settings = cfg.to_dict()
    else:
        title = external.title
        meta = f"study <code>{html.escape(str(external.study))}</code> · config hash <code>{cfg.config_hash[:12]}</code>"
        body = _external_sections(cfg, external, tables, figures, placed)
        settings = {"validate": external.options, "study": cfg.to_dict()}
    body.append("<h2>Run</h2>" + _table_html(pd.DataFrame(log)))
    versions = _versions()
    body.append("<h2>Software versions</h2>" + _table_html(pd.DataFrame({"software": list(versions), "version": list(versions.values())})))
    body.append("<h2>Settings</h2><pre>" + html.escape(json.dumps(settings, indent=1, default=str)) + "</pre>")
    head = (f"<h1>{html.escape(title)}</h1>"
            f'<p class="meta">Generated {_dt.datetime.now().strftime("%Y-%m-%d %H:%M")} · {meta} · board <code>board/</code></p>')
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{CSS}</style></head><body>{head}{''.join(body)}</body></html>")
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path


def _section_tables(cfg, tables: dict, placed: dict, section: str, notes=None, warnings=()) -> list:
    """The tables of one report section, in their pins' order: each under its title, or, for a pin
    with ``show=False`` (long tables), its CSV named. ``warnings`` go in a box before the first of
    :data:`WARNING_BEFORE`."""
    out = []
    for name in sorted((n for n, p in placed.items() if p.section == section), key=lambda n: placed[n].order):
        pin, df = placed[name], tables[name]
        if warnings and name in WARNING_BEFORE:
            out.append(_warning_box(warnings))
        if not pin.show:  # long tables: CSV only
            out.append(f'<p class="meta">{html.escape(pin.title_for(cfg))}: tables/{html.escape(name)}.csv (pin {html.escape(name)})</p>')
            continue
        note = f'<p class="note">{html.escape(notes[name])}</p>' if notes and name in notes else ""
        out.append(f"<h3>{html.escape(pin.title_for(cfg))}</h3>{_table_html(df)}{note}"
                   f'<p class="meta">CSV: tables/{html.escape(name)}.csv (pin {html.escape(name)})</p>')
    return out


def _study_sections(cfg, results, tables, figures, placed, board_dir, calculator) -> list:
    """The study's own sections: main result, methods, tables, figures, repeated splits, TRIPOD+AI, calculator."""
    body = [main_result_html(cfg, results, board_dir)]
    methods = " ".join(t for t in (recipe_text(cfg), methods_text(cfg, results)) if t)
    body.append("<h2>Methods</h2><p>" + html.escape(methods) + "</p>")
    body.append("<h2>Tables</h2>")
    warnings = score_warnings(results)
    for line in warnings:
        logger.warning(line)
    if warnings and not any(n in tables for n in WARNING_BEFORE):
        body.append(_warning_box(warnings))
    body += _section_tables(cfg, tables, placed, "tables", notes=table_notes(cfg, results), warnings=warnings)
    body.append("<h2>Figures</h2>")
    for name, png in figures.items():
        if name != "figure_repeated_splits":
            body.append(_img(png, FIGURE_TITLES.get(name, name)))
    if "repeated_splits" in tables and "repeated_splits_summary" in tables:
        body.append(repeats_html(cfg, {"rows": tables["repeated_splits"], "summary": tables["repeated_splits_summary"],
                                       "figure": figures.get("figure_repeated_splits")}, _table_html, _img))
    present = {"Main result", "Methods", *(CHECKLIST_NAMES[n] for n in tables if n in CHECKLIST_NAMES)}
    if figures:
        present.add("Figures")
    if calculator is not None:
        present.add("Nomogram calculator")
    body.append(tripod_html(cfg, results, board_dir, present))
    if calculator is not None:
        link = html.escape(Path(calculator).name)
        body.append(f'<h2>Nomogram calculator</h2><p>Open <a href="{link}">{link}</a> '
                    "(works offline) to compute a lesion's points and risk.</p>")
    return body


#: The figures of ``srnomogram validate``, drawn in R from its board.
EXTERNAL_FIGURE_TITLES = {
    "external_roc": "External ROC curves of all models",
    "external_calibration": "External calibration curves (lowess, with bootstrap {level}% bands)",
    "external_dca": "External decision curves (bootstrap {level}% bands of the clinical model and nomogram)",
}


def _external_sections(cfg, ext: ExternalSection, tables, figures, placed) -> list:
    """The sections of ``srnomogram validate``'s report: methods, warnings, the pins of section
    ``external`` (model id and label, as in the study's tables) and the figures drawn in R."""
    from .cache import Pin

    body = ["<h2>Methods</h2><p>" + html.escape(ext.methods) + "</p>"]
    w = tables.get("warnings", pd.DataFrame({"message": []}))
    body.append("<h2>Warnings</h2>" + ("<ul>" + "".join(f"<li>{html.escape(m)}</li>" for m in w["message"]) + "</ul>"
                                        if len(w) else "<p>No value outside the training ranges.</p>"))
    body.append("<h2>Tables</h2><p>Estimand: " + html.escape(str(ext.estimand)) + "; CIs: " + html.escape(str(ext.ci_method)) + ".</p>")
    body += _section_tables(cfg, tables, placed, "external")
    body.append("<h2>Figures</h2>")
    for name, png in figures.items():
        body.append(_img(png, Pin(name, title=EXTERNAL_FIGURE_TITLES.get(name)).title_for(cfg)))
    return body


# ----------------------------------------------------------------------------------- main result
#: The paper's two choices, each with the warning the report shows when a study makes it.
RECIPE_WARNINGS = {
    "best_model_rule": (
        "The test set chose the model (nomogram.best_model_rule: {value}, the paper's rule). The deep-learning score "
        "comes from the model with the highest test AUC, so the test AUCs of that model and of the nomogram built on it "
        "are optimistic: they are not held-out estimates, and the nomogram − clinical model difference is biased upwards."
    ),
    "train_score": (
        "In-sample deep-learning scores entered the nomogram (nomogram.train_score: fitted, the paper's choice). An image "
        "model's scores of its own training lesions are memorised, so the nomogram's training fit, rms::calibrate and "
        "rms::validate (which refit the nomogram, never the image model) look good whatever the score's real signal: "
        "they are uninformative here."
    ),
}


RECIPE_TITLES = {"best_model_rule": "Warning: the test set chose the model (the paper's recipe).",
                 "train_score": "Warning: in-sample training scores (the paper's recipe)."}


def recipe_warnings(cfg, keys: bool = False) -> list:
    """One warning per paper choice the study makes: the test set chose the model; in-sample training scores.

    With ``keys``, ``(setting, text)`` pairs.
    """
    out = []
    if cfg.nomogram.best_model_rule in TEST_SET_RULES:
        out.append(("best_model_rule", RECIPE_WARNINGS["best_model_rule"].format(value=cfg.nomogram.best_model_rule)))
    if cfg.nomogram.train_score == "fitted":
        out.append(("train_score", RECIPE_WARNINGS["train_score"]))
    return out if keys else [text for _, text in out]


def recipe_text(cfg) -> str:
    """The methods' sentence on the recipe: "paper recipe" when ``study.recipe: paper``."""
    if getattr(cfg.study, "recipe", "default") != "paper":
        return ""
    return ("The study ran the paper recipe (study.recipe: paper): the model with the highest test-set AUC provided the "
            "deep-learning score (nomogram.best_model_rule: test_auc) and its in-sample training scores entered the "
            "nomogram (nomogram.train_score: fitted), as Yang & Ma did; both weaken the estimates (see the warnings).")


def _read_board_pin(board_dir, name):
    """A pin of the study's board, or None when the board or the pin is absent."""
    from ..board import list_pins, read_pin

    if board_dir is None or not Path(board_dir).is_dir() or name not in list_pins(board_dir):
        return None
    return read_pin(board_dir, name)


def _signed(v) -> str:
    return "" if not np.isfinite(v) else f"{v:+.3f}".replace("-", "−")


def _interval(row, level) -> str:
    lo, hi = float(row["lower"]), float(row["upper"])
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "no interval"
    return f"{level}% CI {lo:.3f} to {hi:.3f}".replace("-", "−")


def _seeds_text(row, signed=True) -> str:
    lo, hi = float(row["lower"]), float(row["upper"])
    mean = _signed(float(row["estimate"])) if signed else f"{float(row['estimate']):.3f}"
    text = f"mean {mean} over {int(row['n_seeds'])} split seeds (2.5–97.5 percentile range {lo:.3f} to {hi:.3f})"
    if np.isfinite(row.get("share_positive", np.nan)):
        text += f", above 0 in {100 * float(row['share_positive']):.0f}% of seeds"
    return text.replace("-", "−")


def main_result_html(cfg, results, board_dir) -> str:
    """The report's first section: the paper's two questions answered from the ``main_result`` pin, in words."""
    level = _level(cfg)
    parts = ["<h2>Main result</h2>"]
    table = _read_board_pin(board_dir, "main_result")
    for key, line in recipe_warnings(cfg, keys=True):  # one box per choice of the paper's
        parts.append(_warning_box([line], title=RECIPE_TITLES[key]))
    if table is None:
        parts.append('<p class="note">The board holds no main_result pin: the study stopped before its main_result stage.</p>')
        return "".join(parts)
    t = table.set_index("estimand")
    has = lambda k: k in t.index  # noqa: E731
    p = []
    p.append("The study asks two questions: do models built on super-resolved (SR) images discriminate better than the "
             "same models built on the original (OR) images, and how much does the deep-learning nomogram add to the "
             "clinical model? Each answer below is a paired difference on the same lesions, with how it was obtained.")
    parts.append(f"<p>{html.escape(p[0])}</p>")

    # question 1: SR vs OR
    q1 = [e for e in t.index if e.startswith("delta_auc_sr_or_") and not e.endswith("_seeds")]
    parts.append("<h3>1. Do super-resolved images give better models?</h3>")
    if not q1:
        parts.append("<p>Not answered: this study built no model on both SR and OR images (sr.enabled: false, or no "
                     "model family on both image sets).</p>")
    else:
        items = []
        for e in q1:
            r = t.loc[e]
            text = (f"{r['label'].split(':')[0]}: {_signed(float(r['estimate']))} ({_interval(r, level)}; {r['method']})")
            if has(e + "_seeds"):
                text += f"; {_seeds_text(t.loc[e + '_seeds'])}"
            items.append(f"<li>{html.escape(text)}</li>")
        parts.append("<p>Test AUC of the SR model minus that of the OR model of the same family (positive: SR better):</p>"
                     f"<ul>{''.join(items)}</ul>")

    # question 2: nomogram vs clinical model
    parts.append("<h3>2. How much does the nomogram add to the clinical factors?</h3>")
    nom, cli, d = (t.loc[k] for k in ("auc_nomogram_test", "auc_clinical_test", "delta_auc_nomogram_clinical_test"))
    text = (f"Test AUC: nomogram {float(nom['estimate']):.3f} ({_interval(nom, level)}), clinical model "
            f"{float(cli['estimate']):.3f} ({_interval(cli, level)}); difference {_signed(float(d['estimate']))} "
            f"({_interval(d, level)}; {d['method']}).")
    if has("delta_auc_nomogram_clinical_test_seeds"):
        text += f" Over split seeds: {_seeds_text(t.loc['delta_auc_nomogram_clinical_test_seeds'])}."
    else:
        # a DeLong interval is clipped at 1: its unclipped side gives the half-width
        half = max(float(nom["estimate"]) - float(nom["lower"]), float(nom["upper"]) - float(nom["estimate"]))
        half_d = (float(d["upper"]) - float(d["lower"])) / 2
        moves = f"a test AUC by about ±{half:.2f}" + (f" and this difference by about ±{half_d:.2f}" if np.isfinite(half_d) else "")
        text += (f" This is one split: with a test set of {int(nom['n'])} lesions, another split of the same cohort would "
                 f"move {moves} (half-width{'s' if np.isfinite(half_d) else ''} of the {level}% interval"
                 f"{'s' if np.isfinite(half_d) else ''}); repeated splits (--repeats N) show how much.")
    parts.append(f"<p>{html.escape(text)}</p>")
    extra = []
    for e in ("lr_test_deep_score", "delta_net_benefit_mean"):
        if has(e):
            r = t.loc[e]
            if e == "lr_test_deep_score":  # a test: its statistic, df and p are in its method text
                extra.append(f"<li>{html.escape(f'{r.label}: {r.method}')}</li>")
            else:
                extra.append(f"<li>{html.escape(f'{r.label}: {_signed(float(r.estimate))} ({_interval(r, level)}); {r.method}')}</li>")
    for e in ("calibration_slope_nomogram_test_seeds", "citl_nomogram_test_seeds"):
        if has(e):
            extra.append(f"<li>{html.escape(t.loc[e, 'label'] + ': ' + _seeds_text(t.loc[e], signed=False))}</li>")
    if extra:
        parts.append(f"<ul>{''.join(extra)}</ul>")

    # caveats
    caveats = ["The optimism correction (rms::validate) refits the nomogram on bootstrap resamples but holds the "
               "deep-learning score fixed: it corrects for fitting the nomogram, not for training the image model."]
    if cfg.sr.enabled and cfg.sr.fit_on == "all":
        caveats.append("The SR GAN learned from every image of the cohort, test images included (sr.fit_on: all; from "
                       "the images alone, never from labels), once for all split seeds: the SR − OR differences are "
                       "held out for the labels, not for the images.")
    if recipe_warnings(cfg):
        caveats.append("The paper's recipe weakens these estimates: see the warning boxes above.")
    caveats += score_warnings(results)
    parts.append("<h3>Caveats</h3><ul>" + "".join(f"<li>{html.escape(c)}</li>" for c in caveats) + "</ul>")
    parts.append(f"<h3>{html.escape(table_title('main_result', cfg))}</h3>{_table_html(table)}"
                 '<p class="meta">CSV: tables/main_result.csv (pin main_result)</p>')
    return "".join(parts)


# ----------------------------------------------------------------------------------- TRIPOD+AI
#: How the TRIPOD+AI checklist names the report's tables.
CHECKLIST_NAMES = {"table1": "Table 1", "table2": "Table 2", "table_s2": "Table S2",
                   "nomogram_coefficients": "Nomogram and clinical model coefficients", "calibration_summary": "Calibration",
                   "internal_validation": "Internal validation", "heldout_subgroups": "Subgroups"}


def tripod_checklist(cfg, results, present) -> pd.DataFrame:
    """The TRIPOD+AI checklist (Collins et al., BMJ 2024;385:e078378): each item and where the report answers it.

    ``present`` is the set of the report's sections and tables; items the report cannot answer from
    the study say "to be completed by the authors", or quote the study's own free-text settings
    (``study.intended_use``, ``cohort.outcome``, ``cohort.source``).
    """
    todo = "to be completed by the authors"

    def where(*names, text=None):
        got = [n for n in names if n in present]
        return text if text is not None else (", ".join(got) if got else todo)

    def setting(value, key):
        return f"{key}: {value}" if value else f"{todo} (setting {key})"

    sr = "super-resolution: Methods" if cfg.sr.enabled else None
    rows = [
        ("1", "Title", todo),
        ("2", "Abstract", todo),
        ("3a", "Background: healthcare context and rationale", todo),
        ("3b", "Target population, intended purpose and users", setting(cfg.study.intended_use, "study.intended_use")),
        ("3c", "Known health inequalities", todo),
        ("4", "Objectives (development and/or evaluation)", where("Main result")),
        ("5a", "Data sources", setting(cfg.cohort.source, "cohort.source")),
        ("5b", "Dates of the data", setting(cfg.cohort.source, "cohort.source")),
        ("6a", "Setting and centres", setting(cfg.cohort.source, "cohort.source")),
        ("6b", "Eligibility criteria", where("Participant flow")),
        ("7", "Data preparation and pre-processing", ", ".join(x for x in ("Methods", sr) if x)),
        ("8a", "Outcome definition, how and when assessed", setting(cfg.cohort.outcome, "cohort.outcome")),
        ("9a", "Choice of predictors", where("Methods", "Table 1", "Table S2")),
        ("10", "Sample size", where("Sample size")),
        ("11", "Missing data", where("Participant flow", text=(
            "Participant flow (lesions with a missing clinical value excluded; complete-case analysis)"
            if "Participant flow" in present else None))),
        ("12a", "How the data were used (partitioning)", where("Methods", "Participant flow")),
        ("12b", "Model type, building steps, tuning, internal validation", where("Methods", "Internal validation")),
        ("12c", "Heterogeneity across clusters/centres", todo),
        ("12d", "Performance measures (discrimination, calibration, clinical utility)", where("Table 2", "Calibration", "Figures")),
        ("13", "Class imbalance", where("Participant flow", text="none applied; class counts in Participant flow"
                                        if "Participant flow" in present else None)),
        ("14", "Fairness", where("Subgroups", text=None if "Subgroups" in present else f"{todo} (setting study.subgroups)")),
        ("15", "Model output and thresholds", where("Nomogram calculator", "Table 2")),
        ("16", "Differences between development and evaluation data", where("Table 1")),
        ("17", "Ethical approval", todo),
        ("18a-f", "Funding, conflicts, protocol, registration, data and code sharing",
         f"code: srnomogram (Software versions); the rest {todo}"),
        ("19", "Patient and public involvement", todo),
        ("20a", "Participant flow, with and without the outcome", where("Participant flow")),
        ("20b", "Characteristics of the participants", where("Table 1")),
        ("21", "Numbers of participants and events in each analysis", where("Participant flow", "Sample size")),
        ("22", "Full model specification", where("Nomogram and clinical model coefficients", "Nomogram calculator")),
        ("23a", "Performance with confidence intervals", where("Main result", "Table 2", "Calibration", "Subgroups")),
        ("24", "Model updating", todo),
        ("25", "Interpretation", where("Main result", text=f"Main result (estimates); {todo}" if "Main result" in present else None)),
        ("26", "Limitations", where("Main result", text=f"Main result: Caveats; {todo}" if "Main result" in present else None)),
        ("27a-c", "Usability in context", todo),
    ]
    return pd.DataFrame(rows, columns=["item", "topic", "where the report answers it"])


def tripod_html(cfg, results, board_dir, present) -> str:
    """The report's TRIPOD+AI section: checklist, participant flow and sample size (those two from the board)."""
    flow = _read_board_pin(board_dir, "participant_flow")
    size = _read_board_pin(board_dir, "sample_size")
    if flow is not None:
        present = {*present, "Participant flow"}
    if size is not None:
        present = {*present, "Sample size"}
    parts = ["<h2>TRIPOD+AI</h2>",
             '<p class="note">Reporting checklist of TRIPOD+AI (Collins GS et al., BMJ 2024;385:e078378): where this report '
             "answers each item; the others are for the authors to complete. Free-text items come from the settings "
             "study.intended_use, cohort.outcome and cohort.source.</p>",
             f"<h3>TRIPOD+AI checklist</h3>{_table_html(tripod_checklist(cfg, results, present))}"]
    for name, df in (("participant_flow", flow), ("sample_size", size)):
        if df is not None:
            parts.append(f"<h3>{html.escape(table_title(name, cfg))}</h3>{_table_html(df)}"
                         f'<p class="meta">CSV: tables/{name}.csv (pin {name})</p>')
    return "".join(parts)


def repeats_html(cfg, rep: dict, table_html, img) -> str:
    """The report's "Repeated splits" section (``rep``: the repeated splits' ``rows``, ``summary`` and ``figure``)."""
    n = int(rep["rows"]["seed"].nunique())
    text = (
        f"The split-dependent stages were rerun for {n} split seeds (0 to {n - 1}): a stratified 8:2 hash split "
        f"(test_size {cfg.split.test_size}; the manifest's own split column is not used here), "
        + ("super-resolution retrained on each seed's training images, " if cfg.sr.enabled else "")
        + "every model refitted and cross-fitted on each seed's training set, the model chosen by "
        f"{cfg.nomogram.best_model_rule}, and the clinical model and nomogram refitted. Shared across seeds: only the "
        "radiomics features of each lesion (label-free, computed once). The test AUCs below are held-out "
        "estimates per seed; their spread shows how much one split's estimate can vary."
    )
    if cfg.nomogram.best_model_rule in TEST_SET_RULES:
        text += " The test set chose the model in each seed, so the nomogram's test AUCs are optimistic."
    parts = ["<h2>Repeated splits</h2>", f"<p>{html.escape(text)}</p>",
             "<h3>Test AUC over split seeds</h3>", table_html(rep["summary"]),
             '<p class="meta">CSV: tables/repeated_splits_summary.csv (summary), tables/repeated_splits.csv (model × seed)</p>']
    if rep.get("figure"):
        parts.append(img(rep["figure"], "Test AUC of every model across split seeds"))
    return "".join(parts)


# ----------------------------------------------------------------------------------- calculator
def script_json(obj) -> str:
    """JSON for a ``<script>`` element: ``<``, ``>``, ``&``, U+2028 and U+2029 as ``\\uXXXX`` escapes.

    The parsed value is unchanged, but no user string (a label, a column name) can close the
    script element (``</script>``), open a comment (``<!--``) or end a JavaScript line.
    """
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False)
    for ch in "<>&\u2028\u2029":
        text = text.replace(ch, f"\\u{ord(ch):04x}")
    return text


# User strings (labels, variable names) reach the page only through textContent and setAttribute,
# never innerHTML, so they show as text whatever they contain.
CALC_JS = r"""
const SPEC = __SPEC__;
function interp(xs, ps, x){
  if (xs.length === 1) return ps[0];
  let i = 0; while (i < xs.length - 2 && x > xs[i+1]) i++;
  const t = (x - xs[i]) / (xs[i+1] - xs[i]);
  return ps[i] + t * (ps[i+1] - ps[i]);
}
function compute(){
  let lp = SPEC.intercept, total = 0, ok = true;
  for (const p of SPEC.predictors){
    const raw = document.getElementById('in_' + p.name).value;
    let pts;
    if (p.type === 'categorical'){
      const i = p.levels.indexOf(raw);  // the select offers only the levels, and '' (not chosen)
      if (i < 0) { ok = false; document.getElementById('pts_' + p.name).textContent = ''; continue; }
      lp += p.coef[i];
      pts = p.points[i];
    } else {
      const v = parseFloat(raw);
      if (!isFinite(v)) { ok = false; continue; }
      lp += p.coef * v;
      pts = interp(p.x, p.points, v);
    }
    total += pts;
    document.getElementById('pts_' + p.name).textContent = pts.toFixed(1);
  }
  const risk = 1 / (1 + Math.exp(-lp));
  document.getElementById('total').textContent = ok ? total.toFixed(1) : '';
  document.getElementById('risk').textContent = ok ? (100 * risk).toFixed(1) + ' %' : 'enter every value';
  document.getElementById('risk').setAttribute('data-risk', ok ? risk.toPrecision(12) : '');
}
function fromHash(){
  const q = new URLSearchParams(location.hash.slice(1));
  for (const p of SPEC.predictors){ if (q.has(p.name)) document.getElementById('in_' + p.name).value = q.get(p.name); }
}
window.addEventListener('DOMContentLoaded', () => {
  const form = document.getElementById('form');
  for (const p of SPEC.predictors){
    const row = document.createElement('tr');
    const label = document.createElement('label');
    label.setAttribute('for', 'in_' + p.name);
    label.textContent = p.label;
    let input;
    if (p.type === 'categorical'){  // one option per pre-specified level
      input = document.createElement('select');
      const none = document.createElement('option');
      none.value = ''; none.textContent = 'choose';
      input.appendChild(none);
      for (const lv of p.levels){
        const o = document.createElement('option');
        o.value = lv; o.textContent = lv;
        input.appendChild(o);
      }
    } else {
      input = document.createElement('input');
      input.type = 'number'; input.step = 'any';
    }
    input.id = 'in_' + p.name;
    const pts = document.createElement('td');
    pts.id = 'pts_' + p.name;
    const cell = child => { const td = document.createElement('td'); td.appendChild(child); return td; };
    row.append(cell(label), cell(input), pts);
    form.appendChild(row);
  }
  fromHash();
  document.querySelectorAll('input, select').forEach(e => { e.addEventListener('input', compute); e.addEventListener('change', compute); });
  compute();
});
"""


def write_calculator(cfg, results, path, board_dir=None) -> Path | None:
    """Write the study's ``calculator.html`` from its fitted nomogram, the board's ``nomogram_points`` pin
    (see :func:`calculator_page`); None when the study has no nomogram stage."""
    if "nomogram" not in results:
        return None
    board_dir = Path(cfg.study.output) / "board" if board_dir is None else Path(board_dir)
    points = _read_board_pin(board_dir, "nomogram_points")
    if points is None:
        return None
    labels = cfg.cohort.schema.labels(cfg.cohort.clinical_labels)  # a factor's own label and unit first
    labels.setdefault("deep_score", "Deep-learning score (0-1)")
    return calculator_page(points, path, title=f"Nomogram calculator: {cfg.study.name}", labels=labels)


def calculator_page(points: pd.DataFrame, path, title="Nomogram calculator", labels=None) -> Path:
    """Write an offline calculator page: enter the predictors, see each one's points, the total and the risk.

    A numeric predictor is a number field; a categorical one (an R factor) a select box of its levels.
    Values can be passed in the URL hash (``calculator.html#age=55&shape=irregular&deep_score=0.7``);
    the risk is written into ``#risk`` (text, percent) and its ``data-risk`` attribute (probability).
    """
    spec = calculator_spec(points, labels)
    page = f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{CSS} input{{width:8em}}</style><script>{CALC_JS.replace('__SPEC__', script_json(spec))}</script></head>
<body><h1>{html.escape(title)}</h1>
<p>Risk of malignancy from the deep-learning nomogram fitted on the training set
({html.escape(' + '.join(p['name'] for p in spec['predictors']))}). For research use.</p>
<table><thead><tr><th>Predictor</th><th>Value</th><th>Points</th></tr></thead><tbody id="form"></tbody>
<tfoot><tr><th>Total points</th><td></td><td id="total"></td></tr>
<tr><th>Risk of malignancy</th><td></td><td id="risk" data-risk=""></td></tr></tfoot></table>
</body></html>"""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path


