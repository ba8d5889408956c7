"""Metrics against pROC: golden values from R (``../shared/golden``) and, where R is available, the
R package's own ``roc_auc``/``youden_threshold``/``classification_metrics`` on the same inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from srnomogram.errors import InputError
from srnomogram.metrics import (
    compare_auc_delong, roc_auc, roc_auc_ci, score_check, table2_rows, threshold_metrics, youden_threshold,
)

CASES = ["paper_train", "paper_test", "small", "ties"]


@pytest.fixture(scope="module")
def golden(golden_dir):
    exp = pd.read_csv(golden_dir / "expected_roc.csv").set_index("case")
    inputs = {c: pd.read_csv(golden_dir / f"input_{c}.csv") for c in CASES}
    return exp, inputs


@pytest.mark.parametrize("case", CASES)
def test_auc_and_delong_ci_equal_proc_golden(golden, case):
    exp, inputs = golden
    d = inputs[case]
    auc, lo, hi = roc_auc_ci(d["y"], d["risk"])
    assert auc == pytest.approx(exp.loc[case, "auc"], abs=1e-10)
    assert lo == pytest.approx(exp.loc[case, "lower"], abs=1e-10)
    assert hi == pytest.approx(exp.loc[case, "upper"], abs=1e-10)
    assert roc_auc(d["y"], d["age"]) == pytest.approx(exp.loc[case, "auc_age"], abs=1e-10)


@pytest.mark.parametrize("case", CASES)
def test_paired_delong_test_equals_proc_roc_test(golden, case):
    exp, inputs = golden
    d = inputs[case]
    z, p = compare_auc_delong(d["y"], d["risk"], d["age"])
    assert z == pytest.approx(exp.loc[case, "delong_z"], abs=1e-10)
    assert p == pytest.approx(exp.loc[case, "delong_p"], rel=1e-8, abs=1e-12)


def test_auc_equals_sklearn_and_direction_auto_flips():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    s = np.round(y + rng.normal(size=200), 1)  # ties
    assert roc_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert roc_auc(y, -s, direction="auto") == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert roc_auc(y, -s) == pytest.approx(1 - roc_auc_score(y, s), abs=1e-12)


def test_youden_threshold_is_lowest_midpoint_among_ties():
    # scores 0.1 0.4 | 0.35 0.8: thresholds 0.225, 0.375, 0.6 give J = 0.5, 0.5, 0.5 -> lowest
    assert youden_threshold([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.225)
    # perfect separation: the midpoint between the classes
    assert youden_threshold([0, 0, 1, 1], [1.0, 2.0, 3.0, 5.0]) == pytest.approx(2.5)


def test_threshold_metrics_hand_counted():
    m = threshold_metrics([0, 0, 1, 1, 1], [0.1, 0.6, 0.5, 0.7, 0.2], 0.5)
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (2, 1, 1, 1)  # 0.5 >= 0.5 counts as positive
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["sensitivity"] == pytest.approx(2 / 3) and m["specificity"] == pytest.approx(1 / 2)
    assert m["ppv"] == pytest.approx(2 / 3) and m["npv"] == pytest.approx(1 / 2)
    none = threshold_metrics([0, 1], [0.1, 0.2], 0.9)
    assert np.isnan(none["ppv"]) and none["npv"] == 0.5


def test_table2_rows_use_training_youden_on_test():
    rng = np.random.default_rng(2)
    y_tr, y_te = rng.integers(0, 2, 80), rng.integers(0, 2, 30)
    s_tr, s_te = y_tr + rng.normal(size=80), y_te + rng.normal(size=30)
    t = table2_rows("OR_LR", y_tr, s_tr, y_te, s_te)
    assert list(t["set"]) == ["train", "test"] and (t["model"] == "OR_LR").all()
    th = youden_threshold(y_tr, s_tr)
    assert (t["threshold"] == th).all()
    assert t.loc[1, "sensitivity"] == pytest.approx(threshold_metrics(y_te, s_te, th)["sensitivity"])
    assert t.loc[1, "auc"] == pytest.approx(roc_auc_score(y_te, s_te))
    # no out-of-fold scores: the cut-off and training metrics are apparent, and say so
    assert list(t["threshold_from"]) == ["apparent", "apparent"]
    assert list(t["estimate"]) == ["apparent", "held-out"] and list(t["auc_estimate"]) == ["apparent", "held-out"]


def test_table2_cut_off_and_training_metrics_come_from_out_of_fold_scores():
    rng = np.random.default_rng(5)
    y_tr, y_te = rng.integers(0, 2, 90), rng.integers(0, 2, 40)
    s_tr = y_tr * 2.0 + rng.normal(0, 0.5, 90)  # full fit: in-sample, overconfident
    s_cv = y_tr * 0.8 + rng.normal(0, 1.0, 90)  # out-of-fold: what a new lesion would get
    s_te = y_te * 0.8 + rng.normal(0, 1.0, 40)
    t = table2_rows("OR_LR", y_tr, s_tr, y_te, s_te, s_train_cv=s_cv).set_index("set")
    th_cv, th_fit = youden_threshold(y_tr, s_cv), youden_threshold(y_tr, s_tr)
    assert th_cv != pytest.approx(th_fit)  # the old in-sample cut-off differs
    assert t.loc["train", "threshold"] == th_cv and t.loc["test", "threshold"] == th_cv
    # training metrics: the out-of-fold scores at that cut-off, counted by hand
    pos = s_cv >= th_cv
    assert t.loc["train", "sensitivity"] == pytest.approx(np.sum(pos & (y_tr == 1)) / np.sum(y_tr == 1), abs=1e-15)
    assert t.loc["train", "specificity"] == pytest.approx(np.sum(~pos & (y_tr == 0)) / np.sum(y_tr == 0), abs=1e-15)
    assert t.loc["train", "accuracy"] == pytest.approx(np.mean(pos == (y_tr == 1)), abs=1e-15)
    assert t.loc["train", "ppv"] == pytest.approx(np.sum(pos & (y_tr == 1)) / np.sum(pos), abs=1e-15)
    # the test rows: the frozen cut-off on the test scores
    pos_te = s_te >= th_cv
    assert t.loc["test", "npv"] == pytest.approx(np.sum(~pos_te & (y_te == 0)) / np.sum(~pos_te), abs=1e-15)
    # the training AUC stays the full fit's, labelled apparent; the cross-validated AUC beside it
    assert t.loc["train", "auc"] == pytest.approx(roc_auc_score(y_tr, s_tr), abs=1e-12)
    assert t.loc["train", "cv_auc"] == pytest.approx(roc_auc_score(y_tr, s_cv), abs=1e-12)
    assert (t.loc["train", "auc_estimate"], t.loc["train", "estimate"], t.loc["train", "threshold_from"]) == (
        "apparent", "cross-validated", "cross-validated")
    assert (t.loc["test", "estimate"], t.loc["test", "threshold_from"]) == ("held-out", "cross-validated")


def test_bad_inputs_raise_input_error():
    with pytest.raises(InputError, match="both classes"):
        roc_auc_ci([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(InputError, match="finite"):
        roc_auc_ci([0, 1, 1], [0.1, np.nan, 0.3])
    with pytest.raises(InputError, match="same length"):
        roc_auc_ci([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(InputError, match="'alpha' parameter of roc_auc_ci"):
        roc_auc_ci([0, 1], [0.1, 0.2], alpha=2)
    with pytest.raises(InputError, match="'y' parameter"):
        roc_auc_ci([0, 2], [0.1, 0.2])


@pytest.fixture(scope="module")
def r_side():
    try:
        from srnomogram import stats

        if not stats.has_function("roc_auc"):
            pytest.skip("the installed R package has no roc_auc (reinstall it from this tree)")
    except Exception as exc:  # R, rpy2 or the R package missing
        pytest.skip(f"R side not available: {exc}")
    return stats


@pytest.fixture(scope="module")
def proc():
    """pROC itself through rpy2: a function (y, score) -> (auc, lower, upper, youden threshold)."""
    try:
        from srnomogram import stats

        ro, _, _ = stats._r()
        ro.r("suppressPackageStartupMessages(library(pROC))")
    except Exception as exc:
        pytest.skip(f"R/pROC not available: {exc}")
    f = ro.r(
        """function(y, s) {
             r <- roc(y, s, levels = c(0, 1), direction = "<", quiet = TRUE)
             ci <- ci.auc(r, method = "delong")
             j <- r$sensitivities + r$specificities
             ok <- is.finite(r$thresholds)
             c(as.numeric(r$auc), ci[1], ci[3], min(r$thresholds[ok][j[ok] == max(j[ok])]))
           }"""
    )

    def run(y, s):
        return tuple(float(v) for v in f(ro.FloatVector(np.asarray(y, float)), ro.FloatVector(np.asarray(s, float))))

    return run


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_auc_ci_and_youden_equal_proc_via_rpy2(proc, seed):
    rng = np.random.default_rng(10 + seed)
    n = 40 + 30 * seed
    y = rng.integers(0, 2, n)
    s = np.round(y * 0.7 + rng.normal(size=n), 1 if seed % 2 else 8)
    auc, lo, hi, th = proc(y, s)
    assert roc_auc_ci(y, s) == pytest.approx((auc, lo, hi), abs=1e-10)
    assert youden_threshold(y, s) == pytest.approx(th, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_ci_threshold_and_metrics_equal_r_package(r_side, seed):
    rng = np.random.default_rng(seed)
    n = 60 + 20 * seed
    y = rng.integers(0, 2, n)
    s = np.round(y * 0.8 + rng.normal(size=n), 1 if seed == 2 else 6)
    r = r_side.roc_auc(y, s)
    auc, lo, hi = roc_auc_ci(y, s)
    assert (auc, lo, hi) == pytest.approx((r["auc"], r["lower"], r["upper"]), abs=1e-10)
    th = youden_threshold(y, s)
    r_th = float(r_side.call("youden_threshold", y.astype(float), s.astype(float)))
    assert th == pytest.approx(r_th, abs=1e-12)
    rm = r_side.classification_metrics(y, s, threshold=th)
    ours = threshold_metrics(y, s, th)
    for k in ("accuracy", "sensitivity", "specificity", "ppv", "npv"):
        assert ours[k] == pytest.approx(float(np.asarray(rm[k]).ravel()[0]), abs=1e-12), k


@pytest.mark.parametrize("case", CASES)
def test_score_check_uses_the_proc_delong_interval_and_flags_a_lower_bound_at_or_below_one_half(golden, case):
    exp, inputs = golden
    d = inputs[case]
    check = score_check("m", d["y"], d["risk"], alpha=0.05)
    assert (check["cv_auc"], check["cv_auc_lower"], check["cv_auc_upper"]) == pytest.approx(
        tuple(exp.loc[case, ["auc", "lower", "upper"]]), abs=1e-10)
    assert check["no_signal"] is bool(exp.loc[case, "lower"] <= 0.5)
    # the score reversed: AUC 1 - auc, interval mirrored, so a positive signal becomes no signal
    flipped = score_check("m", d["y"], -d["risk"], alpha=0.05)
    assert flipped["cv_auc_upper"] == pytest.approx(1 - check["cv_auc_lower"], abs=1e-10)
    assert flipped["no_signal"] is True


def test_score_check_without_out_of_fold_scores_says_it_could_not_check():
    check = score_check("m", [0, 1, 0, 1], None)
    assert check["no_signal"] is None and np.isnan(check["cv_auc"])


@pytest.fixture(scope="module")
def proc_paired():
    """pROC through rpy2: (y, s1, s2) -> roc.test(delong, paired) statistic, p, conf.int and the
    DeLong var(roc1) + var(roc2) - 2 cov(roc1, roc2) of the difference."""
    try:
        from srnomogram import stats

        ro, _, _ = stats._r()
        ro.r("suppressPackageStartupMessages(library(pROC))")
    except Exception as exc:
        pytest.skip(f"R/pROC not available: {exc}")
    f = ro.r(
        """function(y, s1, s2, level) {
             r1 <- roc(y, s1, levels = c(0, 1), direction = "<", quiet = TRUE)
             r2 <- roc(y, s2, levels = c(0, 1), direction = "<", quiet = TRUE)
             t <- roc.test(r1, r2, method = "delong", paired = TRUE, conf.level = level)
             ci <- if (is.null(t$conf.int)) c(NA, NA) else as.numeric(t$conf.int)
             v <- var(r1, method = "delong") + var(r2, method = "delong") - 2 * cov(r1, r2, method = "delong")
             c(as.numeric(t$statistic), t$p.value, ci, v, as.numeric(r1$auc) - as.numeric(r2$auc))
           }"""
    )

    def run(y, s1, s2, level=0.95):
        v = lambda x: ro.FloatVector(np.asarray(x, float))  # noqa: E731
        return tuple(float(x) for x in f(v(y), v(s1), v(s2), level))

    return run


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_paired_auc_difference_equals_proc_roc_test_and_its_delong_covariance(proc_paired, seed):
    from scipy.stats import norm

    from srnomogram.metrics import paired_auc_difference

    rng = np.random.default_rng(30 + seed)
    n = 50 + 40 * seed
    y = rng.integers(0, 2, n)
    s1 = np.round(y * 1.0 + rng.normal(size=n), 1 if seed == 1 else 8)  # ties in one case
    s2 = np.round(0.6 * s1 + y * 0.3 + rng.normal(size=n), 8)  # correlated with s1, as two nested models are
    level = 0.9 if seed == 2 else 0.95
    z, p, lo, hi, var, diff = proc_paired(y, s1, s2, level)
    got = paired_auc_difference(y, s1, s2, alpha=1 - level)
    assert got["estimate"] == pytest.approx(diff, abs=1e-12)
    assert got["se"] ** 2 == pytest.approx(var, rel=1e-10)
    assert (got["statistic"], got["p_value"]) == pytest.approx((z, p), rel=1e-9)
    half = norm.ppf(1 - (1 - level) / 2) * np.sqrt(var)
    assert (got["lower"], got["upper"]) == pytest.approx((diff - half, diff + half), abs=1e-10)
    if np.isfinite(lo):  # pROC >= 1.16 gives the interval itself
        assert (got["lower"], got["upper"]) == pytest.approx((lo, hi), abs=1e-10)
    assert (got["statistic"], got["p_value"]) == pytest.approx(compare_auc_delong(y, s1, s2), rel=1e-12)


def test_paired_auc_difference_of_a_score_with_itself_has_no_interval():
    from srnomogram.metrics import paired_auc_difference

    y = np.array([0, 0, 1, 1, 0, 1])
    s = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.7])
    got = paired_auc_difference(y, s, s)
    assert got["estimate"] == 0 and np.isnan(got["lower"]) and np.isnan(got["p_value"])
    with pytest.raises(Exception, match="alpha"):
        paired_auc_difference(y, s, s, alpha=1.5)


def test_test_auc_cnn_picks_among_the_cnns_by_model_id_and_refuses_a_study_without_one():
    """The CNNs are told from the radiomics models by the registry's parse of the id (names.parse_model_id),
    not by a suffix: a network whose name ends like a radiomics method would still count as a CNN."""
    from srnomogram.errors import ConfigError
    from srnomogram.metrics import choose_best

    rng = np.random.default_rng(3)
    y = np.repeat([0, 1], 20)
    split = np.tile(["train", "test"], 20)
    scores = pd.DataFrame({"split": split, "label": y, "or_lr": y + rng.normal(0, 0.1, 40),  # the best test AUC
                           "sr_mobilenet_v2": y + rng.normal(0, 1.0, 40), "or_resnet101": y + rng.normal(0, 2.0, 40)})
    test = scores["split"] == "test"
    aucs = {m: roc_auc_score(y[test], scores.loc[test, m]) for m in ("or_lr", "sr_mobilenet_v2", "or_resnet101")}
    best, table = choose_best(scores, ["or_lr", "sr_mobilenet_v2", "or_resnet101"], "test_auc_cnn")
    assert best == max(("sr_mobilenet_v2", "or_resnet101"), key=aucs.get) and aucs["or_lr"] > aucs[best]
    assert best == choose_best(scores.drop(columns="or_lr"), ["sr_mobilenet_v2", "or_resnet101"], "test_auc")[0]
    with pytest.raises(ConfigError, match="test_auc_cnn"):
        choose_best(scores, ["or_lr"], "test_auc_cnn")
    # a registered network named like a radiomics method ("tiny_svm") is a CNN: the old suffix test dropped it
    from srnomogram.deep.registry import NetworkSpec, register_network, unregister_network

    register_network(NetworkSpec("tiny_svm", builder="mobilenet_v2", head="classifier.1", gradcam_layer="features.18",
                                 label="TinySVM", paper_label="TinySVM"))
    try:
        cnn = scores.rename(columns={"sr_mobilenet_v2": "sr_tiny_svm"})
        assert choose_best(cnn, ["or_lr", "sr_tiny_svm"], "test_auc_cnn")[0] == "sr_tiny_svm"
    finally:
        unregister_network("tiny_svm")
