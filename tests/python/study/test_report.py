"""Report pieces: the offline calculator equals R's predict(); the page is self-contained."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import tempfile

import numpy as np
import pandas as pd
import pytest

from srnomogram.study.report import _table_html, calculator_page, calculator_spec, script_json, write_report

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)


def _r_fit(golden_dir):
    from srnomogram import stats

    if not stats.has_function("nomogram_points_table"):
        pytest.skip("the R package has no nomogram_points_table() yet")
    data = pd.read_csv(golden_dir / "input_paper_train.csv")[["y", "age", "size", "score"]]
    fit = stats.fit_nomogram(data=data, formula="y ~ age + size + score")
    return stats, data, fit


def _dump_dom(url):
    with tempfile.TemporaryDirectory() as profile:
        out = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
             "--virtual-time-budget=2000", "--dump-dom", url],
            capture_output=True, text=True, timeout=120,
        )
    return out.stdout


def test_calculator_spec_reproduces_r_predictions(golden_dir):
    pytest.importorskip("rpy2")
    stats, data, fit = _r_fit(golden_dir)
    spec = calculator_spec(stats.nomogram_points(fit))
    lp = spec["intercept"] + sum(p["coef"] * data[p["name"]].to_numpy() for p in spec["predictors"])
    np.testing.assert_allclose(1 / (1 + np.exp(-lp)), stats.predict(fit, newdata=data), rtol=1e-9)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
def test_calculator_page_in_headless_chromium_gives_r_risk(golden_dir, tmp_path):
    pytest.importorskip("rpy2")
    stats, data, fit = _r_fit(golden_dir)
    page = calculator_page(stats.nomogram_points(fit), tmp_path / "calculator.html")
    text = page.read_text()
    assert not re.search(r"""(src|href)=["']https?://""", text)  # nothing fetched from the network
    row = data.iloc[[7]]
    expected = float(stats.predict(fit, newdata=row)[0])
    dom = _dump_dom(f"file://{page}#age={row.age.iloc[0]}&size={row['size'].iloc[0]}&score={row.score.iloc[0]}")
    m = re.search(r'id="risk" data-risk="([0-9.eE+-]+)"', dom)
    assert m, dom[-2000:]
    assert float(m.group(1)) == pytest.approx(expected, rel=1e-9)
    total = float(re.search(r'id="total">([0-9.]+)<', dom).group(1))
    points = stats.nomogram_points(fit)
    pred = points[points["axis"] == "predictor"]
    manual = sum(
        np.interp(row[v].iloc[0], g["value"].astype(float), g["points"].astype(float)) for v, g in pred.groupby("variable")
    )
    assert total == pytest.approx(manual, abs=0.05)


def test_table_html_escapes_and_formats():
    html = _table_html(pd.DataFrame({"model": ["<b>x</b>"], "auc": [0.91234]}))
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "0.912" in html


class _Result:
    def __init__(self, best):
        self._best = best

    def json(self, name):
        return {"best_model": self._best, "split_info": {"n": 100, "source": "manifest"}}[name]


def test_methods_and_table2_note_say_when_the_test_set_chose_the_model():
    from srnomogram.study.config import config_from_dict
    from srnomogram.study.report import TEST_SET_CHOSE, methods_text, table_notes

    for rule, train_score in (("cv_auc", "cross_fitted"), ("test_auc", "fitted")):
        cfg = config_from_dict({"cohort": {"manifest": "m.csv"}, "nomogram": {"best_model_rule": rule, "train_score": train_score},
                                "validation": {"folds": 4}})
        best = {"model": "or_mobilenet_v2", "label": "OR-MobileNetV2", "rule": rule, "train_score": train_score, "folds": 4}
        results = {"split": _Result(best), "table2": _Result(best)}
        text, note = methods_text(cfg, results), table_notes(cfg, results)["table2"]
        assert "4 stratified folds" in text and "4-fold cross-validated (cv_auc" in note
        assert "interval of the chosen model's cross-validated training AUC reached 0.5 (score check)" in text
        assert "a flag is reported as a warning." in text
        if rule == "test_auc":
            assert TEST_SET_CHOSE in text and TEST_SET_CHOSE in note and "optimistic" in note
            assert "fitted (in-sample) scores entered the nomogram, as in the paper" in text
        else:
            assert "optimistic" not in text + note and "highest cross-validated training AUC" in text
            assert "out-of-fold scores entered the nomogram" in text


def test_methods_and_titles_state_the_confidence_level_the_bootstrap_and_the_optimism_correction():
    from srnomogram.study.config import config_from_dict
    from srnomogram.study.report import methods_text, table_title

    cfg = config_from_dict({"cohort": {"manifest": "m.csv"},
                            "nomogram": {"alpha": 0.1, "calibration_b": 200, "bootstrap_seed": 7, "dca_bootstraps": 300}})
    text = methods_text(cfg, {})
    assert "90% bootstrap percentile bands from 300 resamples" in text
    assert "Harrell's optimism-corrected bootstrap (rms::validate, B = 200, seed 7)" in text
    assert "Wald 90% confidence intervals" in text and "All confidence intervals are 90%." in text
    assert table_title("internal_validation", cfg).startswith("Internal validation (bootstrap, B = 200)")
    assert table_title("roc_auc", cfg) == "AUC (DeLong 90% CI) of the clinical model and the nomogram"
    plain = config_from_dict({"cohort": {"manifest": "m.csv"}, "nomogram": {"dca_bootstraps": 0}})
    assert "no confidence bands" in methods_text(plain, {}) and "All confidence intervals are 95%." in methods_text(plain, {})


# A label or column name in a shared study YAML is data: it must show as text and never run. The
# handler marks the page in two ways a successful injection would show in the dumped DOM.
HOSTILE = """</script><img src=x onerror="document.title='pwned';document.body.setAttribute('data-pwned','1')"><b>bold</b>"""


def _points(names):
    """A nomogram points table as R's nomogram_points_table() gives it: linear terms, 0-100 points."""
    rows = [dict(axis="scaling", variable="coef:Intercept", value=-2.0, points=np.nan)]
    for k, v in enumerate(names):
        rows.append(dict(axis="scaling", variable=f"coef:{v}", value=0.1 * (k + 1), points=np.nan))
        rows += [dict(axis="predictor", variable=v, value=x, points=x * 5.0) for x in (0.0, 10.0, 20.0)]
    return pd.DataFrame(rows)


def _not_injected(dom):
    assert dom, "chromium returned no DOM"
    assert "<title>pwned</title>" not in dom and not re.search(r"<body[^>]*data-pwned", dom)
    assert "<img" not in dom and "<b>bold</b>" not in dom


def test_script_json_escapes_what_could_end_a_script_or_a_line():
    obj = {"label": "</script><!--&\u2028\u2029>"}
    text = script_json(obj)
    assert not set("<>&\u2028\u2029") & set(text)
    assert json.loads(text) == obj


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (setup.sh installs Debian's chromium)")
def test_calculator_shows_hostile_labels_and_column_names_as_text_and_runs_no_script(tmp_path):
    col = "size\u2028" + HOSTILE  # a clinical column name
    page = calculator_page(_points(["age", col]), tmp_path / "calculator.html", title="calc", labels={"age": "Age " + HOSTILE})
    dom = _dump_dom(f"file://{page}#age=10")
    _not_injected(dom)
    assert "<title>calc</title>" in dom
    assert f'<label for="in_age">{html.escape("Age " + HOSTILE, quote=False)}</label>' in dom  # shown literally
    assert html.escape(col, quote=False) in dom
    assert 'id="pts_age">50.0<' in dom  # the script ran with the spec intact: 10 years = 50 points


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (setup.sh installs Debian's chromium)")
def test_report_shows_hostile_study_names_labels_and_columns_as_text_and_runs_no_script(tmp_path):
    from srnomogram.study.config import config_from_dict

    col = "size" + HOSTILE
    cfg = config_from_dict({"study": {"name": "demo" + HOSTILE, "output": str(tmp_path)},
                            "cohort": {"manifest": str(tmp_path / "m.csv"), "clinical": ["age", col], "clinical_labels": {"age": "Age" + HOSTILE}}},
                           base_dir=tmp_path)
    table = pd.DataFrame({"variable": [col, "age"], "label": ["x" + HOSTILE, "Age" + HOSTILE], "auc": [0.7, 0.8]})
    table.columns = ["variable", "label" + HOSTILE, "auc"]
    page = write_report(cfg, {}, {"table1": table, HOSTILE: table}, {}, [{"stage": HOSTILE, "seconds": 1.0}], tmp_path / "report.html",
                        calculator=tmp_path / "calculator.html")
    dom = _dump_dom(f"file://{page}")
    _not_injected(dom)
    shown = html.escape(HOSTILE, quote=False)
    assert f"<title>srnomogram study: demo{shown}</title>" in dom and f"<h1>srnomogram study: demo{shown}</h1>" in dom
    assert f"<td>{html.escape(col, quote=False)}</td>" in dom and f"<th>label{shown}</th>" in dom


def test_methods_say_which_unit_was_resampled_and_count_patients_and_lesions():
    from srnomogram.study.config import config_from_dict
    from srnomogram.study.report import methods_text

    class Split:
        def __init__(self, info):
            self.info = info

        def json(self, name):
            return {"split_info": self.info}[name]

    cfg = config_from_dict({"cohort": {"manifest": "m.csv"}})
    text = methods_text(cfg, {"split": Split({"n": 12, "n_patients": 7, "unit": "patient", "source": "s"})})
    assert "The cohort comprised 12 lesions of 7 patients;" in text
    assert "The patient was the unit of resampling" in text and "each lesion was taken as its own patient" not in text
    assert "all lesions of a patient went to the same side of the train/test split" in text
    text = methods_text(cfg, {"split": Split({"n": 12, "n_patients": 7, "unit": "patient", "n_patients_both_sides": 2, "source": "manifest"})})
    assert "the manifest's own split put 2 patient(s) on both sides of train/test" in text
    text = methods_text(cfg, {"split": Split({"n": 12, "n_patients": 12, "unit": "lesion", "source": "s"})})
    assert "each lesion was taken as its own patient" in text and "The patient was the unit" not in text
