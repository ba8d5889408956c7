"""`srnomogram update`: a finished study's nomogram updated for a new centre (closed testing procedure,
Vergouwe et al. 2017). The fast tests check the pure pieces against R (rms, glm through the closed test)
and statsmodels; the slow ones update the tiny trained study of the study tests (conftest's ``study``)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from srnomogram.errors import InputError


def _plogis(x):
    return 1 / (1 + np.exp(-np.asarray(x, dtype=float)))


@pytest.fixture(scope="module")
def fitted():
    """A nomogram with a numeric factor, a 3-level categorical one and the deep-learning score, fitted by
    rms, and its design as save_nomogram_fits writes it; plus new-centre data with a shifted intercept."""
    from srnomogram import stats
    from srnomogram.study.freeze import calculator_spec, predictor_terms

    rng = np.random.default_rng(5)
    n = 400
    d = pd.DataFrame({"age": rng.normal(50, 10, n).round(), "deep_score": rng.uniform(size=n),
                      "shape": pd.Categorical(rng.choice(["oval", "round", "irregular"], n), categories=["oval", "round", "irregular"])})
    eff = d["shape"].map({"oval": 0.0, "round": 0.5, "irregular": 1.2}).astype(float)
    lp_true = -5 + 0.07 * d["age"] + 2.5 * d["deep_score"] + eff
    d["label"] = (rng.uniform(size=n) < _plogis(lp_true)).astype(int)
    train = d.iloc[:200].reset_index(drop=True)
    fit = stats.fit_nomogram("label ~ age + shape + deep_score", train)
    points = stats.nomogram_points(fit)
    design = calculator_spec(points)
    coef = fit.summary()
    design["coefficients"] = {str(t): float(c) for t, c in zip(coef["term"], coef["coef"])}
    design["intercept"] = design["coefficients"]["Intercept"]
    for p in design["predictors"]:
        p["coef"] = ([0.0 if lv == p["reference"] else design["coefficients"][f"{p['name']}={lv}"] for lv in p["levels"]]
                     if p["type"] == "categorical" else design["coefficients"][p["name"]])
    assert [t for p in design["predictors"] for t in predictor_terms(p)] == ["age", "shape=round", "shape=irregular", "deep_score"]
    new = d.iloc[200:].reset_index(drop=True)
    lp_r = np.log(stats.predict(fit, newdata=new)) - np.log1p(-stats.predict(fit, newdata=new))
    return {"fit": fit, "points": points, "design": design, "new": new, "lp_r": lp_r, "rng": rng}


def test_design_matrix_and_lp_equal_rms_predict(fitted):
    from srnomogram.study.update import design_lp, design_matrix

    X = design_matrix(fitted["design"], fitted["new"])
    assert list(X.columns) == ["age", "shape=round", "shape=irregular", "deep_score"]
    np.testing.assert_array_equal(X["shape=irregular"], (fitted["new"]["shape"] == "irregular").astype(float))
    np.testing.assert_allclose(design_lp(fitted["design"], X), fitted["lp_r"], rtol=0, atol=1e-9)


def test_points_table_of_the_original_design_is_rms_nomograms(fitted):
    """The points axes recomputed from the coefficients equal rms::nomogram's (R's nomogram_points_table)."""
    from srnomogram.study.update import points_table

    mine, rms = points_table(fitted["design"]), fitted["points"]
    for axis in ("predictor",):
        a, b = mine[mine["axis"] == axis], rms[rms["axis"] == axis]
        np.testing.assert_allclose(a["points"].astype(float), b["points"].astype(float), rtol=0, atol=1e-8)
        assert a["variable"].tolist() == b["variable"].tolist()
    sc_m = mine[mine["axis"] == "scaling"].set_index("variable")["value"].astype(float)
    sc_r = rms[rms["axis"] == "scaling"].set_index("variable")["value"].astype(float)
    for k in sc_r.index:
        assert sc_m[k] == pytest.approx(sc_r[k], rel=1e-8, abs=1e-10), k


@pytest.mark.parametrize("method,coef", [("intercept", [0.8]), ("recalibration", [0.4, 0.6]), ("recalibration", [-0.2, -0.5])])
def test_updated_design_predicts_plogis_a_plus_b_lp_and_its_points_give_the_same_risk(fitted, method, coef):
    from srnomogram.study.freeze import calculator_spec, nomogram_predict
    from srnomogram.study.update import points_table, updated_design

    new = updated_design(fitted["design"], method, pd.Series(coef))
    a, b = coef[0], (coef[1] if len(coef) > 1 else 1.0)
    got = nomogram_predict(new, fitted["new"])
    np.testing.assert_allclose(got["risk"], _plogis(a + b * fitted["lp_r"]), rtol=1e-10)
    tab = points_table(new)
    sc = tab[tab["axis"] == "scaling"].set_index("variable")["value"].astype(float)
    # the nomogram's own reading: risk = plogis(intercept + total points / points per unit lp)
    np.testing.assert_allclose(_plogis(sc["intercept"] + got["points"] / sc["points_per_lp"]), got["risk"], rtol=1e-8)
    spec = calculator_spec(tab)  # the calculator's numbers: the updated coefficients
    assert spec["intercept"] == pytest.approx(new["intercept"], rel=1e-14)
    if b > 0:  # a positive slope keeps every predictor's points (rms scales the widest range to 100)
        old = {p["name"]: p["points"] for p in fitted["design"]["predictors"]}
        for p in new["predictors"]:
            np.testing.assert_allclose(p["points"], old[p["name"]], atol=1e-8)
    else:
        assert max(max(p["points"]) for p in new["predictors"]) == pytest.approx(100)


def test_refit_design_equals_statsmodels_refit_and_the_closed_test_chooses_as_r(fitted):
    import statsmodels.api as sm

    from srnomogram import stats
    from srnomogram.study.freeze import nomogram_predict
    from srnomogram.study.update import choose_update, design_matrix, updated_design

    rng = np.random.default_rng(11)
    d = fitted["new"].copy()
    X = design_matrix(fitted["design"], d)
    # a new centre where the deep-learning score matters more and the shape less: only a refit fits it
    lp_new = -4 + 0.07 * d["age"] + 6 * d["deep_score"] - 0.5 * X["shape=irregular"]
    y = (rng.uniform(size=len(d)) < _plogis(lp_new)).astype(float)
    tests, chosen, used, coef = choose_update(y, fitted["lp_r"], X, 0.05, "refit")
    r = stats.update_closed_test(y, fitted["lp_r"], X.to_numpy(), alpha=0.05)
    assert chosen == r.attrs["method"]
    ref = sm.GLM(y, sm.add_constant(X.to_numpy()), family=sm.families.Binomial()).fit(tol=1e-12)
    np.testing.assert_allclose(coef.to_numpy(), ref.params, rtol=1e-6)
    new = updated_design(fitted["design"], "refit", coef)
    np.testing.assert_allclose(nomogram_predict(new, d)["risk"], ref.predict(sm.add_constant(X.to_numpy())), rtol=1e-7)


def test_a_shifted_intercept_chooses_at_least_intercept_updating_and_forced_fits_equal_statsmodels(fitted):
    import statsmodels.api as sm

    from srnomogram import stats
    from srnomogram.study.update import choose_update, design_matrix

    rng = np.random.default_rng(2)
    X = design_matrix(fitted["design"], fitted["new"])
    lp = fitted["lp_r"]
    y = (rng.uniform(size=len(lp)) < _plogis(1.5 + lp)).astype(float)
    tests, chosen, used, coef = choose_update(y, lp, X, 0.05)
    assert chosen == used == stats.update_closed_test(y, lp, X.to_numpy(), alpha=0.05).attrs["method"]
    assert chosen != "none" and bool(tests.loc[0, "rejected"])
    one = np.ones((len(y), 1))
    _, _, _, ci = choose_update(y, lp, X, 0.05, "intercept")
    ref = sm.GLM(y, one, offset=lp, family=sm.families.Binomial()).fit(tol=1e-12)
    assert ci.iloc[0] == pytest.approx(ref.params[0], rel=1e-7)
    _, _, _, cr = choose_update(y, lp, X, 0.05, "recalibration")
    ref = sm.GLM(y, np.column_stack([one, lp]), family=sm.families.Binomial()).fit(tol=1e-12)
    np.testing.assert_allclose(cr.to_numpy(), ref.params, rtol=1e-7)


def test_update_performance_equals_statsmodels_and_sklearn():
    import statsmodels.api as sm
    from sklearn.metrics import roc_auc_score

    from srnomogram.study.update import update_performance

    rng = np.random.default_rng(4)
    lp = rng.normal(-0.3, 1.2, 300)
    y = (rng.uniform(size=300) < _plogis(0.4 + 0.7 * lp)).astype(float)
    got = update_performance(y, lp)
    one = np.ones((300, 1))
    assert got["citl"] == pytest.approx(sm.GLM(y, one, offset=lp, family=sm.families.Binomial()).fit(tol=1e-12).params[0], rel=1e-8)
    assert got["slope"] == pytest.approx(sm.GLM(y, np.column_stack([one, lp]), family=sm.families.Binomial()).fit(tol=1e-12).params[1], rel=1e-8)
    assert got["auc"] == pytest.approx(roc_auc_score(y, lp), abs=1e-12)
    assert got["brier"] == pytest.approx(np.mean((_plogis(lp) - y) ** 2), abs=1e-15)


def test_patient_bootstrap_moves_the_lesions_of_a_patient_together():
    from srnomogram.study.update import patient_bootstrap

    patients = np.array([1, 1, 1, 2, 3, 3, 4, 5, 5, 5, 5, 6])
    size = {p: (patients == p).sum() for p in np.unique(patients)}
    for idx in patient_bootstrap(patients, 50, seed=3):
        drawn = patients[idx]
        for p in np.unique(drawn):
            k = (drawn == p).sum()
            assert k % size[p] == 0, (p, k)  # all of a drawn patient's lesions, once per draw
            rows = idx[drawn == p]
            assert sorted(set(rows)) == list(np.flatnonzero(patients == p))
        assert len(np.unique(drawn)) <= 6
    a = [i.tolist() for i in patient_bootstrap(patients, 5, seed=3)]
    assert a == [i.tolist() for i in patient_bootstrap(patients, 5, seed=3)]


def test_updated_folder_refuses_the_study_itself_a_folder_inside_it_and_another_study(tmp_path):
    from srnomogram.study.update import updated_folder

    study = tmp_path / "study"
    study.mkdir()
    with pytest.raises(InputError, match="inside the study folder"):
        updated_folder(study, study)
    with pytest.raises(InputError, match="inside the study folder"):
        updated_folder(study / "updated", study)
    other = tmp_path / "other"
    other.mkdir()
    (other / "resolved_config.yaml").write_text("study: {}\n")
    with pytest.raises(InputError, match="holds a study that is not an update"):
        updated_folder(other, study)
    assert updated_folder(tmp_path / "new", study) == (tmp_path / "new").absolute()



@pytest.mark.parametrize("kw,match", [({"alpha": 1.5}, "'alpha' parameter of update"), ({"method": "slope"}, "'method' parameter of update"),
                                      ({"bootstraps": 0}, "'bootstraps' parameter of update"), ({"seed": 1.5}, "'seed' parameter of update")])
def test_bad_parameters_are_refused_in_one_line_before_any_folder_is_written(tmp_path, kw, match):
    from srnomogram.study.update import update

    with pytest.raises(InputError, match=match) as e:
        update(tmp_path / "study", tmp_path / "cohort.csv", tmp_path / "UPDATED", **kw)
    assert "\n" not in str(e.value) and not (tmp_path / "UPDATED").exists()


def test_a_missing_study_is_named_and_nothing_is_written(tmp_path):
    from srnomogram.cli import main

    assert main(["update", str(tmp_path / "nostudy"), str(tmp_path / "cohort.csv"), "-o", str(tmp_path / "UPDATED")]) != 0
    assert not (tmp_path / "UPDATED").exists()

# ================================================================= end to end on the tiny trained study (slow)
slow = pytest.mark.slow


def _logit(p):
    p = np.asarray(p, dtype=float)
    return np.log(p) - np.log1p(-p)


@pytest.fixture(scope="module")
def new_centre(study, tmp_path_factory):
    """A new centre (demo lesions, some patients with two) whose labels come from the study's own nomogram
    with its intercept shifted by +3: the original nomogram predicts far too low risks there."""
    from srnomogram import predict
    from srnomogram.data import demo_cohort

    root = tmp_path_factory.mktemp("new_centre")
    manifest = demo_cohort(root / "cohort", n=40, seed=11, n_volumes=0, second_lesion_share=0.4)
    scores = pd.read_csv(predict(study, manifest, root / "scores.csv"), dtype={"case_id": str})
    df = pd.read_csv(manifest, dtype={"case_id": str, "patient_id": str})
    lp = _logit(df["case_id"].map(dict(zip(scores["case_id"], scores["nomogram"]))))
    rng = np.random.default_rng(0)
    df["label"] = (rng.uniform(size=len(df)) < _plogis(lp + 3.0)).astype(int)
    assert 0 < df["label"].sum() < len(df)
    shifted = manifest.with_name("shifted.csv")  # beside manifest.csv: its relative image paths still hold
    df.to_csv(shifted, index=False)
    return shifted, df.assign(lp=lp, deep_score=df["case_id"].map(dict(zip(scores["case_id"], scores["deep_score"]))))


@pytest.fixture(scope="module")
def updated(study, new_centre, tmp_path_factory):
    from srnomogram.cli import main

    out = tmp_path_factory.mktemp("updated") / "UPDATED"
    assert main(["update", str(study), str(new_centre[0]), "-o", str(out), "--bootstraps", "40", "--seed", "3"]) == 0
    return out


@slow
def test_update_chooses_as_the_closed_test_on_y_lp_x_and_at_least_intercept_for_a_shifted_centre(study, new_centre, updated):
    from srnomogram import stats
    from srnomogram.data.manifest import patient_ids
    from srnomogram.study.external import load_study
    from srnomogram.study.update import design_matrix

    _, df = new_centre
    design = load_study(study).design["nomogram"]
    X = design_matrix(design, df)  # the design columns, from the manifest and predict's deep-learning score
    ref = stats.update_closed_test(df["label"].to_numpy(), df["lp"].to_numpy(), X.to_numpy(), alpha=0.05)
    rec = json.loads((updated / "stages" / "application" / "update.json").read_text())
    assert rec["method"] == rec["closed_test_choice"] == ref.attrs["method"]
    assert rec["method"] in ("intercept", "recalibration", "refit")
    assert rec["chosen_by"].startswith("the closed testing procedure")
    np.testing.assert_allclose([t["statistic"] for t in rec["tests"]], ref["statistic"], rtol=1e-8)
    assert rec["n"] == len(df) and rec["events"] == int(df["label"].sum()) and rec["n_patients"] == patient_ids(df).nunique()
    app = json.loads((updated / "stages" / "application" / "application.json").read_text())
    assert app["update"]["study"] == str(study.resolve()) and "conditional" in app["update"]
    tests = pd.read_csv(updated / "tables" / "update_tests.csv")
    assert tests["statistic"].tolist() == pytest.approx(ref["statistic"].tolist(), rel=1e-8)


@slow
def test_predict_with_the_updated_study_gives_the_update_of_the_original_lp(study, new_centre, updated, tmp_path):
    import statsmodels.api as sm

    from srnomogram import predict
    from srnomogram.study.external import load_study
    from srnomogram.study.update import design_matrix

    manifest, df = new_centre
    rec = json.loads((updated / "stages" / "application" / "update.json").read_text())
    got = pd.read_csv(predict(updated, manifest, tmp_path / "scores.csv"), dtype={"case_id": str})
    got = got.set_index("case_id").loc[df["case_id"]]
    y, lp = df["label"].to_numpy(dtype=float), df["lp"].to_numpy()
    one = np.ones((len(y), 1))
    if rec["method"] == "intercept":  # statsmodels' own fit of the chosen update
        want = _plogis(sm.GLM(y, one, offset=lp, family=sm.families.Binomial()).fit(tol=1e-12).params[0] + lp)
    elif rec["method"] == "recalibration":
        a, b = sm.GLM(y, np.column_stack([one, lp]), family=sm.families.Binomial()).fit(tol=1e-12).params
        want = _plogis(a + b * lp)
    else:
        Z = sm.add_constant(design_matrix(load_study(study).design["nomogram"], df).to_numpy())
        want = sm.GLM(y, Z, family=sm.families.Binomial()).fit(tol=1e-12).predict(Z)
    np.testing.assert_allclose(got["nomogram"].to_numpy(), want, rtol=1e-6)
    c = rec["coefficients"]  # and exactly the recorded update of the original lp
    if rec["method"] in ("intercept", "recalibration"):
        np.testing.assert_allclose(got["nomogram"].to_numpy(), _plogis(c["intercept"] + c.get("slope", 1.0) * lp), rtol=1e-10)
    np.testing.assert_allclose(got["clinical"].to_numpy(),  # the clinical model is not updated
                               pd.read_csv(manifest.parent.parent / "scores.csv", dtype={"case_id": str}).set_index("case_id")
                               .loc[df["case_id"], "clinical"].to_numpy(), rtol=1e-12)


@slow
def test_validate_takes_the_updated_study_and_its_figure_and_calculator_are_the_update(updated, tmp_path):
    from srnomogram import validate
    from srnomogram.data import demo_cohort
    from srnomogram.study.freeze import calculator_spec
    from srnomogram.board import read_pin

    cohort2 = demo_cohort(tmp_path / "c2", n=24, seed=21, n_volumes=0)
    report = validate(updated, cohort2, tmp_path / "val", bootstraps=20, dca_bootstraps=0)
    assert report.is_file()
    auc = pd.read_csv(tmp_path / "val" / "tables" / "external_auc.csv")
    assert "nomogram" in set(auc["model"])
    assert (updated / "figures" / "figure6_nomogram.png").stat().st_size > 1000
    page = (updated / "calculator.html").read_text()
    design = json.loads((updated / "stages" / "nomogram" / "nomogram_design.json").read_text())["nomogram"]
    spec = calculator_spec(read_pin(updated / "board", "nomogram_points"))
    assert spec["intercept"] == pytest.approx(design["intercept"], rel=1e-14)
    assert f"{design['intercept']!r}"[:10] in page


@slow
def test_optimism_comes_from_a_patient_bootstrap_that_repeats_the_closed_test(new_centre, updated):
    from srnomogram.data.manifest import patient_ids
    from srnomogram.study.update import update_performance

    _, df = new_centre
    perf = pd.read_csv(updated / "tables" / "update_performance.csv").set_index("index")
    boot = pd.read_csv(updated / "tables" / "update_bootstrap.csv")
    sample = pd.read_csv(updated / "updating" / "stages" / "update" / "update_sample.csv")
    app = update_performance(sample["label"], sample["lp_updated"])
    for k in ("auc", "citl", "slope", "brier"):
        assert perf.loc[k, "apparent"] == pytest.approx(app[k], rel=1e-10, abs=1e-12)
        ok = boot[boot["failed"].isna()]
        assert perf.loc[k, "corrected"] == pytest.approx(app[k] - (ok[f"{k}_boot"] - ok[f"{k}_orig"]).mean(), rel=1e-10, abs=1e-12)
    assert len(boot) == 40 and perf["bootstraps"].iloc[0] >= 30
    # patients are resampled with all their lesions: a resample's lesion count varies with the patients drawn
    assert boot["n"].nunique() > 1 and (boot["n_patients"] <= patient_ids(df).nunique()).all()
    assert set(boot["method"].dropna()) <= {"none", "intercept", "recalibration", "refit"}


@slow
def test_a_forced_method_is_labelled_as_the_users_choice_and_reuses_the_applied_stages(study, new_centre, updated, tmp_path):
    import shutil

    from srnomogram.study.update import update

    out = tmp_path / "forced"
    shutil.copytree(updated / "updating", out / "updating")  # the applied stages' cache: reused, not recomputed
    update(study, new_centre[0], out, method="recalibration", bootstraps=5)
    rec = json.loads((out / "stages" / "application" / "update.json").read_text())
    assert rec["method"] == "recalibration" and "the user, not by the closed test" in rec["chosen_by"]
    log = json.loads((out / "run_log.json").read_text())
    assert all(s["reused"] for s in log if s["stage"] != "update")
