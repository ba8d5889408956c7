"""A categorical clinical factor end to end, from the study file alone: study, validate, predict, calculator.

The demo cohort (radiomics only: no SR, no CNN; about 40 s on 2 cores) gets a synthetic ``shape``
column whose levels depend on the label. The study file declares it in the mapping form, with its
levels and a reference that is not the first in alphabetical order. The references are R's own:
``predict(fit, newdata, type = "fitted")`` of the study's saved rms fit, and rms' term names.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from srnomogram.cli import main

LEVELS = ["oval", "round", "irregular"]
STUDY_YAML = """\
cohort:
  manifest: {manifest}
  clinical:
    - age
    - {{name: max_diameter_cm, unit: cm, label: Maximum diameter}}
    - name: shape
      type: categorical
      levels: [oval, round, irregular]   # pre-specified, not read from the data
      reference: round                   # the level without a coefficient
      label: Shape (BI-RADS)
sr: {{enabled: false}}
deep: {{enabled: false}}
radiomics: {{jobs: 1, models: [lr]}}
validation: {{folds: 3}}
nomogram: {{calibration_b: 20, dca_bootstraps: 0, hl_groups: 4}}
report: {{formats: [png]}}
"""


def _with_shape(manifest, seed):
    """The manifest with a ``shape`` column: irregular mostly for malignant, oval mostly for benign lesions."""
    df = pd.read_csv(manifest)
    rng = np.random.default_rng(seed)
    p = np.where(df["label"].to_numpy()[:, None] == 1, [0.2, 0.25, 0.55], [0.55, 0.3, 0.15])
    df["shape"] = [LEVELS[rng.choice(3, p=row)] for row in p]
    df.to_csv(manifest, index=False)
    return df


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    pytest.importorskip("rpy2")
    from srnomogram.data import demo_cohort

    root = tmp_path_factory.mktemp("categorical")
    manifest = demo_cohort(root / "cohort", n=60, seed=0, n_volumes=0)
    _with_shape(manifest, 1)
    ext = demo_cohort(root / "ext", n=40, seed=7, n_volumes=0)
    _with_shape(ext, 2)
    (root / "study.yaml").write_text(STUDY_YAML.format(manifest=manifest))
    assert main(["-q", "run", str(root / "study.yaml"), "-o", str(root / "out")]) == 0
    return root, root / "out", ext


def _r_risks(fit_file, data):
    """R's own risks: ``predict(readRDS(fit_file), newdata, type = "fitted")``."""
    from srnomogram import stats
    from srnomogram.data.clinical import ClinicalSchema

    fit = stats.call("readRDS", file=str(fit_file), _namespace="base")
    schema = ClinicalSchema.parse(["age", "max_diameter_cm", {"name": "shape", "type": "categorical", "levels": LEVELS,
                                                             "reference": "round"}])
    return stats.predict(fit, newdata=schema.to_frame(data))


def test_the_study_fits_shape_as_an_r_factor_with_rms_term_names_and_a_design_per_level(study):
    root, out, _ = study
    coef = pd.read_csv(out / "tables" / "nomogram_coefficients.csv")
    assert coef.loc[coef["model"] == "nomogram", "term"].tolist() == [
        "Intercept", "age", "max_diameter_cm", "shape=oval", "shape=irregular", "deep_score"]
    design = json.loads((out / "stages" / "nomogram" / "nomogram_design.json").read_text(encoding="utf-8"))["nomogram"]
    shape = next(p for p in design["predictors"] if p["name"] == "shape")
    assert shape["levels"] == ["round", "oval", "irregular"] and shape["reference"] == "round"  # R's order: reference first
    assert shape["coef"] == [0.0, design["coefficients"]["shape=oval"], design["coefficients"]["shape=irregular"]]
    # the points per level are rms' own nomogram axis
    from srnomogram.board import read_pin

    pts = read_pin(out / "board", "nomogram_points")
    axis = pts[(pts["axis"] == "predictor") & (pts["variable"] == "shape")]
    assert axis["value"].tolist() == shape["levels"]
    np.testing.assert_allclose(shape["points"], axis["points"], rtol=1e-12)
    # Table 1 and Table S2 show the factor's levels
    t1 = pd.read_csv(out / "tables" / "table1.csv").astype(str)
    assert t1.apply(lambda c: c.str.contains("irregular")).any().any()
    s2 = pd.read_csv(out / "tables" / "table_s2.csv")
    shape_rows = s2[s2["variable"] == "shape"]  # rms' term names, so Table S2 joins the coefficients on `term`
    assert shape_rows["term"].tolist() == ["shape=oval", "shape=irregular"]
    assert shape_rows["level"].tolist() == ["oval", "irregular"] and s2.loc[s2["variable"] == "age", "level"].isna().all()
    assert set(shape_rows["term"]) <= set(coef["term"])
    assert ("Categorical clinical factors entered every model with levels pre-specified in the study file "
            "(shape: round, oval, irregular, reference round)") in (out / "report.html").read_text(encoding="utf-8")
    app = json.loads((out / "stages" / "application" / "application.json").read_text(encoding="utf-8"))
    assert app["clinical_schema"][2] == {"name": "shape", "type": "categorical", "levels": LEVELS, "reference": "round",
                                         "unit": None, "label": "Shape (BI-RADS)"}


def test_validate_and_predict_give_r_predict_risks_and_refuse_an_unseen_level(study, tmp_path):
    root, out, ext = study
    assert main(["-q", "validate", str(out), str(ext), "-o", str(tmp_path / "val"), "--dca-bootstraps", "0"]) == 0
    scores = pd.read_csv(tmp_path / "val" / "tables" / "external_scores.csv")
    data = pd.read_csv(ext).merge(scores[["case_id", "deep_score", "nomogram", "clinical"]], on="case_id")
    for name in ("nomogram", "clinical"):
        np.testing.assert_allclose(data[name], _r_risks(out / "stages" / "nomogram" / f"{name}.rds", data), rtol=1e-10, atol=0)
    auc = pd.read_csv(tmp_path / "val" / "tables" / "external_auc.csv")
    assert {"clinical", "nomogram"} <= set(auc["model"])
    # predict: an unlabelled manifest, the same risks
    unlabelled = ext.with_name("unlabelled.csv")  # beside the images its relative paths name
    pd.read_csv(ext).drop(columns="label").to_csv(unlabelled, index=False)
    assert main(["-q", "predict", str(out), str(unlabelled), "-o", str(tmp_path / "scores.csv")]) == 0
    pred = pd.read_csv(tmp_path / "scores.csv")
    np.testing.assert_allclose(pred["nomogram"], scores["nomogram"], rtol=1e-12)
    # a level the study did not declare is a one-line error naming the file, row, column, value and the levels
    bad = pd.read_csv(unlabelled)
    bad.loc[3, "shape"] = "lobulated"
    bad.to_csv(unlabelled, index=False)
    from srnomogram.errors import InputError
    from srnomogram import predict

    with pytest.raises(InputError) as info:
        predict(out, unlabelled, tmp_path / "bad.csv")
    assert str(info.value) == (f"{unlabelled}, row 5, column 'shape': 'lobulated' is not a level of the categorical factor "
                               "'shape'; allowed: oval, round, irregular (fix the cell, leave it empty when unknown, or add "
                               "the level to the study's cohort.clinical).")
    assert not (tmp_path / "bad.csv").exists()


def test_the_calculator_has_a_select_of_the_levels_and_gives_r_risk_in_chromium(study, tmp_path):
    root, out, ext = study
    page = (out / "calculator.html").read_text(encoding="utf-8")
    spec = json.loads(page.split("const SPEC = ", 1)[1].split(";\n", 1)[0])
    shape = next(p for p in spec["predictors"] if p["name"] == "shape")
    assert shape["type"] == "categorical" and shape["levels"] == ["round", "oval", "irregular"]
    assert shape["label"] == "Shape (BI-RADS)"
    assert next(p for p in spec["predictors"] if p["name"] == "max_diameter_cm")["label"] == "Maximum diameter (cm)"
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium to run the calculator's script")
    case = {"age": 55, "max_diameter_cm": 2.1, "shape": "irregular", "deep_score": 0.7}
    url = (out / "calculator.html").as_uri() + "#" + "&".join(f"{k}={v}" for k, v in case.items())
    dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", url],
                         capture_output=True, encoding="utf-8", timeout=120).stdout
    assert '<select id="in_shape">' in dom and '<option value="irregular">irregular</option>' in dom
    risk = float(dom.split('data-risk="', 1)[1].split('"', 1)[0])
    want = _r_risks(out / "stages" / "nomogram" / "nomogram.rds", pd.DataFrame([case]))[0]
    assert abs(risk - want) <= 1e-10 * want  # the page writes 12 significant digits
