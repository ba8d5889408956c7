"""Stages: best-model rule, clinical-column checks, and the stage graph a config asks for."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from srnomogram.errors import ConfigError, InputError
from srnomogram.study.cache import Runner
from srnomogram.study.config import config_from_dict
from srnomogram.study.stages import build_stages, choose_best


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


def test_ties_go_to_the_higher_train_auc():
    s = _scores()
    s["copy"] = s["sr_lr"]
    s.loc[s["split"] == "train", "copy"] = s.loc[s["split"] == "train", "or_lr"]  # same test AUC, worse train AUC
    assert choose_best(s, ["copy", "sr_lr"], "test_auc")[0] == "sr_lr"


def test_stage_graph_follows_the_settings():
    cfg = config_from_dict({"cohort": {"manifest": "m.csv"}})
    names = [s.name for s in build_stages(cfg)]
    assert names[:2] == ["split", "sr"]
    assert sum(n.startswith("deep_") for n in names) == 4
    assert names[-4:] == ["table2", "clinical", "nomogram", "application"]
    small = config_from_dict({"cohort": {"manifest": "m.csv"}, "sr": {"enabled": False}, "deep": {"archs": ["mobilenet_v2"]}})
    assert [s.name for s in build_stages(small)] == [
        "split", "radiomics_or", "radiomics_models", "deep_or_mobilenet_v2", "table2", "clinical", "nomogram", "application"
    ]


def _manifest(tmp_path, **extra):
    from srnomogram.data import demo_cohort

    path = demo_cohort(tmp_path / "cohort", n=12, seed=1, n_volumes=0)
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


def test_finished_stages_are_pinned_with_provenance(tmp_path):
    from srnomogram.board import pin_meta, read_pin
    from srnomogram.study.pipeline import _publisher

    m = _manifest(tmp_path)
    out = tmp_path / "o"
    cfg = config_from_dict({"cohort": {"manifest": str(m)}, "study": {"output": str(out), "seed": 5}})
    runner = Runner(cfg, build_stages(cfg), on_done=_publisher(cfg, out / "board"))
    res = runner.run(until="split")["split"]
    manifest = read_pin(out / "board", "manifest")
    assert manifest["case_id"].tolist() == pd.read_csv(res.file("cohort.csv"), dtype={"case_id": str})["case_id"].tolist()
    meta = pin_meta(out / "board", "split_counts")
    assert meta["seed"] == 5 and meta["config_hash"] == cfg.config_hash and meta["stage_key"] == res.key
    assert meta["config"]["deep"]["epochs"] == 200
    assert meta["output_hashes"]["split_counts.csv"] == res.files["split_counts.csv"]
    from srnomogram.utils import file_sha256

    assert meta["input_hashes"]["inputs"]["manifest"] == file_sha256(m)
