"""Stages: best-model rule, clinical-column checks, and the stage graph a config asks for."""

from __future__ import annotations

import dataclasses
import html
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from srnomogram.errors import ConfigError, InputError
from srnomogram.metrics import choose_best
from srnomogram.study.cache import Runner
from srnomogram.study.config import config_from_dict
from srnomogram.study.stages import build_stages


def _scores(seed=0):
    rng = np.random.default_rng(seed)
    n = 80
    y = np.r_[np.zeros(40), np.ones(40)].astype(int)
    split = np.where(np.arange(n) % 5 == 0, "test", "train")
    return pd.DataFrame({
        "case_id": [f"c{i}" for i in range(n)],
        "split": split,
        "label": y,
        "or_lr": y + rng.normal(0, 1.0, n),
        "sr_lr": y + rng.normal(0, 0.6, n),
        "or_mobilenet_v2": y + rng.normal(0, 0.8, n),
    })


def test_best_model_is_the_highest_test_auc_as_sklearn_computes_it():
    s = _scores()
    best, table = choose_best(s, ["or_lr", "sr_lr", "or_mobilenet_v2"], "test_auc")
    te = s[s["split"] == "test"]
    aucs = {m: roc_auc_score(te["label"], te[m]) for m in ["or_lr", "sr_lr", "or_mobilenet_v2"]}
    assert best == max(aucs, key=aucs.get)
    for m, a in aucs.items():
        assert table.set_index("model").loc[m, "test_auc"] == pytest.approx(a, abs=1e-12)


def test_cnn_rule_only_considers_cnns_and_train_rule_uses_train_auc():
    s = _scores()
    assert choose_best(s, ["or_lr", "sr_lr", "or_mobilenet_v2"], "test_auc_cnn")[0] == "or_mobilenet_v2"
    tr = s[s["split"] == "train"]
    aucs = {m: roc_auc_score(tr["label"], tr[m]) for m in ["or_lr", "sr_lr"]}
    assert choose_best(s, ["or_lr", "sr_lr"], "train_auc")[0] == max(aucs, key=aucs.get)
    with pytest.raises(ConfigError, match="test_auc_cnn"):
        choose_best(s, ["or_lr"], "test_auc_cnn")


def test_cv_rule_picks_the_highest_cross_validated_auc_whatever_the_test_set_says():
    s = _scores()
    oof = s.copy()
    rng = np.random.default_rng(5)
    tr = (s["split"] == "train").to_numpy()
    # out-of-fold scores: sr_lr's (best on test) carry no signal, or_lr's keep theirs
    oof.loc[tr, "sr_lr"] = rng.normal(size=tr.sum())
    best, table = choose_best(s, ["or_lr", "sr_lr", "or_mobilenet_v2"], "cv_auc", oof=oof)
    cv = {m: roc_auc_score(s.loc[tr, "label"], oof.loc[tr, m]) for m in ["or_lr", "sr_lr", "or_mobilenet_v2"]}
    assert best == max(cv, key=cv.get) != "sr_lr"
    assert choose_best(s, ["or_lr", "sr_lr", "or_mobilenet_v2"], "test_auc", oof=oof)[0] == "sr_lr"
    for m, a in cv.items():
        assert table.set_index("model").loc[m, "cv_auc"] == pytest.approx(a, abs=1e-12)
    with pytest.raises(ConfigError, match="'cv_auc' needs out-of-fold scores"):
        choose_best(s, ["or_lr"], "cv_auc")


def test_ties_go_to_the_higher_train_auc():
    s = _scores()
    s["copy"] = s["sr_lr"]
    s.loc[s["split"] == "train", "copy"] = s.loc[s["split"] == "train", "or_lr"]  # same test AUC, worse train AUC
    assert choose_best(s, ["copy", "sr_lr"], "test_auc")[0] == "sr_lr"


def test_stage_graph_follows_the_settings():
    cfg = config_from_dict({"cohort": {"manifest": "m.csv"}})
    names = [s.name for s in build_stages(cfg)]
    assert names[:2] == ["split", "sr"]
    deep_sr = next(st for st in build_stages(cfg) if st.name == "deep_sr_mobilenet_v2")
    assert deep_sr.deps == ("split", "sr")  # the SR CNNs read the split's cross-fitting folds
    assert sum(n.startswith("deep_") for n in names) == 4
    assert names[-5:] == ["table2", "clinical", "nomogram", "application", "main_result"]
    small = config_from_dict({"cohort": {"manifest": "m.csv"}, "sr": {"enabled": False}, "deep": {"archs": ["mobilenet_v2"]}})
    assert [s.name for s in build_stages(small)] == [
        "split", "radiomics_or", "radiomics_models", "deep_or_mobilenet_v2", "table2", "clinical", "nomogram", "application",
        "main_result",
    ]



def test_validate_and_predict_apply_the_studys_own_stages_with_their_names_and_dependencies():
    """Apply mode is the study's stage list, as Pipeline.predict is the fitted pipeline's steps: every stage that
    fits something (or loads the cohort) has an apply half under its own name and deps; the rest are not applied."""
    cfg = config_from_dict({"cohort": {"manifest": "m.csv"}})
    stages = build_stages(cfg)
    applied = [s for s in stages if s.apply is not None]
    assert [s.name for s in applied] == [s.name for s in stages if s.name not in ("clinical", "application", "main_result")]
    names = {s.name for s in applied}
    for s in applied:
        a = s.applied()
        assert (a.name, a.deps, a.fn, a.pins) == (s.name, s.deps, s.apply.fn, s.apply.pins)
        assert set(s.deps) <= names  # an apply half reads only other apply halves
    assert {p.name for p in applied[-1].applied().pins} == {"external_scores", "score_distribution", "warnings", "scores_info"}
    with pytest.raises(ValueError, match="stage clinical has no apply half"):
        next(s for s in stages if s.name == "clinical").applied()


def _manifest(tmp_path, n=12, **extra):
    from srnomogram.data import demo_cohort

    path = demo_cohort(tmp_path / "cohort", n=n, seed=1, n_volumes=0)
    df = pd.read_csv(path)
    for k, v in extra.items():
        df[k] = v
    df.to_csv(path, index=False)
    return path


def test_missing_clinical_column_is_a_one_line_error_naming_it(tmp_path):
    m = _manifest(tmp_path)
    cfg = config_from_dict({"cohort": {"manifest": str(m), "clinical": ["age", "bmi"]}, "study": {"output": str(tmp_path / "o")}})
    runner = Runner(cfg, build_stages(cfg))
    with pytest.raises(ConfigError, match="cohort.clinical names column 'bmi', which the manifest .* lacks"):
        runner.run(until="split")


def test_non_numeric_clinical_value_names_row_and_column(tmp_path):
    m = _manifest(tmp_path)
    df = pd.read_csv(m)
    df["age"] = df["age"].astype(object)
    df.loc[3, "age"] = "about fifty"
    df.to_csv(m, index=False)
    cfg = config_from_dict({"cohort": {"manifest": str(m)}, "study": {"output": str(tmp_path / "o")}})
    with pytest.raises(InputError, match=r"row 5, column 'age': 'about fifty' is not a number"):
        Runner(cfg, build_stages(cfg)).run(until="split")


def test_split_stage_excludes_missing_clinical_values_and_splits_8_to_2(tmp_path):
    m = _manifest(tmp_path)
    df = pd.read_csv(m)
    df.loc[0, "age"] = np.nan
    df.to_csv(m, index=False)
    cfg = config_from_dict({"cohort": {"manifest": str(m)}, "study": {"output": str(tmp_path / "o")}})
    res = Runner(cfg, build_stages(cfg)).run(until="split")["split"]
    assert res.table("excluded")["case_id"].tolist() == [df.loc[0, "case_id"]]
    cohort = pd.read_csv(res.file("cohort.csv"))
    assert len(cohort) == 11
    from srnomogram.data import stratified_split

    expected = stratified_split(df.drop(index=0).reset_index(drop=True), test_size=0.2, seed=0)
    assert cohort["split"].tolist() == list(expected)


def test_split_stage_splits_and_folds_by_patient_and_counts_patients_and_lesions(tmp_path):
    m = _manifest(tmp_path, n=30, patient_id=[f"pt{k // 2:02d}" for k in range(30)])  # 15 patients of 2 lesions
    cfg = config_from_dict({"cohort": {"manifest": str(m)}, "study": {"output": str(tmp_path / "o")}, "validation": {"folds": 3}})
    res = Runner(cfg, build_stages(cfg)).run(until="split")["split"]
    cohort = pd.read_csv(res.file("cohort.csv"), dtype={"patient_id": str})
    assert (cohort.groupby("patient_id")["split"].nunique() == 1).all()
    folds = res.table("folds").merge(cohort[["case_id", "patient_id"]], on="case_id")
    assert (folds.groupby("patient_id")["fold"].nunique() == 1).all()
    info = res.json("split_info")
    assert info["n"] == 30 and info["n_patients"] == 15 and info["unit"] == "patient" and "split by patient" in info["source"]
    counts = res.table("split_counts")
    assert counts.columns.tolist() == ["split", "label", "n", "patients"]
    by_hand = cohort.groupby(["split", "label"]).agg(n=("case_id", "size"), patients=("patient_id", "nunique")).reset_index()
    pd.testing.assert_frame_equal(counts, by_hand, check_dtype=False)
    # without patient ids: each lesion its own patient
    cfg = config_from_dict({"cohort": {"manifest": str(_manifest(tmp_path / "p", n=30))}, "study": {"output": str(tmp_path / "p" / "o")}})
    plain = Runner(cfg, build_stages(cfg)).run(until="split")["split"]
    assert plain.json("split_info")["unit"] == "lesion" and plain.json("split_info")["n_patients"] == 30
    assert (plain.table("split_counts")["patients"] == plain.table("split_counts")["n"]).all()


def test_finished_stages_are_pinned_with_provenance(tmp_path):
    from srnomogram.board import pin_meta, read_pin
    from srnomogram.study.pipeline import publisher

    m = _manifest(tmp_path)
    out = tmp_path / "o"
    cfg = config_from_dict({"cohort": {"manifest": str(m)}, "study": {"output": str(out), "seed": 5}})
    runner = Runner(cfg, build_stages(cfg), on_done=publisher(cfg, out / "board"))
    res = runner.run(until="split")["split"]
    manifest = read_pin(out / "board", "manifest")
    assert manifest["case_id"].tolist() == pd.read_csv(res.file("cohort.csv"), dtype={"case_id": str})["case_id"].tolist()
    meta = pin_meta(out / "board", "split_counts")
    assert meta["seed"] == 5 and meta["config_hash"] == cfg.config_hash and meta["stage_key"] == res.key
    assert meta["config"]["deep"]["epochs"] == 200
    assert meta["output_hashes"]["split_counts.csv"] == res.files["split_counts.csv"]
    from srnomogram.utils import file_sha256

    assert meta["input_hashes"]["inputs"]["manifest"] == file_sha256(m)


def _tiny_deep_study(tmp_path, demo_dir, **nomogram):
    return config_from_dict({
        "cohort": {"manifest": str(demo_dir / "manifest.csv")},
        "study": {"output": str(tmp_path / "o")},
        "sr": {"enabled": False},
        "radiomics": {"enabled": False},
        "deep": {"archs": ["mobilenet_v2"], "weights": "none", "epochs": 1, "batch_size": 8, "device": "cpu",
                 "params": {"image_size": 32, "progress": False}},
        "validation": {"folds": 2},
        "nomogram": nomogram,
    })


def test_cnn_stage_cross_fits_over_the_split_folds_and_resumes_from_finished_folds(tmp_path, demo_dir, monkeypatch):
    from srnomogram.deep import DeepClassifier
    from srnomogram.metrics import roc_auc

    cfg = _tiny_deep_study(tmp_path, demo_dir)
    res = Runner(cfg, build_stages(cfg)).run(until="table2")
    deep, t2 = res["deep_or_mobilenet_v2"], res["table2"]
    full, oof = deep.table("deep_scores"), deep.table("deep_scores_oof")
    tr = (full["split"] == "train").to_numpy()
    folds = res["split"].table("folds")
    assert sorted(folds["case_id"]) == sorted(full.loc[tr, "case_id"]) and set(folds["fold"]) == {0, 1}
    np.testing.assert_array_equal(oof.loc[~tr, "or_mobilenet_v2"], full.loc[~tr, "or_mobilenet_v2"])  # test rows: the full model
    assert not np.allclose(oof.loc[tr, "or_mobilenet_v2"], full.loc[tr, "or_mobilenet_v2"])
    assert (deep.path / "model" / "model.pt").is_file()  # the full-training-set model, for external validation
    scores = t2.table("scores").set_index("case_id")
    np.testing.assert_array_equal(scores.loc[oof["case_id"], "deep_score"], oof["or_mobilenet_v2"])  # cross_fitted by default
    row = t2.table("table2").query("set == 'train'").iloc[0]
    assert row["cv_auc"] == pytest.approx(roc_auc(oof.loc[tr, "label"], oof.loc[tr, "or_mobilenet_v2"]), abs=1e-12)
    assert t2.json("best_model")["rule"] == "cv_auc"

    # a run killed after the folds: the stage reruns, only the full-training-set model is trained again
    import shutil

    shutil.rmtree(deep.path)
    fits = []
    real_fit = DeepClassifier.fit
    monkeypatch.setattr(DeepClassifier, "fit", lambda self, *a, **k: (fits.append(1), real_fit(self, *a, **k))[1])
    again = Runner(cfg, build_stages(cfg)).run(until="deep_or_mobilenet_v2")["deep_or_mobilenet_v2"]
    assert len(fits) == 1
    pd.testing.assert_frame_equal(again.table("deep_scores_oof"), oof)
    pd.testing.assert_frame_equal(again.table("deep_scores"), full)


def test_fitted_train_score_is_the_papers_in_sample_score(tmp_path, demo_dir):
    cfg = _tiny_deep_study(tmp_path, demo_dir, train_score="fitted", best_model_rule="test_auc")
    t2 = Runner(cfg, build_stages(cfg)).run(until="table2")["table2"]
    s = t2.table("scores")
    np.testing.assert_array_equal(s["deep_score"], s["or_mobilenet_v2"])
    assert t2.json("best_model")["train_score"] == "fitted"


# ------------------------------------------------------------------ the nomogram stage through R
def _nomogram_inputs(tmp_path, alpha=0.1, dca_bootstraps=20, **manifest):
    """A split cohort (demo, 60 lesions; ``manifest``: extra columns) and a stand-in Table 2 stage holding a deep-learning score."""
    from srnomogram.study.cache import StageResult

    m = _manifest(tmp_path, n=60, **manifest)
    cfg = config_from_dict({
        "cohort": {"manifest": str(m)},
        "study": {"output": str(tmp_path / "o"), "seed": 3},
        "nomogram": {"calibration_b": 20, "dca_bootstraps": dca_bootstraps, "alpha": alpha,
                     "dca_thresholds": [0.05, 0.9, 0.05]},
    })
    split = Runner(cfg, build_stages(cfg)).run(until="split")["split"]
    cohort = pd.read_csv(split.file("cohort.csv"), dtype={"case_id": str})
    rng = np.random.default_rng(0)
    score = np.clip(0.3 + 0.35 * cohort["label"] + rng.normal(0, 0.2, len(cohort)), 0, 1)
    t2 = tmp_path / "table2"
    t2.mkdir()
    pd.DataFrame({"case_id": cohort["case_id"], "deep_score": score}).to_csv(t2 / "scores.csv", index=False)
    return cfg, {"split": split, "table2": StageResult("table2", t2, "k", {})}


def _ctx(cfg, inputs, folder, name):
    from srnomogram.study.cache import Stage, StageContext

    folder.mkdir(parents=True, exist_ok=True)
    return StageContext(config=cfg, inputs=inputs, dir=folder, stage=Stage(name, lambda c: None), key="k")


def test_nomogram_stage_writes_internal_validation_dca_bands_and_intervals_at_alpha(tmp_path):
    from srnomogram import metrics, stats
    from srnomogram.study.stages import run_clinical, run_nomogram

    cfg, inputs = _nomogram_inputs(tmp_path)
    run_nomogram(_ctx(cfg, inputs, tmp_path / "nom", "nomogram"))
    out = tmp_path / "nom"
    preds = pd.read_csv(out / "predictions.csv")
    train = preds[preds["split"] == "train"]
    # internal validation: both models, every rms index plus AUC; apparent AUC = the training AUC
    val = pd.read_csv(out / "internal_validation.csv")
    assert set(val["model"]) == {"clinical", "nomogram"}
    for model in ("clinical", "nomogram"):
        v = val[val["model"] == model].set_index("index")
        assert {"Dxy", "R2", "Intercept", "Slope", "Emax", "D", "U", "Q", "B", "AUC"} <= set(v.index)
        assert v.loc["AUC", "index.orig"] == pytest.approx(roc_auc_score(train["label"], train[f"risk_{model}"]), abs=1e-10)
        assert v.loc["AUC", "index.corrected"] == pytest.approx(v.loc["Dxy", "index.corrected"] / 2 + 0.5, abs=1e-12)
        assert v.loc["AUC", "n"] <= 20
    # alpha = 0.1: 90% DeLong intervals, equal to the Python DeLong at the same alpha
    roc = pd.read_csv(out / "roc_auc.csv")
    for s in ("train", "test"):
        part = preds[preds["split"] == s]
        row = roc[(roc["set"] == s) & (roc["model"] == "nomogram")].iloc[0]
        auc, lo, hi = metrics.roc_auc_ci(part["label"], part["risk_nomogram"], alpha=0.1)
        assert (row["auc"], row["lower"], row["upper"]) == pytest.approx((auc, lo, hi), abs=1e-12)  # Table 2's AUC
        r = stats.roc_auc(part["label"], part["risk_nomogram"], conf_level=0.9)  # and pROC's
        assert (row["auc"], row["lower"], row["upper"]) == pytest.approx((r["auc"], r["lower"], r["upper"]), abs=1e-10)
    # decision curves carry 90% bootstrap bands, reproducible from R under the bootstrap seed
    dca = pd.read_csv(out / "decision_curves.csv")
    model_rows = dca[dca["curve"].fillna("None").str.contains("~", regex=False)]
    assert model_rows["NB_lower"].notna().all() and (model_rows["NB_lower"] <= model_rows["NB"] + 1e-12).all()
    assert (model_rows["conf_level"] == 0.9).all()
    ref = stats.decision_curve("label ~ risk_nomogram", train[["label", "risk_nomogram"]].reset_index(drop=True),
                               fitted_risk=True, thresholds=list(np.round(np.arange(0.05, 0.9 + 0.025, 0.05), 10)),
                               conf_level=0.9, bootstraps=20, seed=cfg.bootstrap_seed)
    mine = model_rows[(model_rows["set"] == "train") & (model_rows["model"] == "nomogram")]
    np.testing.assert_allclose(mine["NB_upper"], ref[ref["model"] == "label ~ risk_nomogram"]["NB_upper"], atol=1e-12)
    # coefficients' Wald intervals at 90%
    coef = pd.read_csv(out / "nomogram_coefficients.csv")
    c = coef[(coef["model"] == "nomogram") & (coef["term"] == "deep_score")].iloc[0]
    assert np.log(c["upper"]) - c["coef"] == pytest.approx(1.6448536269514722 * c["se"], rel=1e-6)
    sign = pd.read_json(out / "score_coefficient.json", typ="series")
    assert c["coef"] > 0 and not sign["negative"] and sign["coef"] == pytest.approx(c["coef"], abs=1e-12)
    # Table S2's odds-ratio intervals follow alpha too
    run_clinical(_ctx(cfg, inputs, tmp_path / "clin", "clinical"))
    s2 = pd.read_csv(tmp_path / "clin" / "table_s2.csv").set_index("variable")
    cfg95 = dataclasses.replace(cfg, nomogram=dataclasses.replace(cfg.nomogram, alpha=0.05))
    run_clinical(_ctx(cfg95, inputs, tmp_path / "clin95", "clinical"))
    s95 = pd.read_csv(tmp_path / "clin95" / "table_s2.csv").set_index("variable")
    width = lambda t: np.log(t.loc["age", "uni_upper"] / t.loc["age", "uni_lower"])  # noqa: E731
    assert width(s2) / width(s95) == pytest.approx(1.6448536269514722 / 1.959963984540054, rel=1e-9)


def test_dca_bootstraps_zero_gives_curves_without_bands(tmp_path):
    from srnomogram.study.stages import run_nomogram

    cfg, inputs = _nomogram_inputs(tmp_path, dca_bootstraps=0)
    run_nomogram(_ctx(cfg, inputs, tmp_path / "nom", "nomogram"))
    dca = pd.read_csv(tmp_path / "nom" / "decision_curves.csv")
    assert dca["NB_lower"].isna().all() and dca["conf_level"].isna().all() and dca["NB"].notna().any()


def test_table2_intervals_follow_nomogram_alpha(tmp_path):
    from srnomogram import metrics
    from srnomogram.study.cache import StageResult
    from srnomogram.study.stages import run_table2

    cfg, inputs = _nomogram_inputs(tmp_path, alpha=0.2)
    cfg = dataclasses.replace(cfg, nomogram=dataclasses.replace(cfg.nomogram, best_model_rule="train_auc", train_score="fitted"))
    cohort = pd.read_csv(inputs["split"].file("cohort.csv"), dtype={"case_id": str})
    rng = np.random.default_rng(1)
    fake = tmp_path / "models"
    fake.mkdir()
    scores = cohort[["case_id", "split", "label"]].assign(or_lr=cohort["label"] + rng.normal(0, 1.2, len(cohort)))
    scores.to_csv(fake / "radiomics_scores.csv", index=False)
    run_table2(_ctx(cfg, {"split": inputs["split"], "fake": StageResult("fake", fake, "k", {})}, tmp_path / "t2", "table2"))
    t2 = pd.read_csv(tmp_path / "t2" / "table2.csv").set_index("set")
    for s in ("train", "test"):
        part = scores[scores["split"] == s]
        _, lo, hi = metrics.roc_auc_ci(part["label"], part["or_lr"], alpha=0.2)
        assert (t2.loc[s, "auc_lower"], t2.loc[s, "auc_upper"]) == pytest.approx((lo, hi), abs=1e-12)
        _, lo95, _ = metrics.roc_auc_ci(part["label"], part["or_lr"], alpha=0.05)
        assert lo > lo95  # the 80% interval is narrower than the 95% one


# ------------------------------------------------------------------ the score check (issue 11 follow-up)
def _table2_with_oof(tmp_path, oof_noise, seed=4, **nomogram):
    """Run the table2 stage on one stand-in model (or_lr) whose out-of-fold training scores are
    ``label + N(0, oof_noise)`` (``None``: pure noise, no signal); return the stage folder and inputs."""
    from srnomogram.study.cache import StageResult
    from srnomogram.study.stages import run_table2

    cfg, inputs = _nomogram_inputs(tmp_path, alpha=0.05)
    cfg = dataclasses.replace(cfg, nomogram=dataclasses.replace(cfg.nomogram, **nomogram))
    cohort = pd.read_csv(inputs["split"].file("cohort.csv"), dtype={"case_id": str})
    rng = np.random.default_rng(seed)
    fake = tmp_path / "models"
    fake.mkdir()
    y = cohort["label"].to_numpy()
    scores = cohort[["case_id", "split", "label"]].assign(or_lr=y + rng.normal(0, 0.5, len(y)))
    oof = scores.copy()
    tr = (cohort["split"] == "train").to_numpy()
    oof.loc[tr, "or_lr"] = rng.normal(size=tr.sum()) if oof_noise is None else y[tr] + rng.normal(0, oof_noise, tr.sum())
    scores.to_csv(fake / "radiomics_scores.csv", index=False)
    oof.to_csv(fake / "radiomics_scores_oof.csv", index=False)
    run_table2(_ctx(cfg, {"split": inputs["split"], "fake": StageResult("fake", fake, "k", {})}, tmp_path / "t2", "table2"))
    return cfg, inputs, oof[tr], StageResult("table2", tmp_path / "t2", "k", {})


def _report(cfg, results, tmp_path):
    """The report of ``results``, as the study writes it: their declared pins published to a board, the
    report's tables read back from it."""
    from srnomogram.study.cache import report_pins
    from srnomogram.study.pipeline import publisher, export_tables
    from srnomogram.study.report import write_report
    from srnomogram.study.stages import build_stages

    board = tmp_path / "board"
    stages = {s.name: s for s in build_stages(cfg)}
    for name, res in results.items():
        publisher(cfg, board)(stages[name], res, True)
    shown = report_pins(stages[n] for n in results)
    tables = export_tables(board, [p.name for p in shown], tmp_path / "tables")
    return write_report(cfg, results, tables, {}, [], tmp_path / "report.html", pins=shown, board_dir=board).read_text(encoding="utf-8")


def test_score_check_flags_a_chosen_score_whose_cv_auc_interval_reaches_one_half_and_the_report_warns(tmp_path, caplog):
    from srnomogram import metrics

    cfg, _, oof_tr, t2 = _table2_with_oof(tmp_path, None)
    check = t2.json("best_model")["score_check"]
    auc = roc_auc_score(oof_tr["label"], oof_tr["or_lr"])
    _, lo, hi = metrics.roc_auc_ci(oof_tr["label"], oof_tr["or_lr"], alpha=0.05)
    assert check["cv_auc"] == pytest.approx(auc, abs=1e-12) and lo <= 0.5 <= hi
    assert (check["cv_auc_lower"], check["cv_auc_upper"]) == pytest.approx((lo, hi), abs=1e-12)
    assert check["no_signal"] is True and check["conf_level"] == pytest.approx(0.95)
    # the small table holds the same numbers, and Table 2's cv_auc is the same interval
    row = t2.table("score_check").iloc[0]
    assert row["label"] == "OR-LR" and row["cv_auc_lower"] == pytest.approx(lo, abs=1e-12) and bool(row["no_signal"])
    train_row = t2.table("table2").query("set == 'train'").iloc[0]
    assert train_row["cv_auc_lower"] == pytest.approx(lo, abs=1e-12)
    # Table 2 and the score check are keyed by model id, the label a column of its own (was: the label as key)
    assert list(t2.table("table2").columns[:3]) == ["model", "label", "set"]
    assert (train_row["model"], train_row["label"]) == ("or_lr", "OR-LR") and row["model"] == "or_lr"
    with caplog.at_level("WARNING"):
        page = _report(cfg, {"table2": t2}, tmp_path)
    line = f"cross-validated training AUC is {auc:.3f} (95% CI {lo:.3f}-{hi:.3f}, lower bound <= 0.5)"
    assert line in caplog.text and "should not be trusted" in caplog.text
    box = page.index('class="warning"')
    assert box < page.index("Table 2. Diagnostic performance") and html.escape(line) in page[box:page.index("</div>", box)]
    assert "no cross-validated evidence of discrimination" in page


def test_score_check_passes_a_score_with_clear_signal_and_the_report_has_no_warning(tmp_path, caplog):
    cfg, _, oof_tr, t2 = _table2_with_oof(tmp_path, 0.3)
    check = t2.json("best_model")["score_check"]
    assert check["no_signal"] is False and check["cv_auc_lower"] > 0.5
    assert check["cv_auc"] == pytest.approx(roc_auc_score(oof_tr["label"], oof_tr["or_lr"]), abs=1e-12)
    with caplog.at_level("WARNING"):
        page = _report(cfg, {"table2": t2}, tmp_path)
    assert 'class="warning"' not in page and "should not be trusted" not in caplog.text
    assert "Score check: cross-validated training AUC" in page


def test_require_signal_stops_the_study_at_table2_with_one_line_naming_the_model_and_its_interval(tmp_path):
    with pytest.raises(InputError) as err:
        _table2_with_oof(tmp_path, None, require_signal=True)
    msg = str(err.value)
    assert "\n" not in msg
    assert "nomogram.require_signal is true and the chosen model OR-LR (or_lr) has cross-validated training AUC" in msg
    assert re.search(r"AUC 0\.\d{3} \(95% CI 0\.\d{3}-0\.\d{3}, lower bound <= 0\.5\)", msg)
    assert "set nomogram.require_signal: false" in msg
    assert not (tmp_path / "t2" / "best_model.json").exists()  # nothing written for a stopped stage


def test_require_signal_lets_a_score_with_signal_through(tmp_path):
    _, _, _, t2 = _table2_with_oof(tmp_path, 0.3, require_signal=True)
    assert t2.json("best_model")["score_check"]["no_signal"] is False


def test_negative_score_coefficient_sets_the_nomogram_flag_and_the_report_warns(tmp_path, caplog):
    from srnomogram.study.cache import StageResult
    from srnomogram.study.stages import run_nomogram

    cfg, inputs = _nomogram_inputs(tmp_path, dca_bootstraps=0)
    cfg = dataclasses.replace(cfg, nomogram=dataclasses.replace(cfg.nomogram, calibration_b=10))
    path = inputs["table2"].file("scores.csv")
    s = pd.read_csv(path, dtype={"case_id": str})
    s.assign(deep_score=1 - s["deep_score"]).to_csv(path, index=False)  # the score now falls with malignancy
    with caplog.at_level("WARNING"):
        run_nomogram(_ctx(cfg, inputs, tmp_path / "nom", "nomogram"))
    nom = StageResult("nomogram", tmp_path / "nom", "k", {})
    coef = nom.table("nomogram_coefficients").query("model == 'nomogram' and term == 'deep_score'").iloc[0]
    flag = nom.json("score_coefficient")
    assert flag["negative"] is True and flag["coef"] == pytest.approx(coef["coef"], abs=1e-12) and coef["coef"] < 0
    assert flag["odds_ratio_per_unit"] == pytest.approx(coef["odds_ratio"] ** 0.1, rel=1e-12)
    assert flag["lower_per_unit"] == pytest.approx(np.exp(0.1 * (coef["coef"] - 1.6448536269514722 * coef["se"])), rel=1e-6)
    assert "enters the nomogram with a negative coefficient" in caplog.text
    page = _report(cfg, {"nomogram": nom}, tmp_path)
    box = page.index('class="warning"')
    assert box < page.index("Nomogram and clinical model coefficients")
    assert f"negative coefficient ({coef['coef']:.3f}; OR {flag['odds_ratio_per_unit']:.2f} per 0.1" in page
    assert "uses the score with the opposite sign" in page


def test_sr_fit_on_all_trains_once_on_every_image_and_is_shared_by_split_seeds(tmp_path):
    """sr.fit_on: all: the GAN learns from every image (labels unused), once; another split seed reuses
    the model and the SR files, and its sr_quality rows are labelled apparent, not held-out."""
    import dataclasses

    m = _manifest(tmp_path, n=10)
    sr = {"enabled": True, "fit_on": "all", "params": {"channels": 4, "blocks": 0, "patch_size": 16, "iterations": 3,
                                                         "batch_size": 2, "device": "cpu", "amp": "none", "progress": False}}
    cfg = config_from_dict({"cohort": {"manifest": str(m)}, "study": {"output": str(tmp_path / "o")}, "sr": sr,
                            "radiomics": {"enabled": False}, "deep": {"enabled": False}})
    runs = {}
    for seed in (0, 1):
        c = dataclasses.replace(cfg, split=dataclasses.replace(cfg.split, seed=seed, use_manifest_split=False))
        runs[seed] = Runner(c, build_stages(c), root=tmp_path / f"seed{seed}").run(until="sr")
    splits = [pd.read_csv(runs[s]["split"].file("cohort.csv"))["split"].tolist() for s in (0, 1)]
    assert splits[0] != splits[1]  # two different training sets ...
    import json

    import torch

    weights = [torch.load(runs[s]["sr"].file("model/generator.pt"), weights_only=True) for s in (0, 1)]
    assert weights[0].keys() == weights[1].keys() and all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])  # ... one SR model
    meta = json.loads(runs[0]["sr"].file("model/meta.json").read_text(encoding="utf-8"))
    assert meta["n_training_planes"] == 10  # every image, test ones included
    shared = list((tmp_path / "o" / "cache" / "sr_fit_on_all").iterdir())
    assert len(shared) == 1 and len(list((shared[0] / "images").glob("*_sr.png"))) == 10
    sr_paths = [pd.read_csv(runs[s]["sr"].file("cohort.csv")).set_index("case_id")["image_sr"] for s in (0, 1)]
    assert sr_paths[0].equals(sr_paths[1])
    assert set(runs[0]["sr"].table("sr_quality")["estimate"]) == {"apparent (fit_on: all)"}


# ------------------------------------------------------------------ honest cut-offs, held-out validation, added value (issue 19)
def _irls(X, y, iters=50):
    """Unpenalised logistic regression by Newton-Raphson (the reference for rms::lrm): (beta, log-likelihood)."""
    X = np.column_stack([np.ones(len(X)), X])
    b = np.zeros(X.shape[1])
    for _ in range(iters):
        p = 1 / (1 + np.exp(-X @ b))
        b = b + np.linalg.solve(X.T @ (X * (p * (1 - p))[:, None]), X.T @ (y - p))
    p = 1 / (1 + np.exp(-X @ b))
    return b, float(np.sum(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _analysis(cfg, inputs):
    cohort = pd.read_csv(inputs["split"].file("cohort.csv"), dtype={"case_id": str})
    score = pd.read_csv(inputs["table2"].path / "scores.csv", dtype={"case_id": str})
    return cohort.merge(score, on="case_id")


def test_nomogram_cut_offs_come_from_out_of_fold_risks_and_the_test_set_is_validated_as_held_out(tmp_path):
    from scipy.optimize import brentq
    from scipy.special import expit, logit

    from srnomogram import metrics
    from srnomogram.study.stages import hl_groups, run_nomogram

    cfg, inputs = _nomogram_inputs(tmp_path)
    run_nomogram(_ctx(cfg, inputs, tmp_path / "nom", "nomogram"))
    out = tmp_path / "nom"
    data = _analysis(cfg, inputs)
    preds = pd.read_csv(out / "predictions.csv", dtype={"case_id": str}).merge(data[["case_id", "age", "max_diameter_cm", "deep_score"]], on="case_id")
    train, test = preds[preds["split"] == "train"], preds[preds["split"] == "test"]
    folds = pd.read_csv(inputs["split"].file("folds.csv"), dtype={"case_id": str})
    fold = train["case_id"].map(dict(zip(folds["case_id"], folds["fold"]))).to_numpy()
    y = train["label"].to_numpy(float)
    cols = {"clinical": ["age", "max_diameter_cm"], "nomogram": ["age", "max_diameter_cm", "deep_score"]}
    for name, c in cols.items():
        # out-of-fold risks: refit on the other folds (Newton-Raphson here), predict the held-out fold
        ref = np.empty(len(train))
        X = train[c].to_numpy(float)
        for k in np.unique(fold):
            b, _ = _irls(X[fold != k], y[fold != k])
            ref[fold == k] = expit(b[0] + X[fold == k] @ b[1:])
        # rms::lrm stops at its own convergence tolerance: agreement to about 1e-6 in risk
        np.testing.assert_allclose(train[f"risk_{name}_oof"], ref, rtol=0, atol=5e-6)
        assert test[f"risk_{name}_oof"].isna().all()
        assert not np.allclose(ref, train[f"risk_{name}"])  # not the in-sample risks
    cuts = pd.read_csv(out / "nomogram_thresholds.csv").set_index("model")
    for name in cols:
        assert cuts.loc[name, "threshold"] == pytest.approx(metrics.youden_threshold(y, train[f"risk_{name}_oof"]), abs=1e-12)
        assert cuts.loc[name, "estimate"] == "cross-validated"
    # the test set through external_validation(): CITL = the offset-only glm intercept, to 1e-9
    hv = pd.read_csv(out / "heldout_validation.csv").set_index("model")
    yt = test["label"].to_numpy(float)
    for name in cols:
        lp = logit(np.clip(test[f"risk_{name}"].to_numpy(float), 1e-8, 1 - 1e-8))
        citl = brentq(lambda a: np.sum(yt - expit(a + lp)), -20, 20, xtol=1e-14)
        assert hv.loc[name, "citl"] == pytest.approx(citl, abs=1e-9)
        assert (hv.loc[name, "set"], hv.loc[name, "estimate"]) == ("test", "held-out")
        t = cuts.loc[name, "threshold"]
        assert hv.loc[name, "threshold"] == t
        pos = test[f"risk_{name}"].to_numpy() >= t
        assert hv.loc[name, "sensitivity"] == pytest.approx(np.sum(pos & (yt == 1)) / np.sum(yt == 1), abs=1e-15)
        assert hv.loc[name, "specificity"] == pytest.approx(np.sum(~pos & (yt == 0)) / np.sum(yt == 0), abs=1e-15)
        g, _ = hl_groups(yt, cfg.nomogram.hl_groups)  # 12 test lesions: too few events for the test
        assert g is None and np.isnan(hv.loc[name, "hl_df"]) and np.isnan(hv.loc[name, "hl_p"])
        assert hv.loc[name, "brier"] == pytest.approx(np.mean((test[f"risk_{name}"] - yt) ** 2), abs=1e-12)
    assert list(hv["label"]) == ["Clinical model", "Nomogram"]
    # calibration_summary no longer calls val.prob's recalibration intercept "intercept"; its test CITL is the held-out one
    cs = pd.read_csv(out / "calibration_summary.csv")
    assert "intercept" not in cs.columns
    ext = cs[cs["set"] == "test"].set_index("model")
    np.testing.assert_allclose(ext.loc[list(cols), "citl"], hv.loc[list(cols), "citl"], atol=1e-12)
    assert ext[["hl_statistic", "hl_df", "hl_p"]].isna().all().all()  # the same HL rule as hosmer_lemeshow
    # the test calibration curve carries its bootstrap band (B = calibration_b, the bootstrap seed)
    cal = pd.read_csv(out / "calibration.csv")
    ct = cal[cal["set"] == "test"]
    assert ct["lower"].notna().any() and (ct["lower"].dropna() <= ct["upper"].dropna() + 1e-12).all()
    assert (ext["band_B"] == cfg.nomogram.calibration_b).all()
    # every training-set estimate here is labelled apparent; the DeLong comparison is test-only
    roc = pd.read_csv(out / "roc_auc.csv")
    assert dict(zip(roc["set"], roc["estimate"])) == {"train": "apparent", "test": "held-out"}
    cmp = pd.read_csv(out / "roc_comparison.csv")
    assert list(cmp["set"]) == ["test"] and list(cmp["estimate"]) == ["held-out"]
    hl = pd.read_csv(out / "hosmer_lemeshow.csv")
    assert dict(zip(hl["set"], hl["estimate"])) == {"train": "apparent", "test": "held-out"}
    # train (48 lesions): groups capped by events, the test equal to hl_test at that g; test: not reported
    from srnomogram import stats

    g, _ = hl_groups(y, cfg.nomogram.hl_groups)
    assert g == min(10, min(int(y.sum()), int((1 - y).sum())) // 5) and g >= 3
    tr = hl[(hl["set"] == "train") & (hl["model"] == "nomogram")].iloc[0]
    ref = stats.hl_test(y, train["risk_nomogram"].to_numpy(), g=g)
    assert (tr["statistic"], tr["p_value"], tr["groups"]) == pytest.approx((ref["statistic"], ref["p_value"], g), abs=1e-12)
    assert hl[hl["set"] == "test"]["statistic"].isna().all() and hl[hl["set"] == "test"]["note"].str.startswith("not reported").all()


def test_hl_groups_keep_five_expected_events_and_non_events_per_group_and_drop_the_test_below_three():
    from srnomogram.study.stages import hl_groups

    # the demo's test set: 24 lesions, 8 malignant -> floor(8 / 5) = 1 group: no test
    g, why = hl_groups(np.r_[np.ones(8), np.zeros(16)], 10)
    assert g is None and why.startswith("not reported: 8 events and 16 non-events")
    assert hl_groups(np.r_[np.ones(15), np.zeros(200)], 10)[0] == 3  # 15 events: 3 groups of 5
    assert hl_groups(np.r_[np.ones(14), np.zeros(200)], 10)[0] is None
    assert hl_groups(np.r_[np.ones(37), np.zeros(40)], 10)[0] == 7  # capped by events
    assert hl_groups(np.r_[np.ones(300), np.zeros(300)], 10) == (10, "10 groups")  # large sets: nomogram.hl_groups
    assert hl_groups(np.r_[np.ones(40), np.zeros(12)], 10)[0] is None  # non-events count too: floor(12 / 5) = 2


def test_added_value_is_the_lr_test_on_train_and_the_paired_net_benefit_difference_on_test(tmp_path):
    from scipy.stats import chi2

    from srnomogram.study.stages import run_nomogram

    cfg, inputs = _nomogram_inputs(tmp_path)
    run_nomogram(_ctx(cfg, inputs, tmp_path / "nom", "nomogram"))
    out = tmp_path / "nom"
    av = pd.read_csv(out / "added_value.csv")
    assert list(av.columns) == ["set", "estimand", "estimate", "lower", "upper", "statistic", "df", "p_value", "method"]
    av = av.set_index("estimand")
    data = _analysis(cfg, inputs)
    train = data[data["split"] == "train"]
    y = train["label"].to_numpy(float)
    _, ll_small = _irls(train[["age", "max_diameter_cm"]].to_numpy(float), y)
    _, ll_big = _irls(train[["age", "max_diameter_cm", "deep_score"]].to_numpy(float), y)
    lr = av.loc["lr_test_deep_score"]
    assert lr["set"] == "train" and lr["df"] == 1 and lr["method"] == "likelihood-ratio test (rms::lrtest)"
    assert lr["statistic"] == pytest.approx(2 * (ll_big - ll_small), rel=1e-5)  # rms::lrm's convergence tolerance
    assert lr["p_value"] == pytest.approx(chi2.sf(2 * (ll_big - ll_small), 1), rel=1e-5)
    # Δ net benefit over dca_range (default 0.02-0.50, at the dca_thresholds step 0.05): analytic point estimates
    preds = pd.read_csv(out / "predictions.csv")
    test = preds[preds["split"] == "test"]
    yt, n = test["label"].to_numpy(), len(test)
    th = np.round(np.arange(0.02, 0.50 + 0.025, 0.05), 10)

    def nb(r):
        return np.array([np.sum((r > t) & (yt == 1)) / n - np.sum((r > t) & (yt == 0)) / n * t / (1 - t) for t in th])

    d = nb(test["risk_nomogram"].to_numpy()) - nb(test["risk_clinical"].to_numpy())
    nbd = pd.read_csv(out / "net_benefit_difference.csv")
    np.testing.assert_allclose(nbd["threshold"], th, atol=1e-12)
    np.testing.assert_allclose(nbd["difference"], d, atol=1e-12)
    m = av.loc["delta_net_benefit_mean"]
    assert m["set"] == "test" and m["estimate"] == pytest.approx(d.mean(), abs=1e-12)
    assert m["lower"] <= m["estimate"] <= m["upper"] and "paired percentile bootstrap" in m["method"]
    assert (nbd["lower"] <= nbd["difference"] + 1e-12).all() and (nbd["conf_level"] == 0.9).all()


def test_net_benefit_thresholds_equal_the_decision_curve_and_resample_patients(tmp_path):
    """net_benefit_thresholds: the decision curve's net benefit at the thresholds of interest, exactly; the
    difference as net_benefit_difference; the bootstrap draws patients (two lesions each, moved together)."""
    from srnomogram import stats
    from srnomogram.study.stages import run_nomogram

    cfg, inputs = _nomogram_inputs(tmp_path, patient_id=[f"pt{k // 2:02d}" for k in range(60)])
    cfg = dataclasses.replace(cfg, nomogram=dataclasses.replace(cfg.nomogram, thresholds_of_interest=(0.02, 0.05, 0.3)))
    run_nomogram(_ctx(cfg, inputs, tmp_path / "nom", "nomogram"))
    out = tmp_path / "nom"
    nbt = pd.read_csv(out / "net_benefit_thresholds.csv")
    assert list(nbt[["model", "threshold"]].itertuples(index=False, name=None)) == [
        (m, t) for t in (0.02, 0.05, 0.3) for m in ("clinical", "nomogram")]
    preds = pd.read_csv(out / "predictions.csv", dtype={"case_id": str})
    test = preds[preds["split"] == "test"].reset_index(drop=True)
    cohort = pd.read_csv(inputs["split"].file("cohort.csv"), dtype={"case_id": str, "patient_id": str})
    pid = test["case_id"].map(dict(zip(cohort["case_id"], cohort["patient_id"])))
    assert pid.duplicated().any()  # whole patients in the test set
    yt, n = test["label"].to_numpy(), len(test)
    for name in ("clinical", "nomogram"):
        d = stats.decision_curve(f"label ~ risk_{name}", test[["label", f"risk_{name}"]], fitted_risk=True,
                                 thresholds=[0.02, 0.05, 0.3], conf_level=0.9, bootstraps=20, seed=3, cluster=pid)
        mine = nbt[nbt["model"] == name]
        curve = d[~d["model"].isin(["All", "None"])]
        np.testing.assert_array_equal(mine["net_benefit"].to_numpy(), curve["NB"].to_numpy())  # exactly
        np.testing.assert_array_equal(mine[["lower", "upper"]].to_numpy(), curve[["NB_lower", "NB_upper"]].to_numpy())
        np.testing.assert_array_equal(mine["treat_all"].to_numpy(), d.loc[d["model"] == "All", "NB"].to_numpy())
        r = test[f"risk_{name}"].to_numpy()
        nb = [np.sum((r > t) & (yt == 1)) / n - np.sum((r > t) & (yt == 0)) / n * t / (1 - t) for t in (0.02, 0.05, 0.3)]
        np.testing.assert_allclose(mine["net_benefit"], nb, atol=1e-12)  # and the analytic value
    nom = nbt[nbt["model"] == "nomogram"]
    np.testing.assert_allclose(nom["delta_vs_clinical"], nom["net_benefit"].to_numpy() - nbt.loc[nbt["model"] == "clinical", "net_benefit"].to_numpy(),
                               atol=1e-15)
    assert nbt.loc[nbt["model"] == "clinical", "delta_vs_clinical"].isna().all()
    assert (nbt["n_patients"] == pid.nunique()).all() and (nbt["n"] == n).all()
    assert nbt["method"].iloc[0] == f"percentile bootstrap over {pid.nunique()} patients (B = 20, seed 3; paired for the difference)"
    # patients, not lesions, are resampled: the difference's interval is that of net_benefit_difference over the
    # patients, and differs from the one over lesions
    codes = pd.Series(pd.factorize(pid)[0] + 1)
    ref = stats.call("net_benefit_difference", yt.astype(float), test["risk_nomogram"].to_numpy(), test["risk_clinical"].to_numpy(),
                     thresholds=[0.02, 0.05, 0.3], B=20, seed=3, cluster=list(codes), conf_level=0.9).frame()
    np.testing.assert_allclose(nom[["delta_lower", "delta_upper"]].to_numpy(), ref[["lower", "upper"]].to_numpy(), atol=1e-15)
    by_lesion = stats.call("net_benefit_difference", yt.astype(float), test["risk_nomogram"].to_numpy(), test["risk_clinical"].to_numpy(),
                           thresholds=[0.02, 0.05, 0.3], B=20, seed=3, conf_level=0.9).frame()
    assert not np.allclose(nom[["delta_lower", "delta_upper"]].to_numpy(), by_lesion[["lower", "upper"]].to_numpy())


def test_a_pre_specified_threshold_is_used_for_both_models_and_frozen(tmp_path):
    from srnomogram.study.stages import run_nomogram

    cfg, inputs = _nomogram_inputs(tmp_path)
    cfg = dataclasses.replace(cfg, nomogram=dataclasses.replace(cfg.nomogram, threshold=0.02, dca_bootstraps=0))
    run_nomogram(_ctx(cfg, inputs, tmp_path / "nom", "nomogram"))
    cuts = pd.read_csv(tmp_path / "nom" / "nomogram_thresholds.csv")
    assert (cuts["threshold"] == 0.02).all() and cuts["threshold_from"].str.startswith("pre-specified").all()
    hv = pd.read_csv(tmp_path / "nom" / "heldout_validation.csv")
    assert (hv["threshold"] == 0.02).all()
    av = pd.read_csv(tmp_path / "nom" / "added_value.csv").set_index("estimand")
    assert np.isnan(av.loc["delta_net_benefit_mean", "lower"])  # no bootstrap asked for


def test_table2_stage_takes_cut_off_and_training_metrics_from_the_out_of_fold_scores(tmp_path):
    from srnomogram import metrics

    cfg, inputs, oof_train, t2 = _table2_with_oof(tmp_path, oof_noise=0.8)
    table = t2.table("table2").set_index("set")
    y = oof_train["label"].to_numpy()
    th = metrics.youden_threshold(y, oof_train["or_lr"])
    assert table.loc["train", "threshold"] == th and table.loc["test", "threshold"] == th
    pos = oof_train["or_lr"].to_numpy() >= th
    assert table.loc["train", "sensitivity"] == pytest.approx(np.sum(pos & (y == 1)) / np.sum(y == 1), abs=1e-15)
    assert (table.loc["train", "estimate"], table.loc["train", "auc_estimate"]) == ("cross-validated", "apparent")
    assert table.loc["train", "threshold_from"] == "cross-validated"


def test_table2_stage_with_two_lesions_per_patient_gives_clustered_delong_intervals(tmp_path):
    """A manifest with patient_id (two lesions per patient, as BUS-BRA's two views): Table 2's AUC
    intervals (apparent, cross-validated, test) and the score check are Obuchowski's clustered
    intervals, patients as clusters, and say so; the cohort without patients keeps plain DeLong."""
    from srnomogram import metrics
    from srnomogram.study.cache import StageResult
    from srnomogram.study.stages import run_table2

    m = _manifest(tmp_path, n=60, patient_id=[f"pt{k // 2:02d}" for k in range(60)])
    cfg = config_from_dict({"cohort": {"manifest": str(m)}, "study": {"output": str(tmp_path / "o"), "seed": 3}})
    split = Runner(cfg, build_stages(cfg)).run(until="split")["split"]
    cohort = pd.read_csv(split.file("cohort.csv"), dtype={"case_id": str, "patient_id": str})
    rng = np.random.default_rng(2)
    y = cohort["label"].to_numpy()
    fake = tmp_path / "models"
    fake.mkdir()
    scores = cohort[["case_id", "split", "label"]].assign(or_lr=y + rng.normal(0, 0.7, len(y)))
    oof = scores.assign(or_lr=y + rng.normal(0, 0.9, len(y)))
    scores.to_csv(fake / "radiomics_scores.csv", index=False)
    oof.to_csv(fake / "radiomics_scores_oof.csv", index=False)
    run_table2(_ctx(cfg, {"split": split, "fake": StageResult("fake", fake, "k", {})}, tmp_path / "t2", "table2"))
    t2 = StageResult("table2", tmp_path / "t2", "k", {})
    table = t2.table("table2").set_index("set")
    for s in ("train", "test"):
        part = cohort["split"] == s
        g = cohort.loc[part, "patient_id"].to_numpy()
        assert pd.Series(g).duplicated().any()
        _, lo, hi = metrics.roc_auc_ci(y[part], scores.loc[part, "or_lr"], groups=g)
        assert (table.loc[s, "auc_lower"], table.loc[s, "auc_upper"]) == pytest.approx((lo, hi), abs=1e-12)
        assert table.loc[s, "auc_method"] == metrics.CLUSTERED_DELONG
    tr = (cohort["split"] == "train").to_numpy()
    cv = metrics.roc_auc_ci(y[tr], oof.loc[tr, "or_lr"], groups=cohort.loc[tr, "patient_id"].to_numpy())
    assert tuple(table.loc["train", ["cv_auc", "cv_auc_lower", "cv_auc_upper"]]) == pytest.approx(cv, abs=1e-12)
    check = t2.json("best_model")["score_check"]
    assert check["method"] == metrics.CLUSTERED_DELONG
    assert (check["cv_auc_lower"], check["cv_auc_upper"]) == pytest.approx(cv[1:], abs=1e-12)
    assert t2.table("score_check").iloc[0]["method"] == metrics.CLUSTERED_DELONG
    # the same lesions, each its own patient: DeLong, no auc_method column (today's Table 2)
    plain = metrics.table2_rows("or_lr", y[tr], scores.loc[tr, "or_lr"], y[~tr], scores.loc[~tr, "or_lr"],
                                s_train_cv=oof.loc[tr, "or_lr"], groups_train=cohort.loc[tr, "case_id"],
                                groups_test=cohort.loc[~tr, "case_id"])
    pd.testing.assert_frame_equal(plain, metrics.table2_rows("or_lr", y[tr], scores.loc[tr, "or_lr"], y[~tr],
                                                             scores.loc[~tr, "or_lr"], s_train_cv=oof.loc[tr, "or_lr"]))
    assert "auc_method" not in plain.columns


def test_nomogram_stage_with_two_lesions_per_patient_gives_clustered_roc_intervals_and_comparison(tmp_path):
    """roc_auc and roc_comparison of a cohort of two lesions per patient: Obuchowski's clustered DeLong
    (Python's roc_auc_ci and the R package's compare_roc, each equal to metrics' groups=)."""
    from srnomogram import metrics, stats
    from srnomogram.study.stages import run_nomogram

    ro, _, _ = stats._r()
    if "cluster" not in list(ro.r("names(formals(srnomogram::compare_roc))")):
        pytest.skip("the installed R package has no compare_roc(cluster = ) (reinstall it from this tree)")
    cfg, inputs = _nomogram_inputs(tmp_path, alpha=0.05, dca_bootstraps=0, patient_id=[f"pt{k // 2:02d}" for k in range(60)])
    run_nomogram(_ctx(cfg, inputs, tmp_path / "nom", "nomogram"))
    out = tmp_path / "nom"
    preds = pd.read_csv(out / "predictions.csv", dtype={"case_id": str})
    cohort = pd.read_csv(inputs["split"].file("cohort.csv"), dtype={"case_id": str, "patient_id": str})
    pid = preds["case_id"].map(dict(zip(cohort["case_id"], cohort["patient_id"])))
    roc = pd.read_csv(out / "roc_auc.csv").set_index(["set", "model"])
    for s in ("train", "test"):
        part = (preds["split"] == s).to_numpy()
        for name in ("clinical", "nomogram"):
            auc = metrics.roc_auc_ci(preds.loc[part, "label"], preds.loc[part, f"risk_{name}"], groups=pid[part].to_numpy())
            assert tuple(roc.loc[(s, name), ["auc", "lower", "upper"]]) == pytest.approx(auc, abs=1e-12)
            assert roc.loc[(s, name), "method"] == metrics.CLUSTERED_DELONG
    te = (preds["split"] == "test").to_numpy()
    cmp = pd.read_csv(out / "roc_comparison.csv").iloc[0]
    z, p = metrics.compare_auc_delong(preds.loc[te, "label"], preds.loc[te, "risk_nomogram"], preds.loc[te, "risk_clinical"],
                                      groups=pid[te].to_numpy())
    assert (cmp["statistic"], cmp["p_value"]) == pytest.approx((z, p), abs=1e-12)
    assert "Obuchowski 1997" in cmp["method"]
