"""Repeated splits: per-seed studies, their tables, resume, and what the report says."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pandas as pd
import pytest

from srnomogram.study.config import config_from_dict

from ..test_stats import _r_package_available

pytestmark = pytest.mark.skipif(not _r_package_available(), reason="R package srnomogram not installed")


def test_repeats_rerun_the_split_per_seed_share_features_and_resume(tmp_path, demo_dir, caplog):
    from srnomogram.metrics import roc_auc
    from srnomogram.study.repeats import RESULT_COLUMNS, run_repeats, summarise

    manifest = pd.read_csv(demo_dir / "manifest.csv")
    manifest["split"] = "train"  # a manifest split is ignored by the repeats
    manifest.loc[::5, "split"] = "test"
    for col in ("image", "mask"):
        manifest[col] = [str(demo_dir / p) for p in manifest[col]]
    manifest.to_csv(tmp_path / "m.csv", index=False)
    cfg = config_from_dict({
        "cohort": {"manifest": str(tmp_path / "m.csv")},
        "study": {"output": str(tmp_path / "o")},
        "sr": {"enabled": False}, "deep": {"enabled": False}, "radiomics": {"jobs": 1},
        "validation": {"folds": 3, "repeats": 2}, "nomogram": {"calibration_b": 20, "hl_groups": 4},  # 8 test lesions
    })
    with caplog.at_level(logging.INFO, logger="srnomogram.study.repeats"):
        rows = run_repeats(cfg, 2)
    assert "Repeated splits: seed 2 of 2" in caplog.text
    assert list(rows.columns) == RESULT_COLUMNS and len(rows) == 4  # OR-LR, OR-SVM x 2 seeds
    tests = {}
    for k in (0, 1):
        stages = tmp_path / "o" / "repeats" / f"seed_{k}" / "stages"
        cohort = pd.read_csv(stages / "split" / "cohort.csv")
        tests[k] = set(cohort.loc[cohort["split"] == "test", "case_id"])
        scores = pd.read_csv(stages / "table2" / "scores.csv")
        te = scores[scores["split"] == "test"]
        got = rows[(rows["seed"] == k)].set_index("model")
        for m in ("or_lr", "or_svm"):
            assert got.loc[m, "test_auc"] == pytest.approx(roc_auc(te["label"], te[m]), abs=1e-12)
        assert got["chosen"].sum() == 1 and got.loc[got["chosen"]].index[0] == got["chosen_model"].iloc[0]
        assert 0 <= got["nomogram_test_auc"].iloc[0] <= 1
        assert (got["n_test"] == len(te)).all()
        if k == 0:  # the nomogram's test calibration equals glm on its frozen test risks
            from srnomogram import stats

            coh = pd.read_csv(stages / "split" / "cohort.csv").merge(scores[["case_id", "deep_score"]], on="case_id")
            fit = stats.fit_nomogram("label ~ age + max_diameter_cm + deep_score", coh[coh["split"] == "train"].reset_index(drop=True))
            test = coh[coh["split"] == "test"].reset_index(drop=True)
            risk = np.clip(np.asarray(stats.predict(fit, newdata=test), dtype=float), 1e-8, 1 - 1e-8)
            ro, _, _ = stats._r()
            glm = ro.r("function(y, p) { lp <- qlogis(p); c(coef(glm(y ~ 1 + offset(lp), family = binomial()))[1], "
                       "coef(glm(y ~ lp, family = binomial()))[2]) }")
            citl, slope = (float(v) for v in glm(ro.FloatVector(test["label"].astype(float)), ro.FloatVector(risk)))
            assert got["nomogram_test_citl"].iloc[0] == pytest.approx(citl, abs=1e-9)
            assert got["nomogram_test_slope"].iloc[0] == pytest.approx(slope, abs=1e-9)
    assert tests[0] != tests[1] and tests[0] != set(manifest.loc[manifest["split"] == "test", "case_id"])
    # the radiomics features are computed once: one shared content-hash cache
    assert not (tmp_path / "o" / "repeats" / "seed_0" / "cache" / "radiomics_or").exists()
    summary = summarise(rows).set_index("model")
    v = rows.loc[rows["model"] == "or_lr", "test_auc"].to_numpy()
    assert summary.loc["or_lr", "test_auc_mean"] == pytest.approx(v.mean())
    assert summary.loc["or_lr", "test_auc_sd"] == pytest.approx(v.std(ddof=1))
    assert summary.loc["or_lr", "test_auc_p97_5"] == pytest.approx(np.percentile(v, 97.5))
    assert summary.loc[["or_lr", "or_svm"], "times_chosen"].sum() == 2
    assert summary.loc["nomogram", "n_seeds"] == 2
    assert summary.loc["nomogram", "corrected_auc_mean"] == pytest.approx(rows.drop_duplicates("seed")["nomogram_corrected_auc"].mean())
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="srnomogram.study.repeats"):
        again = run_repeats(cfg, 2)
    assert "seed 2 of 2 reused" in caplog.text
    pd.testing.assert_frame_equal(again, rows)
    # the study's repeats stage pins the rows (a declared pin), so the figure can be redrawn from the board
    from srnomogram.board import read_pin
    from srnomogram.study.cache import Runner
    from srnomogram.study.pipeline import publisher, study_stages

    res = Runner(cfg, study_stages(cfg), on_done=publisher(cfg, tmp_path / "o" / "board")).run()
    pd.testing.assert_frame_equal(read_pin(tmp_path / "o" / "board", "repeated_splits"), rows, check_dtype=False)
    pd.testing.assert_frame_equal(read_pin(tmp_path / "o" / "board", "repeated_splits_summary"), summarise(rows), check_dtype=False)
    from srnomogram.study import figures as F  # the figure, drawn from that pin alone (in R)

    png = F.study_figures(tmp_path / "o" / "board", tmp_path / "fig", formats=("png",), pins=["repeated_splits"])
    assert list(png) == ["figure_repeated_splits"] and png["figure_repeated_splits"].stat().st_size > 1000
    # the study's main_result stage summarises the seeds' result files: mean, percentile range, share > 0
    main = res["main_result"].table("main_result").set_index("estimand")
    per = rows.drop_duplicates("seed")
    d = (per["nomogram_test_auc"] - per["clinical_test_auc"]).to_numpy()
    row = main.loc["delta_auc_nomogram_clinical_test_seeds"]
    assert (row["estimate"], row["share_positive"], row["n_seeds"]) == pytest.approx((d.mean(), np.mean(d > 0), 2), abs=1e-12)
    assert main.loc["citl_nomogram_test_seeds", "estimate"] == pytest.approx(per["nomogram_test_citl"].mean(), abs=1e-12)


def test_repeated_splits_on_a_dask_cluster_equal_the_local_ones_and_share_their_cache(tmp_path, demo_dir, dask_cluster, caplog, monkeypatch):
    """Each seed one task on a 2-worker LocalCluster: the local rows exactly; a rerun reuses every seed."""
    from srnomogram import parallel
    from srnomogram.study.repeats import run_repeats

    monkeypatch.delenv(parallel.SCHEDULER_ENV, raising=False)
    raw = {
        "cohort": {"manifest": str(demo_dir / "manifest.csv")},
        "sr": {"enabled": False}, "deep": {"enabled": False}, "radiomics": {"jobs": 1, "models": ["lr"]},
        "validation": {"folds": 3, "repeats": 2}, "nomogram": {"calibration_b": 10},
    }
    local = run_repeats(config_from_dict({**raw, "study": {"output": str(tmp_path / "local")}}), 2)
    cfg = config_from_dict({**raw, "study": {"output": str(tmp_path / "cluster"), "scheduler": dask_cluster.scheduler_address}})
    with caplog.at_level(logging.INFO, logger="srnomogram.study.repeats"):
        on_cluster = run_repeats(cfg, 2)
    assert "2 seeds sent to the Dask cluster" in caplog.text and "(2 of 2 done)" in caplog.text
    assert sorted(local["seed"].unique()) == [0, 1] and local["test_auc"].notna().all()
    pd.testing.assert_frame_equal(on_cluster, local, check_exact=True)
    # the seeds ran in the workers, not here, into the same folders as a local run
    for k in (0, 1):
        assert (tmp_path / "cluster" / "repeats" / f"seed_{k}" / "result.csv").is_file()
    # a cluster rerun over the local folder reuses every seed's stages and result
    done = sorted((tmp_path / "local" / "repeats").rglob("done.json")) + sorted((tmp_path / "local" / "repeats").rglob("result.json"))
    before = {p: p.stat().st_mtime_ns for p in done}
    again = run_repeats(dataclasses.replace(cfg, study=dataclasses.replace(cfg.study, output=str(tmp_path / "local"))), 2)
    pd.testing.assert_frame_equal(again, local, check_exact=True)
    assert len(before) >= 8 and {p: p.stat().st_mtime_ns for p in done} == before
