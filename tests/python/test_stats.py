"""rpy2 bridge: R's numbers through pandas, R errors as Python exceptions."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pandas as pd
import pytest

from srnomogram.errors import RBridgeError

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
