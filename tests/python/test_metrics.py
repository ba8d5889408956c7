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


# ---------------------------------------------------------------- clustered DeLong (Obuchowski 1997)
def _obuchowski_reference(y, scores, cluster):
    """Obuchowski (1997), Biometrics 53:567-578, transcribed with loops over clusters and units.

    ``scores`` is a list of score vectors of the same units (one per "modality"). Returns the AUCs
    and their covariance matrix: for modalities r, s,
    cov_rs = S10_rs / M + S01_rs / N + (S11_rs + S11_sr) / (M N), with the structural components
    V10(X_ij) = 1/N sum_{i'j'} psi(X_ij, Y_i'j'), V01(Y_ik) = 1/M sum_{i'j} psi(X_i'j, Y_ik),
    their cluster sums V10(X_i.), V01(Y_i.) and
    S10_rs = I10 / ((I10 - 1) M) sum_i (V10^r(X_i.) - m_i theta_r)(V10^s(X_i.) - m_i theta_s),
    S01_rs = I01 / ((I01 - 1) N) sum_i (V01^r(Y_i.) - n_i theta_r)(V01^s(Y_i.) - n_i theta_s),
    S11_rs = I / (I - 1) sum_i (V10^r(X_i.) - m_i theta_r)(V01^s(Y_i.) - n_i theta_s).
    """
    y, cluster = list(np.asarray(y)), list(np.asarray(cluster))

    def psi(x, yy):
        return 1.0 if x > yy else (0.5 if x == yy else 0.0)

    ids = []
    for c in cluster:
        if c not in ids:
            ids.append(c)
    big_i = len(ids)
    m = [sum(1 for u in range(len(y)) if cluster[u] == c and y[u] == 1) for c in ids]
    n = [sum(1 for u in range(len(y)) if cluster[u] == c and y[u] == 0) for c in ids]
    big_m, big_n = sum(m), sum(n)
    i10, i01 = sum(1 for v in m if v > 0), sum(1 for v in n if v > 0)
    theta, vx, vy = [], [], []
    for s in scores:
        s = list(np.asarray(s, dtype=float))
        xs = [s[u] for u in range(len(y)) if y[u] == 1]
        ys = [s[u] for u in range(len(y)) if y[u] == 0]
        theta.append(sum(psi(a, b) for a in xs for b in ys) / (big_m * big_n))
        x_sum, y_sum = [], []
        for c in ids:
            tx = ty = 0.0
            for u in range(len(y)):
                if cluster[u] != c:
                    continue
                if y[u] == 1:
                    tx += sum(psi(s[u], b) for b in ys) / big_n
                else:
                    ty += sum(psi(a, s[u]) for a in xs) / big_m
            x_sum.append(tx)
            y_sum.append(ty)
        vx.append(x_sum)
        vy.append(y_sum)
    k = len(scores)
    cov = np.zeros((k, k))
    for r in range(k):
        for q in range(k):
            s10 = i10 / ((i10 - 1) * big_m) * sum((vx[r][i] - m[i] * theta[r]) * (vx[q][i] - m[i] * theta[q]) for i in range(big_i))
            s01 = i01 / ((i01 - 1) * big_n) * sum((vy[r][i] - n[i] * theta[r]) * (vy[q][i] - n[i] * theta[q]) for i in range(big_i))
            s11_rq = big_i / (big_i - 1) * sum((vx[r][i] - m[i] * theta[r]) * (vy[q][i] - n[i] * theta[q]) for i in range(big_i))
            s11_qr = big_i / (big_i - 1) * sum((vx[q][i] - m[i] * theta[q]) * (vy[r][i] - n[i] * theta[r]) for i in range(big_i))
            cov[r, q] = s10 / big_m + s01 / big_n + (s11_rq + s11_qr) / (big_m * big_n)
    return np.array(theta), cov


def _clustered_data(seed, n_patients=40, max_size=4, decimals=8):
    """Patients of 1..max_size lesions (unequal sizes), each lesion benign or malignant on its own, so
    clusters mix benign and malignant units; a patient effect correlates the scores of one patient."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, max_size + 1, n_patients)
    g = np.repeat(np.arange(n_patients) * 7 + 3, sizes)  # ids that are neither 0..I-1 nor sorted codes
    u = np.repeat(rng.normal(size=n_patients), sizes)
    y = (rng.random(len(g)) < 1 / (1 + np.exp(-u))).astype(int)
    s1 = np.round(y + u + 0.7 * rng.normal(size=len(g)), decimals)
    s2 = np.round(0.5 * s1 + 0.5 * y + u + rng.normal(size=len(g)), decimals)
    return y, s1, s2, g


def _ci(auc, var, alpha=0.05):
    from scipy.stats import norm

    half = norm.ppf(1 - alpha / 2) * np.sqrt(var)
    return auc, max(auc - half, 0.0), min(auc + half, 1.0)


@pytest.mark.parametrize("seed,decimals", [(0, 8), (1, 1), (2, 0)])  # decimals 1 and 0: many ties, within and across patients
def test_clustered_auc_ci_and_paired_difference_equal_a_loop_transcription_of_obuchowski_1997(seed, decimals):
    from srnomogram.metrics import CLUSTERED_DELONG, auc_ci_method, paired_auc_difference

    y, s1, s2, g = _clustered_data(seed, decimals=decimals)
    assert pd.Series(g).duplicated().any() and auc_ci_method(g) == CLUSTERED_DELONG
    mixed = pd.DataFrame({"g": g, "y": y}).groupby("g")["y"].nunique()
    assert (mixed == 2).any()  # some patient has a benign and a malignant lesion
    theta, cov = _obuchowski_reference(y, [s1, s2], g)
    got = roc_auc_ci(y, s1, alpha=0.1, groups=g)
    assert got == pytest.approx(_ci(theta[0], cov[0, 0], alpha=0.1), abs=1e-12)
    d = paired_auc_difference(y, s1, s2, groups=g)
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    assert d["estimate"] == pytest.approx(theta[0] - theta[1], abs=1e-12)
    assert d["se"] ** 2 == pytest.approx(var, abs=1e-12, rel=1e-10)
    assert (d["lower"], d["upper"]) == pytest.approx((d["estimate"] - 1.959963984540054 * np.sqrt(var),
                                                      d["estimate"] + 1.959963984540054 * np.sqrt(var)), abs=1e-12)
    assert compare_auc_delong(y, s1, s2, groups=g) == pytest.approx((d["statistic"], d["p_value"]), rel=1e-12)
    # the reference's own S11 matters here: without it (lesions independent) the variance differs
    assert roc_auc_ci(y, s1, alpha=0.1) != pytest.approx(got, abs=1e-6)


@pytest.mark.parametrize("case", CASES)
def test_clustered_variance_with_one_lesion_per_patient_is_procs_delong(golden, case):
    """Singleton clusters: Obuchowski's variance (the clustered code itself, and the loop reference) is
    DeLong's, pROC's ci.auc(method = "delong") of the golden file; and roc_auc_ci keeps its numbers."""
    from srnomogram.metrics import DELONG, _delong_cov, auc_ci_method

    exp, inputs = golden
    d = inputs[case]
    y, s = d["y"].to_numpy().astype(int), d["risk"].to_numpy(float)
    auc, cov = _delong_cov(y, [s], np.arange(len(y)))  # the clustered path, forced
    assert _ci(auc[0], cov[0, 0]) == pytest.approx(tuple(exp.loc[case, ["auc", "lower", "upper"]]), abs=1e-12)
    if len(y) <= 120:  # the loop reference is O(n^2) in Python
        theta, ref = _obuchowski_reference(y, [s], np.arange(len(y)))
        assert cov[0, 0] == pytest.approx(ref[0, 0], abs=1e-12)
    ids = [f"p{i}" for i in range(len(y))]
    assert auc_ci_method(ids) == DELONG
    assert roc_auc_ci(y, s, groups=ids) == roc_auc_ci(y, s)  # byte-identical
    assert compare_auc_delong(y, s, d["age"], groups=ids) == compare_auc_delong(y, s, d["age"])


def test_clustered_paired_variance_with_one_lesion_per_patient_is_procs_paired_delong(proc_paired):
    from srnomogram.metrics import _delong_cov

    y, s1, s2, _ = _clustered_data(5, n_patients=70, max_size=1)
    z, p, lo, hi, var, diff = proc_paired(y, s1, s2)
    _, cov = _delong_cov(y, [s1, s2], np.arange(len(y)))
    assert cov[0, 0] + cov[1, 1] - 2 * cov[0, 1] == pytest.approx(var, abs=1e-12)


@pytest.mark.slow  # about 2 s on one free core, 3000 resamples
def test_clustered_interval_matches_a_patient_bootstrap():
    """The clustered SE agrees with the SD of 3000 patient-bootstrap AUCs (and ΔAUCs) within 10%
    (Monte Carlo error of the SD about 1.3%); the bootstrap AUCs are Mann-Whitney rank sums."""
    from scipy.stats import rankdata

    from srnomogram.metrics import paired_auc_difference

    def mann_whitney(yb, sb):
        big_m = yb.sum()
        return (rankdata(sb)[yb == 1].sum() - big_m * (big_m + 1) / 2) / (big_m * (len(yb) - big_m))

    y, s1, s2, g = _clustered_data(11, n_patients=300, max_size=3)
    auc, lo, hi = roc_auc_ci(y, s1, groups=g)
    se = (hi - lo) / (2 * 1.959963984540054)
    d = paired_auc_difference(y, s1, s2, groups=g)
    rng = np.random.default_rng(0)
    pats = np.unique(g)
    rows = [np.flatnonzero(g == p) for p in pats]
    boot, boot_d = [], []
    for _ in range(3000):
        idx = np.concatenate([rows[i] for i in rng.integers(0, len(pats), len(pats))])
        yb = y[idx]
        a1, a2 = mann_whitney(yb, s1[idx]), mann_whitney(yb, s2[idx])
        boot.append(a1)
        boot_d.append(a1 - a2)
    assert np.std(boot, ddof=1) == pytest.approx(se, rel=0.10)
    assert np.std(boot_d, ddof=1) == pytest.approx(d["se"], rel=0.10)
    naive = roc_auc_ci(y, s1)
    assert (hi - lo) > (naive[2] - naive[1])  # patient effect: lesions of one patient are alike


def test_duplicated_views_widen_the_interval_and_single_views_keep_it():
    """Two views per patient (BUS-BRA's -l/-r): each patient's lesion imaged twice with near-equal
    scores. The clustered interval is the reference's, wider than the naive one (which counts each
    patient twice); with one view per patient both are DeLong's, byte for byte."""
    rng = np.random.default_rng(3)
    n = 80
    y1 = rng.integers(0, 2, n)
    s = y1 + rng.normal(size=n)
    y = np.repeat(y1, 2)
    sv = np.repeat(s, 2) + 0.05 * rng.normal(size=2 * n)
    g = np.repeat([f"case{i}" for i in range(n)], 2)
    theta, cov = _obuchowski_reference(y, [sv], g)
    clustered = roc_auc_ci(y, sv, groups=g)
    assert clustered == pytest.approx(_ci(theta[0], cov[0, 0]), abs=1e-12)
    naive = roc_auc_ci(y, sv)
    assert naive[0] == clustered[0]
    assert clustered[2] - clustered[1] > 1.3 * (naive[2] - naive[1])  # duplicated views: about sqrt(2) wider
    one_view = np.arange(0, 2 * n, 2)
    assert roc_auc_ci(y[one_view], sv[one_view], groups=g[one_view]) == roc_auc_ci(y[one_view], sv[one_view])


@pytest.fixture(scope="module")
def bus_bra_images():
    from .conftest import SHARED

    path = SHARED / "data" / "bus-bra" / "bus_data.csv"
    if not path.is_file():
        pytest.skip(f"BUS-BRA not found at {path}")
    d = pd.read_csv(path)
    return pd.DataFrame({"patient": d["Case"].astype(str), "y": (d["Pathology"] == "malignant").astype(int),
                         "birads": d["BIRADS"].astype(float)})


def test_bus_bra_birads_auc_clustered_by_patient_equals_the_reference(bus_bra_images):
    """Real BUS-BRA (1,875 images of 1,064 patients): the AUC of the radiologist's BI-RADS per image,
    patients as clusters, equals the loop reference; with one image per patient it is DeLong's."""
    from srnomogram.metrics import CLUSTERED_DELONG, auc_ci_method

    d = bus_bra_images
    assert d["patient"].duplicated().sum() == 811 and auc_ci_method(d["patient"]) == CLUSTERED_DELONG
    y, s, g = d["y"].to_numpy(), d["birads"].to_numpy(), d["patient"].to_numpy()
    got = roc_auc_ci(y, s, groups=g)
    assert got[0] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    # the reference on every patient is O(n^2) in pure Python; its V10/V01 sums below are the same
    # formulas with the comparisons counted by numpy
    xs, ys = s[y == 1], s[y == 0]
    v10 = {i: 0.0 for i in dict.fromkeys(g)}
    v01 = dict(v10)
    m = dict.fromkeys(v10, 0)
    n = dict.fromkeys(v10, 0)
    for unit in range(len(y)):
        if y[unit] == 1:
            v10[g[unit]] += (np.sum(s[unit] > ys) + 0.5 * np.sum(s[unit] == ys)) / len(ys)
            m[g[unit]] += 1
        else:
            v01[g[unit]] += (np.sum(xs > s[unit]) + 0.5 * np.sum(xs == s[unit])) / len(xs)
            n[g[unit]] += 1
    theta, big_m, big_n, big_i = got[0], len(xs), len(ys), len(v10)
    i10, i01 = sum(v > 0 for v in m.values()), sum(v > 0 for v in n.values())
    s10 = i10 / ((i10 - 1) * big_m) * sum((v10[c] - m[c] * theta) ** 2 for c in v10)
    s01 = i01 / ((i01 - 1) * big_n) * sum((v01[c] - n[c] * theta) ** 2 for c in v10)
    s11 = big_i / (big_i - 1) * sum((v10[c] - m[c] * theta) * (v01[c] - n[c] * theta) for c in v10)
    assert got == pytest.approx(_ci(theta, s10 / big_m + s01 / big_n + 2 * s11 / (big_m * big_n)), abs=1e-12)
    naive = roc_auc_ci(y, s)
    assert got[2] - got[1] > naive[2] - naive[1]
    first = ~d["patient"].duplicated().to_numpy()
    assert roc_auc_ci(y[first], s[first], groups=g[first]) == roc_auc_ci(y[first], s[first])


def test_groups_must_give_one_patient_per_lesion():
    with pytest.raises(InputError, match=r"'groups' parameter of roc_auc_ci must give one patient per lesion \(4\)\. Got 3"):
        roc_auc_ci([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4], groups=[1, 1, 2])
    with pytest.raises(InputError, match="'groups' parameter of paired_auc_difference is missing for lesion 2"):
        from srnomogram.metrics import paired_auc_difference

        paired_auc_difference([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4], [0.2, 0.1, 0.3, 0.5], groups=["a", "a", None, "b"])


@pytest.mark.parametrize("seed", [0, 1])
def test_clustered_auc_and_comparison_equal_the_r_package(r_side, seed):
    """Python and R: one implementation each of the clustered DeLong interval and test, equal."""
    import rpy2.robjects as ro

    if "cluster" not in list(ro.r("names(formals(srnomogram::roc_auc))")):
        pytest.skip("the installed R package has no roc_auc(cluster = ) (reinstall it from this tree)")
    from srnomogram.metrics import CLUSTERED_DELONG

    y, s1, s2, g = _clustered_data(20 + seed, n_patients=50, decimals=1 + 6 * seed)
    r = r_side.roc_auc(y, s1, cluster=list(g), conf_level=0.9)
    assert roc_auc_ci(y, s1, alpha=0.1, groups=g) == pytest.approx((r["auc"], r["lower"], r["upper"]), abs=1e-12)
    assert r["method"] == CLUSTERED_DELONG
    c = r_side.compare_roc(y, s1, s2, cluster=list(g))
    assert compare_auc_delong(y, s1, s2, groups=g) == pytest.approx((c["statistic"], c["p_value"]), abs=1e-12)
