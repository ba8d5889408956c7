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
            capture_output=True, encoding="utf-8", timeout=120,
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
    text = page.read_text(encoding="utf-8")
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


# ----------------------------------------------------------------------------------- formatting
def test_table_html_prints_integers_as_integers_and_p_values_as_a_reader_expects():
    from srnomogram.study.report import format_number, format_p

    df = pd.DataFrame({
        "model": ["a", "b", "c"],
        "n": [1000.0, 8.0, np.nan],  # a count read back from CSV with a NaN: floats
        "df": [1.0, 0.0, 1.0],  # whole, only 0 and 1, but its name says it counts
        "auc": [1.0, 0.91234, 0.5],
        "upper": [1.0, 1.0, 0.0],  # an interval clipped at 1: stays a decimal
        "p_value": [0.00001, 0.0342, 0.5],
        "hl_p": [1e-12, np.nan, 0.99949],
        "value": ["140", "0.15307692", "yes"],  # a mixed column as CSV gives it back
    })
    cells = re.findall(r"<td>(.*?)</td>", _table_html(df))
    rows = [cells[i:i + 8] for i in range(0, len(cells), 8)]
    assert rows[0] == ["a", "1000", "1", "1.000", "1.000", "&lt; 0.001", "&lt; 0.001", "140"]
    assert rows[1] == ["b", "8", "0", "0.912", "1.000", "0.034", "", "0.153"]
    assert rows[2] == ["c", "", "1", "0.500", "0.000", "0.500", "0.999", "yes"]
    assert format_p(0.001) == "0.001" and format_p(0.000999) == "< 0.001" and format_p(np.nan) == ""
    assert format_number(np.int64(12)) == "12" and format_number(0.00012345) == "0.000123" and format_number(2500.0) == "2500"


# ----------------------------------------------------------------------------------- main result, TRIPOD+AI
def _fake_study_board(tmp_path, repeats=False, recipe=None):
    """A config and a board holding what the main_result stage pins, from fake stage outputs."""
    from srnomogram.board import write_pin
    from srnomogram.study.config import config_from_dict
    from srnomogram.study.main_result import main_result, participant_flow

    from .test_main_result import _fake_outputs, _fake_repeats

    study = {"output": str(tmp_path), **({"recipe": recipe} if recipe else {})}
    cfg = config_from_dict({"study": study, "cohort": {"manifest": str(tmp_path / "m.csv"), "outcome": "histopathology"}},
                           base_dir=tmp_path)
    preds, scores = _fake_outputs()
    # as the nomogram stage writes it: a test has a statistic, no estimate
    added = pd.DataFrame([{"set": "train", "estimand": "lr_test_deep_score", "estimate": np.nan, "lower": np.nan, "upper": np.nan,
                           "statistic": 14.2, "df": 1, "p_value": 0.00016, "method": "likelihood-ratio test (rms::lrtest)"}])
    table = main_result(preds, scores, repeats=_fake_repeats() if repeats else None, added_value=added)
    board = tmp_path / "board"
    write_pin(board, "main_result", table)
    cohort = preds.assign(patient_id=[f"p{i // 2}" for i in range(len(preds))])
    write_pin(board, "participant_flow", participant_flow(cohort, pd.DataFrame(columns=["case_id", "label", "reason"])))
    return cfg, table.set_index("estimand")


def _text(page):
    body = re.sub(r"<style>.*?</style>", "", page.read_text(encoding="utf-8"), flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", body))


def test_report_opens_with_the_main_result_in_words_from_the_pin(tmp_path):
    cfg, t = _fake_study_board(tmp_path)
    page = write_report(cfg, {}, {}, {}, [], tmp_path / "report.html")
    h2 = re.findall(r"<h2>(.*?)</h2>", page.read_text(encoding="utf-8"))
    assert h2[0] == "Main result" and h2[1] == "Methods" and "TRIPOD+AI" in h2
    text = " ".join(_text(page).split())
    d = t.loc["delta_auc_nomogram_clinical_test"]
    assert "How much does the nomogram add to the clinical factors?" in text
    assert (f"difference {d['estimate']:+.3f} (95% CI {d['lower']:.3f} to {d['upper']:.3f}".replace("-", "−")) in text
    nom = t.loc["auc_nomogram_test"]
    half = max(nom["estimate"] - nom["lower"], nom["upper"] - nom["estimate"])  # the unclipped side of the DeLong CI
    assert f"with a test set of 20 lesions, another split of the same cohort would move a test AUC by about ±{half:.2f}" in text
    sr = t.loc["delta_auc_sr_or_lr"]
    assert f"SR − OR, LR: {sr['estimate']:+.3f}".replace("-", "−") in text
    assert "holds the deep-learning score fixed" in text  # the rms::validate caveat
    assert "nan" not in text.lower().split()  and "nan;" not in text.lower()  # a test's row prints its statistic, not its NaN estimate
    assert "Warning: the paper's recipe." not in text and "paper recipe" not in text


def test_main_result_over_seeds_gives_the_share_above_zero_and_no_one_split_sentence(tmp_path):
    cfg, t = _fake_study_board(tmp_path, repeats=True)
    text = " ".join(_text(write_report(cfg, {}, {}, {}, [], tmp_path / "report.html")).split())
    r = t.loc["delta_auc_nomogram_clinical_test_seeds"]
    assert f"above 0 in {100 * r['share_positive']:.0f}% of seeds" in text and "over 7 split seeds" in text
    assert "This is one split" not in text
    assert "Nomogram: test calibration slope over split seeds: mean" in text


def test_paper_recipe_shows_a_warning_box_for_each_choice_and_the_methods_say_so(tmp_path):
    from srnomogram.study.report import RECIPE_WARNINGS

    cfg, _ = _fake_study_board(tmp_path, recipe="paper")
    page = write_report(cfg, {}, {}, {}, [], tmp_path / "report.html").read_text(encoding="utf-8")
    main = page[page.index("<h2>Main result</h2>"):page.index("<h2>Methods</h2>")]
    assert main.count('class="warning"') == 2 and "see the warning boxes above" in main
    assert "Warning: the test set chose the model (the paper&#x27;s recipe)." in main
    assert html.escape(RECIPE_WARNINGS["best_model_rule"].format(value="test_auc")) in main
    assert html.escape(RECIPE_WARNINGS["train_score"]) in main
    methods = page[page.index("<h2>Methods</h2>"):page.index("<h2>Tables</h2>")]
    assert "paper recipe (study.recipe: paper)" in methods


def test_tripod_checklist_quotes_the_studys_settings_or_asks_the_authors(tmp_path):
    from srnomogram.study.report import tripod_checklist

    cfg, _ = _fake_study_board(tmp_path)
    rows = tripod_checklist(cfg, {"participant_flow", "table1"}).set_index("item")
    where = rows["where the report answers it"]
    assert where["8a"] == "cohort.outcome: histopathology"
    assert where["3b"] == "to be completed by the authors (setting study.intended_use)"
    assert where["20a"] == "Participant flow (pin participant_flow)"
    assert where["10"] == "to be completed by the authors"  # no sample_size pin
    assert where["17"] == "to be completed by the authors"
    page = write_report(cfg, {}, {}, {}, [], tmp_path / "report.html").read_text(encoding="utf-8")
    tripod = page[page.index("<h2>TRIPOD+AI</h2>"):]
    assert "Participant flow: lesions, patients and events" in tripod and "<td>analysed</td><td>80</td><td>40</td>" in tripod


@pytest.fixture(scope="module")
def small_study(tmp_path_factory):
    """A radiomics-only study of 60 demo lesions (about 35 s on 2 cores)."""
    pytest.importorskip("rpy2")
    from .conftest import run_small_study

    root = tmp_path_factory.mktemp("study")
    report = run_small_study(root, {"sr": {"enabled": False}, "deep": {"enabled": False}, "radiomics": {"jobs": 1},
                                    "study": {"intended_use": "second reader for BI-RADS 4 lesions"},
                                    "validation": {"folds": 3}, "nomogram": {"calibration_b": 20, "dca_bootstraps": 0},
                                    "report": {"formats": ["png"]}}, n=60)
    return root / "out", report


def test_a_study_report_opens_with_the_main_result_and_has_the_tripod_section(small_study):
    from srnomogram.board import read_pin
    from srnomogram.metrics import paired_auc_difference

    out, report = small_study
    page = report.read_text(encoding="utf-8")
    assert re.findall(r"<h2>(.*?)</h2>", page)[0] == "Main result"
    assert "<h2>TRIPOD+AI</h2>" in page and "second reader for BI-RADS 4 lesions" in page
    board = out / "board"
    table = read_pin(board, "main_result")
    pd.testing.assert_frame_equal(pd.read_csv(out / "tables" / "main_result.csv"), table, check_dtype=False)
    preds = read_pin(board, "predictions")
    te = preds[preds["split"] == "test"]
    d = paired_auc_difference(te["label"], te["risk_nomogram"], te["risk_clinical"])
    row = table.set_index("estimand").loc["delta_auc_nomogram_clinical_test"]
    assert row["estimate"] == pytest.approx(d["estimate"], abs=1e-12)
    # the headline: primary comparison declared, the test calibration with its CIs, net benefit at 0.02, 0.05, 0.10
    assert row["adjustment"] == "primary comparison of question 2 (declared), unadjusted"
    assert row["interval"] == ("CI" if np.isfinite(row["lower"]) else "none")  # no interval when the scores order alike
    t = table.set_index("estimand")
    held = read_pin(board, "heldout_validation").set_index("model").loc["nomogram"]
    assert tuple(t.loc["calibration_slope_nomogram_test", ["estimate", "lower", "upper"]]) == pytest.approx(
        (held["slope"], held["slope_lower"], held["slope_upper"]), abs=1e-12)
    assert "Calibration of the nomogram on the test set: calibration-in-the-large" in page
    nbt = read_pin(board, "net_benefit_thresholds")
    nom = nbt[nbt["model"] == "nomogram"].set_index("threshold")
    for th in (0.02, 0.05, 0.1):
        assert t.loc[f"delta_net_benefit_nomogram_clinical_at_{th:g}", "estimate"] == pytest.approx(nom.loc[th, "delta_vs_clinical"], abs=1e-12)
        assert f"net-benefit difference at threshold {th:g}" in page
    assert "a mean over the whole range, which its higher thresholds can carry" in page
    assert "SR − OR" not in " ".join(table["label"])  # sr disabled: no question-1 rows to adjust
    flow = read_pin(board, "participant_flow").set_index("step")
    counts = read_pin(board, "split_counts")
    assert flow.loc["test set", "lesions"] == counts.loc[counts["split"] == "test", "n"].sum()
    assert flow.loc["analysed", "lesions"] == 60 == flow.loc["analysed", "patients"]
    from .conftest import assert_models_labelled  # the model id is the join key; its label sits beside it in every table

    assert {"calibration", "decision_curves", "radiomics_selected", "table2"} <= set(assert_models_labelled(board))
    # the methods text quotes the stages' records, which the board holds as pins
    from srnomogram.board import read_file_pin

    best = json.loads(read_file_pin(board, "best_model").read_text(encoding="utf-8"))
    assert json.loads(read_file_pin(board, "split_info").read_text(encoding="utf-8"))["n"] == 60
    text = " ".join(page.split())
    assert "The cohort comprised 60 lesions of 60 patients;" in text
    assert f"The model with the highest cross-validated training AUC ({best['label']}) provided the deep-learning score" in text
    size = read_pin(board, "sample_size").set_index("item")["value"]
    assert int(size["predictor parameters"]) == 3 and int(size["training lesions"]) == flow.loc["training set", "lesions"]
    for name in ("participant_flow", "sample_size"):
        assert (out / "tables" / f"{name}.csv").is_file()


def test_a_study_exports_its_tripod_checklist_pointing_at_its_own_tables_and_figures(small_study):
    from srnomogram.board import list_pins

    from .test_tripod import OFFICIAL

    out, report = small_study
    rows = pd.read_csv(out / "tables" / "tripod_ai.csv", dtype=str, keep_default_na=False)
    assert rows["item"].tolist() == OFFICIAL and (rows["where the report answers it"].str.len() > 0).all()
    named = {p for pins in rows["pins"] for p in pins.split(";") if p}
    figures = {f.stem for f in (out / "figures").glob("*.png")}
    assert named <= set(list_pins(out / "board")) | figures
    assert {"participant_flow", "sample_size", "table1", "table2", "nomogram_coefficients", "figure7_validation"} <= named
    page = html.unescape(report.read_text(encoding="utf-8"))
    tripod = page[page.index("<h3>TRIPOD+AI checklist</h3>"):page.index("CSV: tables/tripod_ai.csv")]
    for item, where in zip(rows["item"], rows["where the report answers it"]):
        assert f"<tr><td>{item}</td>" in tripod and f">{where}</td>" in tripod


def test_each_paper_choice_made_alone_gets_its_own_warning_and_no_recipe_sentence():
    from srnomogram.study.config import config_from_dict
    from srnomogram.study.report import recipe_text, recipe_warnings

    base = {"cohort": {"manifest": "m.csv"}}
    assert recipe_warnings(config_from_dict(base)) == []
    rule = config_from_dict({**base, "nomogram": {"best_model_rule": "test_auc_cnn"}})
    assert [k for k, _ in recipe_warnings(rule, keys=True)] == ["best_model_rule"] and recipe_text(rule) == ""
    assert "test_auc_cnn" in recipe_warnings(rule)[0]
    fitted = config_from_dict({**base, "nomogram": {"train_score": "fitted"}})
    assert [k for k, _ in recipe_warnings(fitted, keys=True)] == ["train_score"]


def test_a_study_writes_only_declared_pins_and_its_tables_folder_is_the_report_pins(small_study):
    """The board is the study's only output interface: every pin on it is declared by one of the run's stages,
    and tables/ holds exactly the pins with a report section, as the board holds them."""
    from srnomogram.board import list_pins, read_pin
    from srnomogram.study.cache import report_pins
    from srnomogram.study.config import load_config
    from srnomogram.study.pipeline import study_stages

    out, report = small_study
    cfg = load_config(out / "resolved_config.yaml")
    stages = study_stages(cfg)
    declared = {p.name for s in stages for p in s.pins}
    on_board = set(list_pins(out / "board"))
    assert on_board <= declared, sorted(on_board - declared)
    shown = [p.name for p in report_pins(stages) if p.name in on_board]
    assert sorted(p.stem for p in (out / "tables").glob("*.csv")) == sorted(shown)
    for name in shown:
        pd.testing.assert_frame_equal(pd.read_csv(out / "tables" / f"{name}.csv"), read_pin(out / "board", name).reset_index(drop=True),
                                      check_dtype=False)
    # the report prints them in their declared order: Table 1, Table 2, the score check, Table S2, ...
    page = report.read_text(encoding="utf-8")
    heads = [h for h in re.findall(r"<h3>(.*?)</h3>", page) if h.startswith(("Table 1.", "Table 2.", "Score check", "Table S2."))]
    assert [h.split(".")[0].split(":")[0] for h in heads] == ["Table 1", "Table 2", "Score check", "Table S2"]
def test_resuming_a_study_whose_table2_pin_was_edited_refuses_in_one_line_and_publishes_nothing(small_study):
    """A test AUC set to 0.999 by hand in the board's table2.csv: the resumed run reuses every stage, and
    before the check it printed 0.999 in tables/ and the report without a word."""
    from srnomogram.board import BoardError
    from srnomogram.study.config import load_config
    from srnomogram.study.pipeline import run_study

    out, report = small_study
    (csv,) = sorted((out / "board" / "table2").glob("*/table2.csv"))[-1:]
    original = csv.read_bytes()
    table = pd.read_csv(csv)
    col = next(c for c in table.columns if "auc" in c.lower() and pd.api.types.is_float_dtype(table[c]))
    edited = table.assign(**{col: [0.999] * len(table)})
    kept = {p: p.read_bytes() for p in [report, *(out / "tables").glob("*.csv")]}
    try:
        edited.to_csv(csv, index=False)
        with pytest.raises(BoardError, match=rf"Pin 'table2' on board {re.escape(str(out / 'board'))} was changed after it was "
                                             r"written: table2\.csv .* --force table2") as err:
            run_study(load_config(out / "resolved_config.yaml"))
        assert "\n" not in str(err.value)
        assert {p: p.read_bytes() for p in kept} == kept  # tables/ and report.html untouched
    finally:
        csv.write_bytes(original)


def test_the_external_report_is_the_study_report_writer_with_its_section_in_the_pins_order(tmp_path):
    """write_report(external=...): the pins of section "external" in their declared order under their titles
    (model ids beside their labels, the study's level in the titles), the long ones named as CSV only, the warnings
    listed, and the study's page around them (run, versions, settings) without the study's own sections."""
    from srnomogram.study.config import config_from_dict
    from srnomogram.study.external import STATISTICS_PINS
    from srnomogram.study.report import ExternalSection, write_report
    from srnomogram.study.stages import APPLY_NOMOGRAM_PINS

    cfg = config_from_dict({"study": {"name": "tiny", "output": str(tmp_path / "study")},
                            "cohort": {"manifest": str(tmp_path / "m.csv")}, "nomogram": {"alpha": 0.1}}, base_dir=tmp_path)
    pins = {p.name: p for p in (*STATISTICS_PINS, *APPLY_NOMOGRAM_PINS)}
    tables = {"external_decision_curves": pd.DataFrame({"model": ["or_lr"], "NB": [0.1]}),
              "external_calibration": pd.DataFrame({"model": ["nomogram"], "slope": [0.95]}),
              "external_auc": pd.DataFrame({"model": ["or_lr", "nomogram"], "label": ["OR-LR", "Nomogram"], "auc": [0.81234, 0.9]}),
              "warnings": pd.DataFrame({"message": ["2 lesion(s) have age outside the training range 30 to 70"]})}
    section = ExternalSection(title="External validation: tiny on m.csv", methods="Applied unchanged.", estimand="lesion-level",
                              ci_method="DeLong", study=tmp_path / "study", options={"unit": "lesion", "bootstraps": 7})
    page = write_report(cfg, {}, tables, {}, [{"stage": "split"}], tmp_path / "report.html", pins=list(pins.values()),
                        board_dir=tmp_path / "board", external=section)
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "<h1>External validation: tiny on m.csv</h1>" in text and "<style>" in text
    heads = re.findall(r"<h3>(.*?)</h3>", text)
    assert heads == [pins["external_auc"].title_for(cfg), pins["external_calibration"].title_for(cfg)]
    assert heads[0] == "Discrimination: AUC (90% CI)"
    # as in the study's tables: the model id (the join key) and its label, each in its own column
    assert "<th>model</th><th>label</th><th>auc</th>" in text and '<td>or_lr</td><td class="t">OR-LR</td>' in text and "0.812" in text
    assert "<li>2 lesion(s) have age outside" in text
    assert pins["external_decision_curves"].title_for(cfg) + ": tables/external_decision_curves.csv" in text
    for h2 in ("Methods", "Warnings", "Tables", "Figures", "Run", "Software versions", "Settings"):
        assert f"<h2>{h2}</h2>" in text, h2
    assert "<h2>Main result</h2>" not in text and "TRIPOD" not in text and "&quot;bootstraps&quot;: 7" in text
