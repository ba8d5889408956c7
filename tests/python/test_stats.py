"""rpy2 bridge: R's numbers through pandas, R errors as Python exceptions."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from srnomogram.errors import InputError, RBridgeError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _r_package_available():
    if os.environ.get("SRNOMOGRAM_R_SOURCE"):
        return True
    from srnomogram.stats import r_library_paths

    code = "quit(status = !requireNamespace('srnomogram', quietly = TRUE))"
    env = dict(os.environ, R_LIBS=os.pathsep.join(r_library_paths()))
    try:
        return subprocess.run(["Rscript", "-e", code], env=env, capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


pytestmark = pytest.mark.skipif(not _r_package_available(), reason="R package srnomogram not installed")


def _needs(fname):
    from srnomogram import stats

    if not stats.has_function(fname):
        pytest.skip(f"the installed R package has no {fname}() yet")


def test_hl_test_equals_resourceselection_golden_values(golden_dir):
    from srnomogram import stats

    _needs("hl_test")
    gold = pd.read_csv(golden_dir / "expected_hoslem.csv")
    for case in ("paper_train", "small"):
        data = pd.read_csv(golden_dir / f"input_{case}.csv")
        for _, row in gold[gold["case"] == case].iterrows():
            res = stats.hl_test(data["y"], data[row["predictor"]], g=int(row["g"]))
            assert res["statistic"] == pytest.approx(row["statistic"], rel=1e-8)
            assert res["df"] == row["df"]
            assert res["p_value"] == pytest.approx(row["p.value"], rel=1e-7)


def test_r_error_becomes_rbridgeerror_with_r_message():
    from srnomogram import stats

    _needs("hl_test")
    with pytest.raises(RBridgeError, match=r"hl_test: `y` must be a binary outcome coded 0/1") as info:
        stats.hl_test(np.array([0, 1, 2, 1]), np.array([0.1, 0.2, 0.3, 0.4]))
    assert "srnomogram_error_input" in info.value.r_classes


def test_data_frames_round_trip_through_r():
    from srnomogram import stats

    df = pd.DataFrame({"y": [0, 1, 1, 0], "age": [40.5, 61.0, 55.0, 38.0], "group": ["a", "b", "b", "a"]})
    back = stats.call("identity", df, _namespace="base")
    assert list(back.columns) == ["y", "age", "group"]
    np.testing.assert_array_equal(back["age"].to_numpy(), df["age"].to_numpy())
    assert list(back["group"]) == ["a", "b", "b", "a"]


def test_r_versions_reports_r_and_packages():
    from srnomogram import stats

    v = stats.r_versions()
    assert v["R"].count(".") == 2 and v["rms"]


def test_missing_r_function_is_an_rbridgeerror():
    from srnomogram import stats

    with pytest.raises(RBridgeError, match="has no function 'no_such_statistic'"):
        stats.call("no_such_statistic", 1)


def test_logistic_table_per_unit_through_the_bridge_equals_an_unpenalised_sklearn_fit(golden_dir):
    """A dict ``per`` reaches R as a named list; the OR per 0.1 of the score is exp(0.1 b) of sklearn's
    maximum-likelihood slope."""
    from sklearn.linear_model import LogisticRegression

    from srnomogram import stats

    data = pd.read_csv(golden_dir / "input_paper_train.csv")
    tab = stats.logistic_table(data[["y", "score", "age"]], outcome="y", vars=["score", "age"], per={"score": 0.1})
    assert tab["unit"].tolist() == [0.1, 1.0]
    for row, var in zip(tab.itertuples(), ("score", "age")):
        lr = LogisticRegression(C=np.inf, tol=1e-10, max_iter=10_000).fit(data[[var]], data["y"])
        assert row.uni_or == pytest.approx(np.exp(row.unit * lr.coef_[0, 0]), rel=1e-5)


# ------------------------------------------------------------------ the Python -> R path on a tiny cohort
# Every statistic the study computes through the bridge, on 90 synthetic lesions, each against a
# reference computed independently (numpy closed forms, scikit-learn, the package's own Python
# DeLong, or rms called directly through the bridge). Small B keeps the whole block to seconds.
def _tiny_cohort(n=90, seed=11):
    rng = np.random.default_rng(seed)
    age = rng.normal(52, 11, n).round()
    size = rng.gamma(3.0, 0.7, n).round(2)
    score = rng.uniform(0, 1, n)
    y = rng.binomial(1, 1 / (1 + np.exp(-(-7.5 + 0.09 * age + 0.5 * size + 3.0 * score))))
    return pd.DataFrame({"label": y, "age": age, "max_diameter_cm": size, "deep_score": score})


FORMULA = "label ~ age + max_diameter_cm + deep_score"
PREDICTORS = ["age", "max_diameter_cm", "deep_score"]


@pytest.fixture(scope="module")
def tiny():
    from srnomogram import stats

    d = _tiny_cohort()
    fit = stats.fit_nomogram(FORMULA, d)
    return d, fit


def _sklearn_unpenalised(d):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=np.inf, tol=1e-12, max_iter=100_000).fit(d[PREDICTORS], d["label"])


def test_fit_and_predict_equal_an_unpenalised_maximum_likelihood_fit(tiny):
    from srnomogram import stats

    d, fit = tiny
    lr = _sklearn_unpenalised(d)
    coef = fit.summary()
    np.testing.assert_allclose(coef["coef"].to_numpy(), np.r_[lr.intercept_, lr.coef_[0]], rtol=1e-4, atol=1e-6)
    new = _tiny_cohort(n=30, seed=12)
    risk = stats.predict(fit, newdata=new)
    np.testing.assert_allclose(risk, lr.predict_proba(new[PREDICTORS])[:, 1], atol=1e-6)
    b = coef["coef"].to_numpy()
    lp = b[0] + new[PREDICTORS].to_numpy() @ b[1:]
    np.testing.assert_allclose(stats.predict(fit, newdata=new, type="lp"), lp, rtol=1e-12)
    np.testing.assert_allclose(stats.predict(fit), 1 / (1 + np.exp(-(b[0] + d[PREDICTORS].to_numpy() @ b[1:]))), rtol=1e-12)


def _rms_reference(d, verb, B, seed):
    """rms::lrm then rms::<verb>(method = "boot") after set.seed, called directly through the bridge."""
    from srnomogram import stats

    ref_fit = stats.call("lrm", stats.Formula(FORMULA), data=d, x=True, y=True, _namespace="rms")
    stats.call("set.seed", seed, _namespace="base")
    res = stats.call(verb, ref_fit, method="boot", B=B, _namespace="rms")
    cols = list(stats.call("colnames", res, _namespace="base"))
    rows = stats.call("rownames", res, _namespace="base")
    m = np.asarray(stats.call("unclass", res, _namespace="base"), dtype=float)
    return pd.DataFrame(m, columns=cols, index=None if rows is None else list(np.atleast_1d(rows)))


def test_bootstrap_calibration_equals_rms_calibrate_called_directly(tiny):
    from srnomogram import stats

    d, fit = tiny
    cal = stats.calibrate_nomogram(fit, B=25, seed=3)
    ref = _rms_reference(d, "calibrate", 25, 3)
    tab = cal.frame()
    np.testing.assert_allclose(tab["bias_corrected"], ref["calibrated.corrected"], rtol=1e-12)
    np.testing.assert_allclose(tab["apparent"], ref["calibrated.orig"], rtol=1e-12)
    summ = cal.summary()
    assert summ.shape[0] == 1 and summ.loc[0, "B"] == 25 and summ.loc[0, "mode"] == "bootstrap"
    p = np.asarray(stats.predict(fit))
    assert summ.loc[0, "n"] == len(p)


def test_validate_nomogram_equals_rms_validate_and_its_apparent_auc_is_sklearns(tiny):
    from sklearn.metrics import roc_auc_score

    from srnomogram import stats

    d, fit = tiny
    v = stats.validate_nomogram(fit, B=25, seed=4)
    ref = _rms_reference(d, "validate", 25, 4)
    assert v["index"].tolist() == [*ref.index, "AUC"]
    cols = ["index.orig", "training", "test", "optimism", "index.corrected", "n"]
    np.testing.assert_allclose(v[cols].to_numpy()[:-1], ref[cols].to_numpy(), rtol=1e-12, atol=1e-15)
    auc = v.set_index("index").loc["AUC"]
    assert auc["index.orig"] == pytest.approx(roc_auc_score(d["label"], stats.predict(fit)), abs=1e-12)
    assert auc["index.corrected"] == pytest.approx(auc["index.orig"] - auc["optimism"], abs=1e-12)
    assert v.attrs["B"] == 25 and v.attrs["seed"] == 4
    with pytest.raises(TypeError):
        stats.validate_nomogram(fit, B=25)  # the seed is never implicit
    with pytest.raises(InputError, match="'seed' parameter of validate_nomogram"):
        stats.validate_nomogram(fit, B=25, seed=1.5)
    for bad in (0, 2.5):
        with pytest.raises(RBridgeError, match="whole number >= 1"):
            stats.validate_nomogram(fit, B=bad, seed=1)


def _hl_numpy(y, p, g):
    """Hosmer–Lemeshow by hand: groups cut at R's (type-7) quantiles, right-closed, lowest included."""
    from scipy.stats import chi2

    q = np.quantile(p, np.linspace(0, 1, g + 1))
    grp = np.maximum(np.searchsorted(q, p, side="left"), 1) - 1
    stat = 0.0
    for k in range(g):
        o1, e1, n = y[grp == k].sum(), p[grp == k].sum(), (grp == k).sum()
        stat += (o1 - e1) ** 2 / e1 + ((n - o1) - (n - e1)) ** 2 / (n - e1)
    return stat, chi2.sf(stat, g - 2)


def test_hosmer_lemeshow_equals_the_statistic_computed_by_hand(tiny):
    from srnomogram import stats

    d, fit = tiny
    p = stats.predict(fit)
    for g in (5, 10):
        h = stats.hl_test(d["label"], p, g=g)
        stat, pval = _hl_numpy(d["label"].to_numpy(), p, g)
        assert h["statistic"] == pytest.approx(stat, rel=1e-10)
        assert h["df"] == g - 2
        assert h["p_value"] == pytest.approx(pval, rel=1e-8)


def test_decision_curve_with_seeded_bootstrap_bands_equals_net_benefit_by_hand(tiny):
    """NB = TP/n - FP/n * t/(1-t) (high risk: risk > t); the band: the type-1 2.5/97.5% quantiles of NB
    over the resamples R draws after set.seed (sample.int, one per replicate, as rmda)."""
    from srnomogram import stats

    d, fit = tiny
    y = d["label"].to_numpy()
    risk = stats.predict(fit)
    frame = pd.DataFrame({"label": y, "risk": risk})
    t = np.round(np.arange(0.05, 0.95, 0.05), 10)
    B, seed, n = 30, 21, len(y)
    dc = stats.decision_curve("label ~ risk", frame, fitted_risk=True, thresholds=list(t),
                              conf_level=0.9, bootstraps=B, seed=seed)
    model = dc[dc["model"] == "label ~ risk"]

    def nb(yy, rr):
        hi = rr[:, None] > t[None, :]
        tp = (hi & (yy[:, None] == 1)).sum(0) / len(yy)
        fp = (hi & (yy[:, None] == 0)).sum(0) / len(yy)
        return tp - fp * t / (1 - t)

    np.testing.assert_allclose(model["NB"], nb(y, risk), atol=1e-12)
    stats.call("set.seed", seed, _namespace="base")
    idx = [np.asarray(stats.call("sample.int", n, replace=True, _namespace="base"), dtype=int) - 1 for _ in range(B)]
    reps = np.array([nb(y[i], risk[i]) for i in idx])
    k = lambda p: int(np.ceil(B * p - 1e-9)) - 1  # noqa: E731 - type-1 quantile: the ceil(B p)-th order statistic
    srt = np.sort(reps, axis=0)
    np.testing.assert_allclose(model["NB_lower"], srt[k(0.05)], atol=1e-12)
    np.testing.assert_allclose(model["NB_upper"], srt[k(0.95)], atol=1e-12)
    allrow = dc[dc["model"] == "All"]
    prev = y.mean()
    np.testing.assert_allclose(allrow["NB"], prev - (1 - prev) * t / (1 - t), atol=1e-12)


def test_roc_auc_and_delong_comparison_equal_the_python_delong(tiny):
    from sklearn.metrics import roc_auc_score

    from srnomogram import metrics, stats

    d, fit = tiny
    y = d["label"].to_numpy()
    risk = stats.predict(fit)
    clin = stats.predict(stats.fit_nomogram("label ~ age + max_diameter_cm", d))
    r = stats.roc_auc(y, risk, conf_level=0.9)
    auc, lo, hi = metrics.roc_auc_ci(y, risk, alpha=0.1)
    assert r["auc"] == pytest.approx(roc_auc_score(y, risk), abs=1e-12)
    assert (r["lower"], r["upper"]) == pytest.approx((lo, hi), abs=1e-10)
    assert isinstance(r, pd.Series) and r["conf_level"] == 0.9
    assert (r["n_cases"], r["n_controls"]) == (y.sum(), len(y) - y.sum())
    c = stats.compare_roc(y, risk, clin)
    z, p = metrics.compare_auc_delong(y, risk, clin)
    assert isinstance(c, pd.Series)
    assert c["statistic"] == pytest.approx(z, rel=1e-9)
    assert c["p_value"] == pytest.approx(p, rel=1e-9)
    assert (c["auc_of_score1"], c["auc_of_score2"]) == pytest.approx((auc, metrics.roc_auc(y, clin)), abs=1e-12)
    curve = stats.roc_curve(y, risk)
    assert list(curve.columns) == ["threshold", "sensitivity", "specificity"]
    fpr, tpr = 1 - curve["specificity"].to_numpy()[::-1], curve["sensitivity"].to_numpy()[::-1]
    assert float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2)) == pytest.approx(auc, abs=1e-12)  # trapezoids


def test_missing_values_in_object_and_nullable_columns_reach_r_as_na():
    from srnomogram import stats

    df = pd.DataFrame({
        "group": pd.Series(["a", None, "b", np.nan, "a"], dtype=object),
        "num_obj": pd.Series([1.5, None, 3.0, 4.0, np.nan], dtype=object),
        "int_obj": pd.Series([1, 2, None, 4, 5], dtype=object),
        "flag": pd.Series([True, None, False, True, True], dtype=object),
        "nullable": pd.array([1, 2, pd.NA, 4, 5], dtype="Int64"),
        "text": pd.array(["x", "y", pd.NA, "x", "z"], dtype="string"),
    })
    na = stats.call("is.na", df, _namespace="base")
    np.testing.assert_array_equal(np.asarray(na, dtype=bool), df.isna().to_numpy())
    kinds = stats.call("sapply", df, "typeof", _namespace="base")
    assert kinds.to_dict() == {"group": "character", "num_obj": "double", "int_obj": "integer", "flag": "logical",
                               "nullable": "integer", "text": "character"}
    back = stats.call("identity", df, _namespace="base")
    assert back["group"].tolist()[::2] == ["a", "b", "a"]
    assert not back["group"].astype(str).isin(["nan", "None", "<NA>"]).iloc[[0, 2, 4]].any()


def test_a_missing_clinical_value_in_an_object_column_is_dropped_not_a_category(tiny):
    from srnomogram import stats

    d, fit = tiny
    holed = d.copy()
    holed["max_diameter_cm"] = holed["max_diameter_cm"].astype(object)
    holed.loc[3, "max_diameter_cm"] = None
    with pytest.warns(stats.RWarning, match="1 observation with missing data removed"):
        f = stats.fit_nomogram(FORMULA, holed)
    ref = stats.fit_nomogram(FORMULA, d.drop(index=3).reset_index(drop=True))
    np.testing.assert_allclose(f.summary()["coef"], ref.summary()["coef"], rtol=1e-12)


def test_every_result_is_pandas_or_a_handle_and_formulas_are_never_guessed_from_strings(tiny):
    """One bridge shape: tables are DataFrames, test summaries Series, fits handles with .frame()/.summary();
    a string with "~" stays an R string unless it is a Formula or a ``formula`` argument."""
    from srnomogram import stats

    d, fit = tiny
    assert isinstance(fit, stats.RObject) and not hasattr(fit, "element")
    assert stats.model_formula(fit) == FORMULA
    h = stats.hl_test(d["label"], stats.predict(fit))
    assert isinstance(h, pd.Series) and h["method"].startswith("Hosmer and Lemeshow")
    assert stats.call("identity", "label ~ age", _namespace="base") == "label ~ age"
    assert stats.call("class", stats.Formula("label ~ age"), _namespace="base") == "formula"
    with pytest.raises(InputError, match="'formula' parameter of fit_nomogram"):
        stats.fit_nomogram("label", d)
    with pytest.warns(FutureWarning, match="formula first"):
        old = stats.fit_nomogram(d, FORMULA)
    np.testing.assert_array_equal(old.summary()["coef"], fit.summary()["coef"])
    ext = stats.calibrate_nomogram(fit, newdata=_tiny_cohort(n=60, seed=13), g=5)
    row = ext.summary().iloc[0]
    assert row["mode"] == "external" and row["hl_df"] == 5  # held-out data: df = groups (Hosmer & Lemeshow 2000, 5.2.2)
    new = _tiny_cohort(n=60, seed=13)
    p_new = stats.predict(fit, newdata=new)
    assert row["hl_statistic"] == pytest.approx(stats.hl_test(new["label"], p_new, g=5)["statistic"], rel=1e-12)


def test_external_validation_and_recalibration_come_back_as_pandas():
    from srnomogram import metrics, stats

    rng = np.random.default_rng(5)
    p = rng.uniform(0.02, 0.98, 150)
    y = rng.binomial(1, 1 / (1 + np.exp(-(0.3 + 1.4 * np.log(p / (1 - p))))))
    ev = stats.external_validation(y, p, threshold=0.5, g=10)
    summ = ev.summary()
    assert summ.shape[0] == 1
    auc, lo, hi = metrics.roc_auc_ci(y, p)
    assert (summ.loc[0, "auc"], summ.loc[0, "auc_lower"], summ.loc[0, "auc_upper"]) == pytest.approx((auc, lo, hi), abs=1e-10)
    cls = ev.frame(what="classification")
    assert cls.loc[0, "threshold"] == 0.5 and cls.loc[0, "tp"] == int(((p >= 0.5) & (y == 1)).sum())
    curve = ev.frame(what="calibration")
    np.testing.assert_allclose(curve["predicted"], np.sort(p))
    with pytest.raises(RBridgeError, match="seed. must be given"):
        stats.external_validation(y, p, cluster=list(np.arange(150) // 2), B=20)
    r = stats.recalibrate_risk(y, p)
    lp = np.log(p / (1 - p))
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(lp[:, None], y)
    assert (r.attrs["intercept"], r.attrs["slope"]) == pytest.approx((lr.intercept_[0], lr.coef_[0, 0]), abs=1e-5)
    np.testing.assert_allclose(r, 1 / (1 + np.exp(-(r.attrs["intercept"] + r.attrs["slope"] * lp))), rtol=1e-12)
    # a score collapsed to one value (spread 1e-8) has no slope: NaN, not glm's huge number
    flat = stats.recalibrate_risk(y, 0.4434667 + rng.uniform(0, 1e-8, 150))
    assert np.isnan(flat.attrs["slope"]) and np.isnan(flat.attrs["intercept"]) and flat.isna().all()


def test_child_processes_started_after_r_do_not_inherit_rs_library_path():
    """R's start-up sets LD_LIBRARY_PATH in the C environment; worker processes started afterwards
    (loky, Dask) must see the caller's value, and import Python's own extension modules."""
    import sys

    from srnomogram import stats

    _, ns, _ = stats._r()
    r_lib = str(Path(str(stats.call("R.home", "lib", _namespace="base"))))
    parent = os.environ.get("LD_LIBRARY_PATH")
    out = subprocess.run(
        [sys.executable, "-c", "import os, ssl; print(os.environ.get('LD_LIBRARY_PATH'))"],
        capture_output=True, encoding="utf-8", check=True,
    ).stdout.strip()
    assert out == str(parent)
    assert r_lib not in (parent or "")


def test_bootstraps_take_patient_ids_and_one_patient_per_row_is_the_row_bootstrap(tiny):
    from srnomogram import stats
    from srnomogram.data.manifest import patient_ids

    d, fit = tiny
    n = len(stats.predict(fit))
    lone = patient_ids(pd.DataFrame({"case_id": [f"c{k:03d}" for k in range(n)][::-1]}))  # no patient_id: the lesion
    pairs = np.repeat([f"p{k}" for k in range((n + 1) // 2)], 2)[:n]
    v = stats.validate_nomogram(fit, B=15, seed=2)
    pd.testing.assert_frame_equal(stats.validate_nomogram(fit, B=15, seed=2, cluster=lone), v)
    vp = stats.validate_nomogram(fit, B=15, seed=2, cluster=pairs)
    assert v.attrs["n_clusters"] == n and vp.attrs["n_clusters"] == (n + 1) // 2
    assert not np.allclose(vp["optimism"], v["optimism"])  # other resamples: whole pairs drawn
    c = stats.calibrate_nomogram(fit, B=15, seed=2).frame()
    pd.testing.assert_frame_equal(stats.calibrate_nomogram(fit, B=15, seed=2, cluster=lone.to_numpy()).frame(), c)
    frame = pd.DataFrame({"label": d["label"].to_numpy()[:n], "risk": stats.predict(fit)})
    kw = dict(fitted_risk=True, thresholds=[0.2, 0.4], conf_level=0.9, bootstraps=20, seed=5)
    dc = stats.decision_curve("label ~ risk", frame, **kw)
    pd.testing.assert_frame_equal(stats.decision_curve("label ~ risk", frame, cluster=list(lone), **kw), dc)
    assert not np.allclose(stats.decision_curve("label ~ risk", frame, cluster=pairs, **kw)["NB_lower"], dc["NB_lower"], equal_nan=True)


# ------------------------------------------------------------------- Ctrl-C during R (issue 20, defect 12)
_SLOW_R_COMMAND = '''
"""A command 'slow-r OUT B' run by srnomogram's own CLI: two cached stages, the second a bootstrap in R."""
import sys
import types

import numpy as np
import pandas as pd

from srnomogram import cli, stats
from srnomogram.study.cache import Runner, Stage
from srnomogram.study.config import config_from_dict


def data(ctx):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"age": rng.normal(50, 10, 300), "deep_score": rng.normal(0, 1, 300)})
    df["label"] = (rng.random(300) < 1 / (1 + np.exp(-df["deep_score"]))).astype(int)
    ctx.write_table("data", df)


def calibration(ctx):
    fit = stats.fit_nomogram("label ~ age + deep_score", ctx.inputs["data"].table("data"))
    print("R started", flush=True)
    ctx.write_table("calibration", stats.calibrate_nomogram(fit, B=ctx.config.nomogram.calibration_b, seed=1).frame())


def run(args):
    cfg = config_from_dict({"cohort": {"manifest": "m.csv"}, "study": {"output": args.out},
                            "nomogram": {"calibration_b": args.B}})
    Runner(cfg, [Stage("data", data), Stage("calibration", calibration, deps=("data",))]).run()
    print("finished", flush=True)


def register(sub):
    p = sub.add_parser("slow-r")
    p.add_argument("out")
    p.add_argument("B", type=int)
    p.set_defaults(func=run)


sys.modules["slow_r"] = types.ModuleType("slow_r")
sys.modules["slow_r"].register = register
cli.COMMAND_MODULES += ("slow_r",)
sys.exit(cli.main(sys.argv[1:]))
'''


def test_ctrl_c_during_an_r_call_stops_the_run_with_130_and_a_rerun_resumes(tmp_path):
    import signal
    import sys
    import time

    script = tmp_path / "slow_r.py"
    script.write_text(_SLOW_R_COMMAND)
    out = tmp_path / "study"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.join(REPO, "python"), os.environ.get("PYTHONPATH", "")])}
    # B = 10**6 bootstraps: hours, unless Ctrl-C stops it
    proc = subprocess.Popen([sys.executable, str(script), "slow-r", str(out), "1000000"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, encoding="utf-8", env=env)
    try:
        assert proc.stdout.readline().strip() == "R started"
        time.sleep(1.0)  # inside rms::calibrate's bootstrap loop
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=180)  # B = 10**6 never finishes by itself; 180 s leaves room for a loaded CI box
    finally:
        proc.kill()
        stdout, stderr = proc.communicate()
    assert rc == 130, stderr[-2000:]
    assert "finished" not in stdout and "Exception ignored" not in stderr
    assert "srnomogram: interrupted; finished steps are kept, rerun to continue." in stderr.splitlines()
    stages = out / "stages"
    assert (stages / "data" / "done.json").is_file()  # the finished stage is kept
    assert sorted(p.name for p in stages.iterdir()) == ["data"]  # nothing half-written of the interrupted one
    # the rerun reuses the finished stage and computes the interrupted one (a short bootstrap now)
    rerun = subprocess.run([sys.executable, str(script), "slow-r", str(out), "20"], capture_output=True, encoding="utf-8",
                           env=env, timeout=120)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "Stage data: reused" in rerun.stderr and "Stage calibration: done" in rerun.stderr
    assert (stages / "calibration" / "done.json").is_file() and rerun.stdout.strip().endswith("finished")


def _reml_knha(y, v, level=0.95):
    """REML by its fixed point (Viechtbauer 2005) and the Knapp-Hartung and prediction intervals, by hand."""
    from scipy import stats as sps

    tau2 = 0.0
    for _ in range(10_000):
        w = 1 / (v + tau2)
        mu = np.sum(w * y) / np.sum(w)
        new = max(0.0, np.sum(w**2 * ((y - mu) ** 2 - v)) / np.sum(w**2) + 1 / np.sum(w))
        if abs(new - tau2) < 1e-14:
            break
        tau2 = new
    w = 1 / (v + tau2)
    mu = np.sum(w * y) / np.sum(w)
    k = len(y)
    se = np.sqrt(np.sum(w * (y - mu) ** 2) / ((k - 1) * np.sum(w)))
    crit = sps.t.ppf(1 - (1 - level) / 2, k - 1)
    half_pi = crit * np.sqrt(tau2 + se**2)
    return mu, mu - crit * se, mu + crit * se, mu - half_pi, mu + half_pi, tau2


def test_iecv_pool_returns_the_pooled_table_as_pandas_equal_to_reml_by_hand():
    from srnomogram import stats

    _needs("iecv_pool")
    rng = np.random.default_rng(3)
    k = 6
    auc = rng.uniform(0.7, 0.9, k)
    se_auc = rng.uniform(0.02, 0.05, k)
    citl = rng.normal(0, 0.3, k)
    se_citl = rng.uniform(0.1, 0.3, k)
    centres = pd.DataFrame({
        "model": "sr_nomogram",
        "estimand": ["auc"] * k + ["citl"] * k,
        "centre": [f"C{i}" for i in range(k)] * 2,
        "estimate": np.r_[auc, citl],
        "se": np.r_[se_auc / (auc * (1 - auc)), se_citl],
    })
    res = stats.iecv_pool(centres)
    assert list(res.columns) == ["model", "estimand", "estimate", "lower", "upper", "pi_lower", "pi_upper", "tau2", "i2", "k"]
    assert list(res["estimand"]) == ["auc", "citl"] and list(res["k"]) == [k, k]
    logit = np.log(auc / (1 - auc))
    mu, lo, hi, plo, phi, tau2 = _reml_knha(logit, centres["se"].to_numpy()[:k] ** 2)
    expit = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    row = res.iloc[0]
    np.testing.assert_allclose(row[["estimate", "lower", "upper", "pi_lower", "pi_upper"]].to_numpy(float),
                               expit(np.array([mu, lo, hi, plo, phi])), rtol=1e-5)
    assert row["tau2"] == pytest.approx(tau2, abs=1e-5)  # metafor stops its Fisher scoring at a change < 1e-5
    # metafor's tau2 is exact to its stopping rule (1e-5): the intervals agree to a few 1e-5
    mu, lo, hi, plo, phi, tau2 = _reml_knha(citl, se_citl**2)
    np.testing.assert_allclose(res.iloc[1][["estimate", "lower", "upper", "pi_lower", "pi_upper"]].to_numpy(float),
                               [mu, lo, hi, plo, phi], rtol=0, atol=5e-5)
    assert res.iloc[1]["tau2"] == pytest.approx(tau2, abs=1e-5)
    bad = centres.copy()
    bad.loc[2, "se"] = 0.0
    with pytest.raises(RBridgeError, match="row 3") as info:
        stats.iecv_pool(bad)
    assert "srnomogram_error_input" in info.value.r_classes


def _logistic_loglik(y, X, offset=None):
    """Maximum log-likelihood of a logistic model by Newton-Raphson (numpy only)."""
    offset = np.zeros(len(y)) if offset is None else offset
    b = np.zeros(X.shape[1])
    for _ in range(100):
        p = 1 / (1 + np.exp(-(offset + X @ b)))
        step = np.linalg.solve(X.T @ (X * (p * (1 - p))[:, None]), X.T @ (y - p))
        b += step
        if np.max(np.abs(step)) < 1e-13:
            break
    eta = offset + X @ b
    return float(np.sum(y * eta - np.log1p(np.exp(eta)))), b


def test_update_closed_test_through_the_bridge_equals_newton_raphson_likelihood_ratios():
    from scipy import stats as sps

    from srnomogram import stats

    _needs("update_closed_test")
    rng = np.random.default_rng(11)
    n = 400
    X = np.column_stack([rng.normal(size=n), rng.normal(size=n), rng.binomial(1, 0.4, n)])
    lp = -0.5 + X @ np.array([0.8, 1.0, 0.9])
    y = rng.binomial(1, 1 / (1 + np.exp(-(lp + 1.0)))).astype(float)  # a higher baseline risk
    res = stats.update_closed_test(y, lp, pd.DataFrame(X, columns=["age", "size", "margin"]))
    one = np.ones((n, 1))
    ll0 = float(np.sum(y * lp - np.log1p(np.exp(lp))))
    ll1, b1 = _logistic_loglik(y, one, offset=lp)
    ll2, _ = _logistic_loglik(y, np.column_stack([one, lp]))
    ll3, _ = _logistic_loglik(y, np.column_stack([one, X]))
    stat = 2 * (ll3 - np.array([ll0, ll1, ll2]))
    np.testing.assert_allclose(res["statistic"], stat, rtol=1e-8)
    assert list(res["df"]) == [4, 3, 2]
    np.testing.assert_allclose(res["p_value"], sps.chi2.sf(stat, [4, 3, 2]), rtol=1e-7)
    assert res.attrs["method"] == "intercept"
    assert res.attrs["coefficients"]["intercept"] == pytest.approx(b1[0], abs=1e-8)
    assert list(res["performed"]) == [True, True, False]
    no_x = stats.update_closed_test(y, lp)
    assert list(no_x["df"]) == [2, 1] and no_x.attrs["method"] == "intercept"
