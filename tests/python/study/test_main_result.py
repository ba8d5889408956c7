"""The main_result stage's tables: the paper's two questions, the participant flow and the sample size."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from srnomogram.metrics import paired_auc_difference, roc_auc_ci
from srnomogram.study.main_result import (
    MAIN_RESULT_COLUMNS, cox_snell_r2, main_result, participant_flow, riley_sample_size, sample_size_table,
)


def _fake_outputs(seed=0, n=80):
    """A nomogram stage's ``predictions`` and a table2 stage's ``scores``: random but with signal."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    split = np.where(np.arange(n) % 4 == 0, "test", "train")
    lp = rng.normal(size=n) + 1.2 * y
    preds = pd.DataFrame({"case_id": [f"c{i}" for i in range(n)], "split": split, "label": y,
                          "risk_clinical": 1 / (1 + np.exp(-lp)),
                          "risk_nomogram": 1 / (1 + np.exp(-(lp + 0.8 * y + rng.normal(scale=0.7, size=n))))})
    scores = preds[["case_id", "split", "label"]].copy()
    for m in ("or_lr", "sr_lr", "or_svm", "or_mobilenet_v2", "sr_mobilenet_v2"):  # or_svm has no SR twin
        scores[m] = rng.normal(size=n) + rng.uniform(0.3, 1.5) * y
    return preds, scores


def test_main_result_single_split_rows_equal_the_metrics_functions():
    preds, scores = _fake_outputs()
    got = main_result(preds, scores, alpha=0.1)
    assert list(got.columns) == MAIN_RESULT_COLUMNS
    t = got.set_index("estimand")
    te = preds[preds["split"] == "test"]
    for name in ("nomogram", "clinical"):
        auc, lo, hi = roc_auc_ci(te["label"], te[f"risk_{name}"], alpha=0.1)
        assert tuple(t.loc[f"auc_{name}_test", ["estimate", "lower", "upper"]]) == pytest.approx((auc, lo, hi), abs=1e-15)
    d = paired_auc_difference(te["label"], te["risk_nomogram"], te["risk_clinical"], alpha=0.1)
    row = t.loc["delta_auc_nomogram_clinical_test"]
    assert (row["estimate"], row["lower"], row["upper"]) == pytest.approx((d["estimate"], d["lower"], d["upper"]), abs=1e-15)
    assert row["n"] == len(te) == 20 and row["n_seeds"] == 1 and np.isnan(row["share_positive"])
    assert "held-out test set (n = 20); paired DeLong 90% CI" in row["method"]
    # SR - OR: every family with both (LR and MobileNetV2), none for OR-SVM alone
    st = scores[scores["split"] == "test"]
    assert sorted(e for e in t.index if e.startswith("delta_auc_sr_or")) == ["delta_auc_sr_or_lr", "delta_auc_sr_or_mobilenet_v2"]
    for fam in ("lr", "mobilenet_v2"):
        d = paired_auc_difference(st["label"], st[f"sr_{fam}"], st[f"or_{fam}"], alpha=0.1)
        assert tuple(t.loc[f"delta_auc_sr_or_{fam}", ["estimate", "lower", "upper"]]) == pytest.approx(
            (d["estimate"], d["lower"], d["upper"]), abs=1e-15)
    assert t.loc["delta_auc_sr_or_mobilenet_v2", "label"] == "SR − OR, MobileNetV2: test AUC difference"


def test_main_result_says_when_the_test_set_chose_the_model():
    preds, scores = _fake_outputs()
    t = main_result(preds, scores, test_chose_model=True).set_index("estimand")
    assert "optimistic, not held out" in t.loc["delta_auc_nomogram_clinical_test", "method"]
    assert "optimistic" not in t.loc["auc_clinical_test", "method"]  # the clinical model uses no score


def test_main_result_carries_the_added_value_rows_over():
    preds, scores = _fake_outputs()
    added = pd.DataFrame([
        {"set": "train", "estimand": "lr_test_deep_score", "estimate": 14.2, "lower": np.nan, "upper": np.nan,
         "statistic": 14.2, "df": 1, "p_value": 0.00016, "method": "likelihood-ratio test (rms::lrtest)"},
        {"set": "test", "estimand": "delta_net_benefit_mean", "estimate": 0.021, "lower": -0.01, "upper": 0.05,
         "statistic": np.nan, "df": np.nan, "p_value": np.nan, "method": "paired bootstrap, thresholds 0.02-0.50"},
    ])
    t = main_result(preds, scores, added_value=added).set_index("estimand")
    assert t.loc["lr_test_deep_score", "estimate"] == 14.2
    assert t.loc["lr_test_deep_score", "method"] == "train set; likelihood-ratio test (rms::lrtest); statistic 14.20, df 1, p < 0.001"
    assert tuple(t.loc["delta_net_benefit_mean", ["estimate", "lower", "upper"]]) == (0.021, -0.01, 0.05)
    assert t.loc["delta_net_benefit_mean", "method"].startswith("test set; paired bootstrap")


def _fake_repeats(k=7, seed=3):
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(k):
        per = {"clinical_test_auc": rng.uniform(0.6, 0.8), "nomogram_test_auc": rng.uniform(0.6, 0.9), "n_test": 40 + s % 2,
               "nomogram_test_slope": rng.uniform(0.5, 1.5), "nomogram_test_citl": rng.normal(scale=0.3)}
        for m in ("or_lr", "sr_lr", "or_svm"):
            rows.append({"seed": s, "model": m, "test_auc": rng.uniform(0.5, 0.9), **per})
    return pd.DataFrame(rows)


def test_main_result_over_split_seeds_gives_mean_percentile_range_and_share_above_zero():
    preds, scores = _fake_outputs()
    reps = _fake_repeats()
    t = main_result(preds, scores, repeats=reps).set_index("estimand")
    per = reps.drop_duplicates("seed")
    d = (per["nomogram_test_auc"] - per["clinical_test_auc"]).to_numpy()
    row = t.loc["delta_auc_nomogram_clinical_test_seeds"]
    assert row["estimate"] == pytest.approx(d.mean(), abs=1e-15)
    assert (row["lower"], row["upper"]) == pytest.approx(tuple(np.percentile(d, [2.5, 97.5])), abs=1e-15)
    assert row["n_seeds"] == 7 and row["share_positive"] == pytest.approx(np.mean(d > 0))
    auc = reps.pivot(index="seed", columns="model", values="test_auc")
    d = (auc["sr_lr"] - auc["or_lr"]).to_numpy()
    row = t.loc["delta_auc_sr_or_lr_seeds"]
    assert (row["estimate"], row["share_positive"]) == pytest.approx((d.mean(), np.mean(d > 0)), abs=1e-15)
    assert "delta_auc_sr_or_svm_seeds" not in t.index
    slope = t.loc["calibration_slope_nomogram_test_seeds"]
    assert slope["estimate"] == pytest.approx(per["nomogram_test_slope"].mean()) and np.isnan(slope["share_positive"])
    assert t.loc["citl_nomogram_test_seeds", "upper"] == pytest.approx(np.percentile(per["nomogram_test_citl"], 97.5))
    assert "mean over 7 split seeds" in row["method"] and t.loc["auc_nomogram_test", "n_seeds"] == 1


def test_participant_flow_counts_lesions_patients_events_and_exclusions():
    cohort = pd.DataFrame({"case_id": list("abcdefgh"), "patient_id": ["p1", "p1", "p2", "p3", "p3", "p4", None, "p5"],
                           "label": [1, 1, 0, 0, 0, 1, 0, 1], "split": ["train"] * 5 + ["test"] * 3})
    excluded = pd.DataFrame({"case_id": ["x", "y", "z"], "patient_id": ["p1", "p9", None], "label": [1, 0, 0],
                             "reason": ["missing clinical value", "missing clinical value", "unreadable image"]})
    flow = participant_flow(cohort, excluded).set_index("step")
    assert flow.loc["read from the manifest"].tolist() == [11, 8, 5]  # patients p1-p5, p9, g and z (own patients)
    assert flow.loc["excluded: missing clinical value"].tolist() == [2, 2, 1]
    assert flow.loc["excluded: unreadable image"].tolist() == [1, 1, 0]
    assert flow.loc["analysed"].tolist() == [8, 6, 4]
    assert flow.loc["training set"].tolist() == [5, 3, 2] and flow.loc["test set"].tolist() == [3, 3, 2]
    # without patient_id one lesion is one patient
    flow = participant_flow(cohort.drop(columns="patient_id"), excluded.iloc[:0].drop(columns="patient_id")).set_index("step")
    assert flow.loc["analysed", "patients"] == 8 and list(flow.index) == ["read from the manifest", "analysed", "training set", "test set"]


def test_riley_sample_size_equals_the_pmsampsize_worked_example():
    # pmsampsize's binary example (README; Riley et al. 2020, BMJ 368:m441): 24 parameters, prevalence 0.174,
    # anticipated Cox-Snell R2 0.288. By hand:
    #   max R2cs = 1 - (0.174^0.174 * 0.826^0.826)^2 = 1 - exp(2 * (-0.46218)) = 0.60321
    #   (i)   n = 24 / ((0.9 - 1) ln(1 - 0.288/0.9)) = 24 / (0.1 * 0.385662) = 622.3 -> 623
    #   (ii)  S = 0.288 / (0.288 + 0.05 * 0.60321) = 0.90520; n = 24 / ((0.90520 - 1) ln(1 - 0.288/0.90520))
    #         = 24 / (0.09480 * 0.38296) = 661.1 -> 662
    #   (iii) n = (1.96/0.05)^2 * 0.174 * 0.826 = 1536.64 * 0.143724 = 220.9 -> 221
    #   final 662, 662 * 0.174 = 115.2 events, EPP 4.8 (pmsampsize prints the same)
    r = riley_sample_size(24, 0.174, 0.288)
    assert (r["n_shrinkage"], r["n_optimism"], r["n_risk"], r["n"]) == (623, 662, 221, 662)
    assert r["max_r2_cs"] == pytest.approx(0.60321, abs=5e-5) and r["shrinkage_optimism"] == pytest.approx(0.9052, abs=5e-5)
    assert r["events"] == pytest.approx(115.188) and r["events_per_parameter"] == pytest.approx(4.8, abs=0.01)
    with pytest.raises(Exception, match="Cox-Snell R2 in"):
        riley_sample_size(24, 0.174, 0.7)


def test_cox_snell_r2_equals_glms_likelihood_ratio():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(5)
    x = rng.normal(size=(120, 2))
    y = (rng.uniform(size=120) < 1 / (1 + np.exp(-(0.5 + x @ [1.0, -0.7])))).astype(int)
    p = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000).fit(x, y).predict_proba(x)[:, 1]
    # R: fit <- glm(y ~ x1 + x2, binomial); 1 - exp(-(fit$null.deviance - fit$deviance) / n)
    ll = np.sum(y * np.log(p) + (1 - y) * np.log(1 - p))
    phi = y.mean()
    ll0 = len(y) * (phi * np.log(phi) + (1 - phi) * np.log(1 - phi))
    assert cox_snell_r2(y, p) == pytest.approx(1 - np.exp(-2 * (ll - ll0) / len(y)), rel=1e-12)
    try:
        from srnomogram import stats

        ro, _, _ = stats._r()
    except Exception:
        return
    f = ro.r("function(y, x1, x2) { fit <- glm(y ~ x1 + x2, family = binomial()); 1 - exp(-(fit$null.deviance - fit$deviance) / length(y)) }")
    v = lambda a: ro.FloatVector(np.asarray(a, float))  # noqa: E731
    assert cox_snell_r2(y, p) == pytest.approx(float(f(v(y), v(x[:, 0]), v(x[:, 1]))[0]), abs=1e-7)


def test_sample_size_table_uses_the_nomograms_parameters_and_its_shrunk_apparent_r2():
    preds, _ = _fake_outputs(n=200)
    coef = pd.DataFrame({"model": ["nomogram"] * 4 + ["clinical"] * 3,
                         "term": ["Intercept", "age", "max_diameter_cm", "deep_score", "Intercept", "age", "max_diameter_cm"]})
    t = sample_size_table(preds, coef, ["age", "max_diameter_cm"]).set_index("item")["value"]
    tr = preds[preds["split"] == "train"]
    n, e = len(tr), int(tr["label"].sum())
    assert t["training lesions"] == n and t["events (malignant) in training"] == e and t["predictor parameters"] == 3
    assert t["events per parameter"] == pytest.approx(e / 3)
    r2 = cox_snell_r2(tr["label"], tr["risk_nomogram"])
    r2_adj = (1 + 3 / (n * np.log(1 - r2))) * r2  # Riley et al. 2020: S_VH * R2_app
    assert t["anticipated Cox–Snell R²"] == pytest.approx(r2_adj, rel=1e-12)
    assert t["minimum n (largest of the three)"] == riley_sample_size(3, e / n, r2_adj)["n"]
    assert t["training set meets the minimum"] == ("yes" if n >= riley_sample_size(3, e / n, r2_adj)["n"] else "no")


def test_main_result_with_two_lesions_per_patient_gives_clustered_delong_intervals():
    """Two lesions per test patient: every interval is Obuchowski's (metrics' groups=), and method says so;
    with one lesion per patient the table is the one without patients, cell for cell."""
    from srnomogram.metrics import CLUSTERED_DELONG

    preds, scores = _fake_outputs(seed=2)
    patients = pd.Series([f"pt{i // 2}" for i in range(len(preds))], index=preds["case_id"])  # pairs of lesions
    split = np.where((np.arange(len(preds)) // 2) % 4 == 0, "test", "train")  # a patient's lesions share the split
    preds["split"], scores["split"] = split, split
    got = main_result(preds, scores, alpha=0.1, patients=patients).set_index("estimand")
    te, st = preds[preds["split"] == "test"], scores[scores["split"] == "test"]
    g = te["case_id"].map(patients).to_numpy()
    for name in ("nomogram", "clinical"):
        auc, lo, hi = roc_auc_ci(te["label"], te[f"risk_{name}"], alpha=0.1, groups=g)
        assert tuple(got.loc[f"auc_{name}_test", ["estimate", "lower", "upper"]]) == pytest.approx((auc, lo, hi), abs=1e-15)
        assert got.loc[f"auc_{name}_test", "method"].endswith(f"90% CI, {CLUSTERED_DELONG}")
        assert "n = 20 lesions of 10 patients" in got.loc[f"auc_{name}_test", "method"]
    d = paired_auc_difference(te["label"], te["risk_nomogram"], te["risk_clinical"], alpha=0.1, groups=g)
    row = got.loc["delta_auc_nomogram_clinical_test"]
    assert (row["estimate"], row["lower"], row["upper"]) == pytest.approx((d["estimate"], d["lower"], d["upper"]), abs=1e-15)
    assert f"paired 90% CI, {CLUSTERED_DELONG}, z = " in row["method"]
    d = paired_auc_difference(st["label"], st["sr_lr"], st["or_lr"], alpha=0.1, groups=st["case_id"].map(patients))
    assert tuple(got.loc["delta_auc_sr_or_lr", ["lower", "upper"]]) == pytest.approx((d["lower"], d["upper"]), abs=1e-15)
    assert CLUSTERED_DELONG in got.loc["delta_auc_sr_or_lr", "method"]
    # one lesion per patient: byte-identical to the table without patients
    single = pd.Series([f"p{i}" for i in range(len(preds))], index=preds["case_id"])
    pd.testing.assert_frame_equal(main_result(preds, scores, alpha=0.1, patients=single), main_result(preds, scores, alpha=0.1))


def test_holm_equals_r_p_adjust_and_statsmodels():
    from statsmodels.stats.multitest import multipletests

    from srnomogram import stats
    from srnomogram.study.main_result import holm

    rng = np.random.default_rng(11)
    cases = [rng.uniform(size=7), np.array([0.01, 0.04, 0.03, 0.005]), np.array([0.2, 0.2, 0.01]),  # ties
             np.array([0.03]), np.array([0.6, 0.9, 0.8]), rng.uniform(0, 0.05, size=12)]
    ro, _, _ = stats._r()
    p_adjust = ro.r('function(p) p.adjust(p, method = "holm")')
    for p in cases:
        r = np.asarray(p_adjust(ro.FloatVector(p)), dtype=float)
        np.testing.assert_allclose(holm(p), r, rtol=0, atol=1e-12)
        np.testing.assert_allclose(holm(p), multipletests(p, method="holm")[1], rtol=0, atol=1e-12)
    # NA: left NA and not counted, as in R
    p = np.array([0.01, np.nan, 0.02, 0.04])
    r = np.asarray(ro.r('p.adjust(c(0.01, NA, 0.02, 0.04), method = "holm")'), dtype=float)
    np.testing.assert_allclose(holm(p), r, rtol=0, atol=1e-12, equal_nan=True)
    assert np.isnan(holm(p)[1]) and holm(p)[0] == pytest.approx(0.03, abs=1e-15)


def test_one_primary_per_question_the_other_families_holm_adjusted_the_rest_labelled_exploratory():
    from srnomogram.study.main_result import holm

    preds, scores = _fake_outputs()
    scores["sr_svm"] = scores["or_svm"] + np.random.default_rng(4).normal(scale=0.8, size=len(scores))
    t = main_result(preds, scores, primary="svm", primary_from="study.primary").set_index("estimand")
    assert t.loc["delta_auc_sr_or_svm", "adjustment"] == "primary comparison of question 1 (study.primary: svm), unadjusted"
    assert np.isnan(t.loc["delta_auc_sr_or_svm", "p_adjusted"])
    assert t.loc["delta_auc_nomogram_clinical_test", "adjustment"] == "primary comparison of question 2 (declared), unadjusted"
    st = scores[scores["split"] == "test"]
    p = [paired_auc_difference(st["label"], st[f"sr_{f}"], st[f"or_{f}"])["p_value"] for f in ("lr", "mobilenet_v2")]
    sec = t.loc[["delta_auc_sr_or_lr", "delta_auc_sr_or_mobilenet_v2"]]
    np.testing.assert_allclose(sec["p_value"], p, atol=1e-15)
    np.testing.assert_allclose(sec["p_adjusted"], holm(p), atol=1e-15)
    assert (sec["p_adjusted"] >= sec["p_value"]).all() and (sec["adjustment"] == "Holm over 2 secondary comparisons").all()
    assert (t.loc[["auc_nomogram_test", "auc_clinical_test"], "adjustment"] == "unadjusted, exploratory").all()
    assert (t["interval"] == "CI").all()
    # without a primary family among the SR - OR rows, all of them are adjusted together
    t = main_result(preds, scores, primary="resnet101").set_index("estimand")
    assert (t.loc[t.index.str.startswith("delta_auc_sr_or_"), "adjustment"] == "Holm over 3 SR − OR comparisons (no primary family among them)").all()
    # seed ranges are labelled as such; the LR test has no interval
    added = pd.DataFrame([{"set": "train", "estimand": "lr_test_deep_score", "estimate": np.nan, "lower": np.nan, "upper": np.nan,
                           "statistic": 9.1, "df": 1, "p_value": 0.0026, "method": "likelihood-ratio test (rms::lrtest)"}])
    t = main_result(preds, scores, repeats=_fake_repeats(), added_value=added, primary="lr").set_index("estimand")
    assert (t.loc[t.index.str.endswith("_seeds"), "interval"] == "seed range").all()
    assert t.loc["lr_test_deep_score", "interval"] == "none" and t.loc["lr_test_deep_score", "p_value"] == 0.0026
    assert t.loc["delta_auc_sr_or_lr_seeds", "adjustment"] == "unadjusted, exploratory"


def _heldout(y, risk, threshold=0.3):
    """The nomogram stage's heldout_validation rows from R's external_validation of these test risks."""
    from srnomogram import stats

    rows = []
    for model, r in (("clinical", risk), ("nomogram", risk)):
        ev = stats.external_validation(y, r, threshold=threshold, g=3, conf_level=0.95)
        rows.append({"model": model, **ev.summary().iloc[0].to_dict()})
    return pd.DataFrame(rows)


def test_calibration_rows_carry_the_test_citl_and_slope_and_say_when_risks_are_too_extreme():
    from scipy.special import expit, logit

    from srnomogram.study.main_result import calibration_sentence

    preds, scores = _fake_outputs()
    rng = np.random.default_rng(8)
    lp = rng.normal(scale=1.2, size=300)
    y = (rng.uniform(size=300) < expit(lp)).astype(float)
    over = expit(2.5 * lp)  # risks too extreme: true slope 1 / 2.5 = 0.4
    held = _heldout(y, over)
    t = main_result(preds, scores, heldout=held).set_index("estimand")
    slope, citl = t.loc["calibration_slope_nomogram_test"], t.loc["citl_nomogram_test"]
    h = held.set_index("model").loc["nomogram"]
    assert (slope["estimate"], slope["lower"], slope["upper"]) == (h["slope"], h["slope_lower"], h["slope_upper"])
    assert (citl["estimate"], citl["lower"], citl["upper"]) == (h["citl"], h["citl_lower"], h["citl_upper"])
    import statsmodels.api as sm  # the slope is glm(y ~ logit(risk))'s

    fit = sm.GLM(y, sm.add_constant(logit(over)), family=sm.families.Binomial()).fit()
    assert slope["estimate"] == pytest.approx(fit.params[1], rel=1e-7) and slope["upper"] < 1
    assert "the nomogram's predicted risks on the test set are too extreme (calibration slope" in slope["method"]
    assert slope["interval"] == "CI" and slope["n"] == 300
    # well calibrated risks: no sentence
    held = _heldout(y, expit(lp))
    t = main_result(preds, scores, heldout=held).set_index("estimand")
    assert "Calibration fails" not in t.loc["calibration_slope_nomogram_test", "method"]
    # the four directions
    assert "too moderate" in calibration_sentence(0.0, -0.2, 0.2, 1.8, 1.2, 2.4)
    assert "systematically too low" in calibration_sentence(0.6, 0.2, 1.0, 1.0, 0.8, 1.2)
    assert "systematically too high" in calibration_sentence(-0.6, -1.0, -0.2, 0.6, 0.4, 0.8)
    assert calibration_sentence(0.1, -0.3, 0.5, 0.6, 0.2, 1.1) is None


def test_main_result_rows_of_the_net_benefit_at_the_thresholds_of_interest():
    preds, scores = _fake_outputs()
    nbt = pd.DataFrame({"set": "test", "model": ["clinical", "nomogram", "clinical", "nomogram"], "threshold": [0.02, 0.02, 0.1, 0.1],
                        "net_benefit": [0.40, 0.41, 0.30, 0.335], "lower": 0.1, "upper": 0.6, "treat_all": [0.39, 0.39, 0.28, 0.28],
                        "delta_vs_clinical": [np.nan, 0.01, np.nan, 0.035], "delta_lower": [np.nan, -0.01, np.nan, 0.0],
                        "delta_upper": [np.nan, 0.03, np.nan, 0.07], "n": 20, "method": "percentile bootstrap over 20 patients (B = 500, seed 0)"})
    t = main_result(preds, scores, nb_thresholds=nbt).set_index("estimand")
    r = t.loc["delta_net_benefit_nomogram_clinical_at_0.1"]
    assert (r["estimate"], r["lower"], r["upper"], r["interval"]) == (0.035, 0.0, 0.07, "CI")
    assert r["label"] == "Nomogram − clinical model: net-benefit difference at threshold 0.1"
    assert r["method"] == ("test set; percentile bootstrap over 20 patients (B = 500, seed 0); net benefit nomogram 0.335, "
                           "clinical model 0.300, treat all 0.280")
    assert "delta_net_benefit_nomogram_clinical_at_0.02" in t.index and r["adjustment"] == "unadjusted, exploratory"


def _stage_inputs(tmp_path, best="sr_svm"):
    """Stand-in split, table2 and nomogram stage folders for run_main_result (what it reads, no R)."""
    import json

    from srnomogram.study.cache import StageResult

    preds, scores = _fake_outputs()
    scores["sr_svm"] = scores["or_svm"] + 0.3 * scores["label"]
    dirs = {k: tmp_path / k for k in ("split", "table2", "nomogram")}
    for d in dirs.values():
        d.mkdir()
    preds.assign(patient_id=preds["case_id"])[["case_id", "patient_id", "split", "label"]].to_csv(dirs["split"] / "cohort.csv", index=False)
    pd.DataFrame(columns=["case_id", "label", "reason"]).to_csv(dirs["split"] / "excluded.csv", index=False)
    scores.to_csv(dirs["table2"] / "scores.csv", index=False)
    (dirs["table2"] / "best_model.json").write_text(json.dumps({"model": best, "label": "SR-SVM", "rule": "cv_auc"}))
    preds.to_csv(dirs["nomogram"] / "predictions.csv", index=False)
    pd.DataFrame({"model": "nomogram", "term": ["Intercept", "age", "max_diameter_cm", "deep_score"]}).to_csv(
        dirs["nomogram"] / "nomogram_coefficients.csv", index=False)
    return {k: StageResult(k, d, "k", {}) for k, d in dirs.items()}


def test_main_result_stage_takes_the_chosen_models_family_as_primary_and_rejects_a_primary_it_lacks(tmp_path):
    from srnomogram.errors import InputError
    from srnomogram.study.cache import Stage, StageContext
    from srnomogram.study.config import config_from_dict
    from srnomogram.study.main_result import primary_family, run_main_result

    assert primary_family("sr_svm") == "svm" and primary_family("or_mobilenet_v2") == "mobilenet_v2"
    inputs = _stage_inputs(tmp_path)

    def run(study):
        cfg = config_from_dict({"cohort": {"manifest": "m.csv", "clinical": ["age", "max_diameter_cm"]},
                                "study": {"output": str(tmp_path / "o"), **study}})
        out = tmp_path / f"out_{len(list(tmp_path.glob('out_*')))}"
        out.mkdir()
        run_main_result(StageContext(config=cfg, inputs=inputs, dir=out, stage=Stage("main_result", lambda c: None), key="k"))
        return pd.read_csv(out / "main_result.csv").set_index("estimand")

    t = run({})
    assert t.loc["delta_auc_sr_or_svm", "adjustment"] == "primary comparison of question 1 (study.primary, default: the family of SR-SVM: svm), unadjusted"
    assert (t.loc[["delta_auc_sr_or_lr", "delta_auc_sr_or_mobilenet_v2"], "adjustment"] == "Holm over 2 secondary comparisons").all()
    t = run({"primary": "lr"})
    assert t.loc["delta_auc_sr_or_lr", "adjustment"] == "primary comparison of question 1 (study.primary: lr), unadjusted"
    with pytest.raises(InputError, match=r"study.primary is 'resnet101', but the study has no SR and OR model of that family "
                                         r"\(families with both: lr, svm, mobilenet_v2\)"):
        run({"primary": "resnet101"})


def test_report_main_result_names_the_primary_the_holm_adjusted_p_and_the_caveats_of_seed_ranges(tmp_path):
    from srnomogram.board import write_pin
    from srnomogram.study.config import config_from_dict
    from srnomogram.study.report import main_result_html

    preds, scores = _fake_outputs()
    scores["sr_svm"] = scores["or_svm"] + 0.3 * scores["label"]
    cfg = config_from_dict({"cohort": {"manifest": "m.csv"}, "sr": {"enabled": False}})
    t = main_result(preds, scores, primary="svm")
    write_pin(tmp_path / "board", "main_result", t)
    page = main_result_html(cfg, {}, tmp_path / "board")
    lr = t.set_index("estimand").loc["delta_auc_sr_or_lr"]
    assert f"Holm over 2 secondary comparisons: adjusted p = {lr['p_adjusted']:.3f}" in page
    assert "primary comparison of question 1 (study.primary: svm), unadjusted" in page
    assert "This difference is question 2&#x27;s declared primary comparison, unadjusted." in page and "not the probability" not in page
    from srnomogram.study.report import COUNT_COLUMNS, is_p_column

    assert is_p_column("p_adjusted") and {"groups", "n_patients"} <= COUNT_COLUMNS  # printed as p-values and counts
    write_pin(tmp_path / "board", "main_result", main_result(preds, scores, repeats=_fake_repeats(), primary="svm"))
    page = main_result_html(cfg, {}, tmp_path / "board")
    assert "Over split seeds: a seed range is the spread of the estimate from one train/test split to another, not a confidence interval" in page
    assert "it is not the probability that the difference is positive" in page and "The estimand is the procedure" in page
