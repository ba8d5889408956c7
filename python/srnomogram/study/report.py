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
from pathlib import Path

import numpy as np
import pandas as pd

from .. import names
from ..metrics import TEST_SET_RULES
from ..utils import atomic_path
from .stages import DEEP_SCORE_OR_UNIT, negative_coefficient_message, no_signal_message

logger = logging.getLogger(__name__)

CSS = """
body{font-family:Georgia,serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1,h2,h3{font-family:Helvetica,Arial,sans-serif}h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;margin-top:2em}
table{border-collapse:collapse;font-size:.82em;margin:1em 0}th,td{border:1px solid #ccc;padding:3px 6px;text-align:right}
th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #eee}
.meta{color:#666;font-size:.85em}code{background:#f6f6f6;padding:0 3px}.note{font-size:.9em;max-width:60em}
.warning{border:2px solid #b00020;background:#fdecee;color:#5a0010;padding:.6em 1em;margin:1em 0;max-width:60em}
"""


def _table_html(df: pd.DataFrame, digits=3) -> str:
    def fmt(v):
        if isinstance(v, (float, np.floating)):
            if np.isnan(v):
                return ""
            return f"{v:.{digits}g}" if abs(v) < 1e-3 and v != 0 else f"{v:.{digits}f}"
        return html.escape(str(v))

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = "".join("<tr>" + "".join(f"<td>{fmt(v)}</td>" for v in row) + "</tr>" for row in df.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"><figcaption>{html.escape(alt)}</figcaption></figure>'


def methods_text(cfg, results) -> str:
    """Methods paragraph generated from the settings actually used (and what the cohort held)."""
    parts = []
    info = results["split"].json("split_info") if "split" in results else {}
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
    if "table2" in results:
        best = results["table2"].json("best_model")
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
    clin = ", ".join(cfg.cohort.clinical)
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
    """Which software drew which figure: Figures 3, 6 and 7 in R (ggplot2, the rms nomogram), the rest in matplotlib."""
    r_figs = [f for f, stage in (("3", "table2"), ("6", "nomogram"), ("7", "nomogram")) if stage in results]
    if not r_figs:
        return ""
    try:
        from .. import stats

        v = stats.r_versions()
    except Exception:  # the report still renders without R
        v = {}
    ver = lambda k: f" {v[k]}" if v.get(k) else ""  # noqa: E731
    import matplotlib

    names = r_figs[0] if len(r_figs) == 1 else ", ".join(r_figs[:-1]) + " and " + r_figs[-1]
    deep = any(n.startswith("deep_") for n in results)
    return (
        f"Figure{'s' if len(r_figs) > 1 else ''} {names} {'were' if len(r_figs) > 1 else 'was'} drawn in R{ver('R')} with ggplot2{ver('ggplot2')} by the "
        f"srnomogram R package{ver('srnomogram')} from the study's board (board_figures: roc_plot for the ROC curves with "
        f"pROC, nomogram_plot for the rms{ver('rms')} nomogram, calibration_plot for the apparent and bootstrap "
        f"bias-corrected curves of rms::calibrate and the test set's lowess curve, dca_plot for the decision curves "
        f"and their bootstrap bands); inst/scripts/figures_from_board.R redraws them from the board"
        + (f". Figures 4 and 5 (training loss, Grad-CAM) were drawn with matplotlib {matplotlib.__version__}." if deep else ".")
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
    if "table2" in results:
        best = results["table2"].json("best_model")
        note = (f"Training AUC: apparent (auc) and {best.get('folds', cfg.validation.folds)}-fold cross-validated "
                f"(cv_auc, out-of-fold scores); test AUC: held out. The deep-learning score is {best['label']}'s, "
                f"chosen by {best['rule']}.")
        if best["rule"] in TEST_SET_RULES:
            note += " " + TEST_SET_CHOSE
        notes["table2"] = note
    return notes


def score_warnings(results) -> list[str]:
    """The score check's findings, one plain line each: no cross-validated signal, negative coefficient.

    Read from the table2 stage's ``best_model.json`` (``score_check``) and the nomogram stage's
    ``score_coefficient.json``; empty when the deep-learning score passed both checks.
    """
    lines, label = [], "deep_score"
    if "table2" in results:
        best = results["table2"].json("best_model")
        label = best.get("label", label)
        check = best.get("score_check")
        if check is not None and check.get("no_signal") is not False:
            lines.append(no_signal_message(label, check))
    nom = results.get("nomogram")
    if nom is not None and (nom.path / "score_coefficient.json").exists():
        coef = nom.json("score_coefficient")
        if coef["negative"]:
            lines.append(negative_coefficient_message(label, coef))
    return lines


def _warning_box(lines) -> str:
    items = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
    return f'<div class="warning" role="alert"><strong>Warning: the deep-learning score.</strong>{items}</div>'


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


TABLE_TITLES = {
    "table1": "Table 1. Clinical characteristics",
    "table2": "Table 2. Diagnostic performance of the radiomics and deep-learning models",
    "score_check": "Score check: cross-validated training AUC (DeLong {level}% CI) of the model behind the "
    "deep-learning score (no_signal: the interval reaches 0.5)",
    "table_s2": "Table S2. Univariate and multivariate logistic regression (odds ratios, Wald {level}% CI)",
    "nomogram_coefficients": "Nomogram and clinical model coefficients (odds ratios, Wald {level}% CI)",
    "roc_auc": "AUC (DeLong {level}% CI) of the clinical model and the nomogram",
    "roc_comparison": "DeLong comparison: nomogram vs clinical model (test set, held-out)",
    "hosmer_lemeshow": "Hosmer–Lemeshow test (train: apparent, df = groups - 2; test: held-out, df = groups)",
    "calibration_summary": "Calibration: bootstrap (train) and held-out (test: calibration-in-the-large, slope)",
    "nomogram_thresholds": "Cut-offs of the clinical model and the nomogram (out-of-fold training risks or pre-specified) "
    "with their cross-validated training classification",
    "heldout_validation": "Held-out validation on the test set (external_validation at the frozen cut-offs, {level}% CI)",
    "added_value": "Added value of the deep-learning score: likelihood-ratio test (train) and mean difference in net "
    "benefit, nomogram - clinical model (test, paired bootstrap {level}% CI)",
    "net_benefit_difference": "Difference in net benefit, nomogram - clinical model, per threshold (test, paired "
    "bootstrap {level}% CI)",
    "internal_validation": "Internal validation (bootstrap, B = {B}): apparent and optimism-corrected indexes "
    "of the clinical model and the nomogram on the training set (rms::validate)",
}


def table_title(name: str, cfg) -> str:
    """The report title of a table, with the study's confidence level and bootstrap B filled in."""
    return TABLE_TITLES.get(name, name).format(level=_level(cfg), B=cfg.nomogram.calibration_b)
REPORT_ONLY_CSV = {"decision_curves"}
FIGURE_TITLES = {
    "figure3_roc_models": "Figure 3. ROC curves of the radiomics and deep-learning models",
    "figure4_loss": "Figure 4. Training loss of the CNNs",
    "figure5_gradcam": "Figure 5. Grad-CAM of test lesions",
    "figure6_nomogram": "Figure 6. Deep-learning nomogram",
    "figure7_validation": "Figure 7. ROC, calibration and decision curves: clinical model vs nomogram",
}


def write_report(cfg, results, tables: dict, figures: dict, log, path, calculator=None, repeats=None) -> Path:
    """Write ``report.html``: settings, methods, tables, figures, versions; nothing external.

    ``repeats`` (from :func:`srnomogram.study.repeats.run_repeats`) adds the repeated-splits section.
    """
    title = cfg.report.title or f"srnomogram study: {cfg.study.name}"
    body = [f"<h1>{html.escape(title)}</h1>"]
    body.append(f'<p class="meta">Generated {_dt.datetime.now().strftime("%Y-%m-%d %H:%M")} · config hash '
                f"<code>{cfg.config_hash[:12]}</code> · board <code>board/</code></p>")
    body.append("<h2>Methods</h2><p>" + html.escape(methods_text(cfg, results)) + "</p>")
    body.append("<h2>Tables</h2>")
    notes = table_notes(cfg, results)
    warnings = score_warnings(results)
    for line in warnings:
        logger.warning(line)
    if warnings and not any(n in tables for n in WARNING_BEFORE):
        body.append(_warning_box(warnings))
    for name, df in tables.items():
        if warnings and name in WARNING_BEFORE:
            body.append(_warning_box(warnings))
        if name in REPORT_ONLY_CSV:  # long tables: CSV only
            body.append(f'<p class="meta">{html.escape(name)}: tables/{html.escape(name)}.csv</p>')
            continue
        note = f'<p class="note">{html.escape(notes[name])}</p>' if name in notes else ""
        body.append(f"<h3>{html.escape(table_title(name, cfg))}</h3>{_table_html(df)}{note}"
                    f'<p class="meta">CSV: tables/{html.escape(name)}.csv</p>')
    body.append("<h2>Figures</h2>")
    for name, png in figures.items():
        body.append(_img(png, FIGURE_TITLES.get(name, name)))
    if repeats is not None:
        from .repeats import repeats_html

        body.append(repeats_html(cfg, repeats, _table_html, _img))
    if calculator is not None:
        link = html.escape(Path(calculator).name)
        body.append(f'<h2>Nomogram calculator</h2><p>Open <a href="{link}">{link}</a> '
                    "(works offline) to compute a lesion's points and risk.</p>")
    body.append("<h2>Run</h2>" + _table_html(pd.DataFrame(log)))
    versions = _versions()
    body.append("<h2>Software versions</h2>" + _table_html(pd.DataFrame({"software": list(versions), "version": list(versions.values())})))
    body.append("<h2>Settings</h2><pre>" + html.escape(json.dumps(cfg.to_dict(), indent=1)) + "</pre>")
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>")
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------- calculator
def calculator_spec(points: pd.DataFrame, labels: dict | None = None) -> dict:
    """The numbers the calculator needs, from R's ``nomogram_points_table``.

    Risk comes from the fitted logistic model (intercept + Σ coef·x, then the logistic function), so
    it equals R's ``predict()``; each predictor's points are the nomogram's own scale, interpolated
    linearly between its tick marks (exact for linear terms).
    """
    labels = labels or {}
    sc = points[points["axis"] == "scaling"].set_index("variable")["value"].astype(float)
    preds = []
    for var, part in points[points["axis"] == "predictor"].groupby("variable", sort=False):
        xs = part["value"].astype(float).to_numpy()
        ps = part["points"].astype(float).to_numpy()
        o = np.argsort(xs)
        preds.append({
            "name": var,
            "label": labels.get(var, var),
            "coef": float(sc[f"coef:{var}"]),
            "x": xs[o].tolist(),
            "points": ps[o].tolist(),
        })
    return {"intercept": float(sc["coef:Intercept"]), "predictors": preds}


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
    const v = parseFloat(document.getElementById('in_' + p.name).value);
    if (!isFinite(v)) { ok = false; continue; }
    lp += p.coef * v;
    const pts = interp(p.x, p.points, v);
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
    const input = document.createElement('input');
    input.type = 'number'; input.step = 'any'; input.id = 'in_' + p.name;
    const pts = document.createElement('td');
    pts.id = 'pts_' + p.name;
    const cell = child => { const td = document.createElement('td'); td.appendChild(child); return td; };
    row.append(cell(label), cell(input), pts);
    form.appendChild(row);
  }
  fromHash();
  document.querySelectorAll('input').forEach(e => e.addEventListener('input', compute));
  compute();
});
"""


def write_calculator(cfg, results, path) -> Path | None:
    """Write the study's ``calculator.html`` from its fitted nomogram (see :func:`calculator_page`)."""
    nom = results.get("nomogram")
    if nom is None:
        return None
    labels = dict(cfg.cohort.clinical_labels or {})
    labels.setdefault("deep_score", "Deep-learning score (0-1)")
    return calculator_page(nom.table("nomogram_points"), path, title=f"Nomogram calculator: {cfg.study.name}", labels=labels)


def calculator_page(points: pd.DataFrame, path, title="Nomogram calculator", labels=None) -> Path:
    """Write an offline calculator page: enter the predictors, see each one's points, the total and the risk.

    Values can be passed in the URL hash (``calculator.html#age=55&max_diameter_cm=2.1&deep_score=0.7``);
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
