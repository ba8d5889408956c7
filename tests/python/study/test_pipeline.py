"""End to end: `srnomogram demo` on a tiny cohort (slow), and `srnomogram run` argument errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from srnomogram.cli import main


def test_run_with_unknown_key_exits_2_naming_the_key(tmp_path, capsys):
    p = tmp_path / "study.yaml"
    p.write_text("cohort:\n  manifest: m.csv\ndeep:\n  epochs: ten\n")
    assert main(["run", str(p)]) == 2
    assert "deep.epochs must be an int > 0. Got 'ten' instead." in capsys.readouterr().err
    assert main(["run", str(p), "--set", "deep.epochs=2", "--set", "nomogram.bogus=1"]) == 2
    assert "Unknown key 'nomogram.bogus'" in capsys.readouterr().err


def test_repeats_flag_sets_validation_repeats_and_is_checked(tmp_path, capsys):
    p = tmp_path / "study.yaml"
    p.write_text("cohort:\n  manifest: m.csv\n")
    assert main(["run", str(p), "--repeats", "-1"]) == 2
    assert "validation.repeats must be an int >= 0. Got -1 instead." in capsys.readouterr().err


def test_recipe_flag_sets_the_papers_two_choices_and_refuses_a_contradiction(tmp_path, capsys):
    from srnomogram.study._cli import _cli_overrides
    from srnomogram.study.config import load_config

    p = tmp_path / "study.yaml"
    p.write_text("cohort:\n  manifest: m.csv\n")
    import argparse

    args = argparse.Namespace(overrides=[], repeats=None, scheduler=None, threads=None, recipe="paper")
    cfg = load_config(p, overrides=_cli_overrides(args))
    assert (cfg.study.recipe, cfg.nomogram.best_model_rule, cfg.nomogram.train_score) == ("paper", "test_auc", "fitted")
    assert main(["run", str(p), "--recipe", "paper", "--set", "nomogram.best_model_rule=cv_auc"]) == 2
    assert "study.recipe 'paper' sets nomogram.best_model_rule to 'test_auc'" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: not one of the choices
        main(["run", str(p), "--recipe", "yang"])
    assert "invalid choice: 'yang'" in capsys.readouterr().err


TINY = [
    "--set", "deep.archs=[mobilenet_v2]",
    "--set", "deep.epochs=1",
    "--set", "deep.params={image_size: 32}",
    "--set", "sr.params={iterations: 4, patch_size: 32, batch_size: 4, channels: 8, blocks: 1}",
    "--set", "nomogram.calibration_b=20",
    "--set", "report.formats=[png]",
]


@pytest.mark.slow
def test_demo_end_to_end_produces_report_tables_and_pins(tmp_path, capsys):
    from srnomogram.board import list_pins, read_pin

    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "-n", "60", *TINY]) == 0
    report = out / "report.html"
    assert capsys.readouterr().out.strip().endswith(str(report))
    text = report.read_text(encoding="utf-8")
    assert "Table 2" in text and "data:image/png;base64," in text and "http://" not in text
    t2 = pd.read_csv(out / "tables" / "table2.csv")
    # Table 2 is keyed by model id (the join key), its display label a column of its own
    assert set(t2["model"]) == {"or_lr", "or_svm", "sr_lr", "sr_svm", "or_mobilenet_v2", "sr_mobilenet_v2"}
    assert set(t2["label"]) == {"OR-LR", "OR-SVM", "SR-LR", "SR-SVM", "OR-MobileNetV2", "SR-MobileNetV2"}
    assert {"scores", "table2", "manifest", "calibration", "decision_curves", "gradcam_or_mobilenet_v2", "model_labels"} <= set(list_pins(out / "board"))
    pd.testing.assert_frame_equal(read_pin(out / "board", "table2"), t2)
    for fig in ("figure3_roc_models", "figure4_loss", "figure5_gradcam", "figure6_nomogram", "figure7_validation"):
        assert (out / "figures" / f"{fig}.png").stat().st_size > 1000
    # a rerun reuses everything and gives the same numbers
    assert main(["demo", "-o", str(out), "-n", "60", *TINY]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(out / "tables" / "table2.csv"), t2)


@pytest.mark.slow
def test_real_study_killed_then_rerun_gives_the_same_tables(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    import yaml

    from srnomogram.data import demo_cohort

    manifest = demo_cohort(tmp_path / "cohort", n=60, seed=0, n_volumes=0)
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump({
        "cohort": {"manifest": str(manifest)},
        "sr": {"enabled": False},
        "deep": {"enabled": False},
        "radiomics": {"jobs": 1},
        "nomogram": {"calibration_b": 50},
        "report": {"formats": ["png"]},
    }))
    cmd = [sys.executable, "-m", "srnomogram", "-q", "run", str(study), "-o"]
    subprocess.run([*cmd, str(tmp_path / "straight")], check=True, timeout=900)
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*cmd, str(killed)])
    marker = killed / "stages" / "table2" / "done.json"
    deadline = time.time() + 600
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert not (killed / "report.html").exists()
    subprocess.run([*cmd, str(killed)], check=True, timeout=900)
    for name in ("table1", "table2", "table_s2", "roc_auc", "hosmer_lemeshow", "calibration_summary"):
        pd.testing.assert_frame_equal(
            pd.read_csv(tmp_path / "straight" / "tables" / f"{name}.csv"),
            pd.read_csv(killed / "tables" / f"{name}.csv"),
            check_exact=True,
        )


def test_study_on_a_dask_cluster_gives_the_local_tables(demo_dir, dask_cluster, tmp_path, monkeypatch):
    """Radiomics-only study (no SR, no CNN) run locally and with study.scheduler on a LocalCluster."""
    import yaml

    from srnomogram import parallel
    from srnomogram.board import read_pin

    monkeypatch.delenv(parallel.SCHEDULER_ENV, raising=False)
    connected = []
    real_connect = parallel.connect
    monkeypatch.setattr(parallel, "connect", lambda address, **kw: connected.append(address) or real_connect(address, **kw))
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump({
        "cohort": {"manifest": str(demo_dir / "manifest.csv")},
        "sr": {"enabled": False},
        "deep": {"enabled": False},
        "radiomics": {"jobs": 1},
        "nomogram": {"calibration_b": 20, "dca_bootstraps": 0, "hl_groups": 4},
        "report": {"formats": ["png"]},
    }))
    assert main(["-q", "run", str(study), "-o", str(tmp_path / "local")]) == 0
    assert connected == []
    assert main(["-q", "run", str(study), "-o", str(tmp_path / "cluster"), "--set", f"study.scheduler={dask_cluster.scheduler_address}"]) == 0
    assert connected == [dask_cluster.scheduler_address]
    tables = sorted(p.name for p in (tmp_path / "local" / "tables").glob("*.csv"))
    assert {"table1.csv", "table2.csv", "table_s2.csv", "roc_auc.csv", "hosmer_lemeshow.csv"} <= set(tables)
    assert tables == sorted(p.name for p in (tmp_path / "cluster" / "tables").glob("*.csv"))
    for name in tables:
        pd.testing.assert_frame_equal(
            pd.read_csv(tmp_path / "cluster" / "tables" / name), pd.read_csv(tmp_path / "local" / "tables" / name), check_exact=True, obj=name
        )
    pd.testing.assert_frame_equal(
        read_pin(tmp_path / "cluster" / "board", "radiomics_features_or"), read_pin(tmp_path / "local" / "board", "radiomics_features_or"), check_exact=True
    )
    # the scheduler is in no cache key: a cluster run reuses every stage of a local run, and back
    import json

    connected.clear()
    assert main(["-q", "run", str(study), "-o", str(tmp_path / "local"), "--scheduler", dask_cluster.scheduler_address]) == 0
    assert main(["-q", "run", str(study), "-o", str(tmp_path / "cluster"), "--scheduler", "local"]) == 0
    assert connected == []  # nothing left to extract
    for out in ("local", "cluster"):
        log = json.loads((tmp_path / out / "run_log.json").read_text(encoding="utf-8"))
        assert len(log) >= 5 and all(s["reused"] for s in log), out
    assert yaml.safe_load((tmp_path / "local" / "resolved_config.yaml").read_text(encoding="utf-8"))["study"]["scheduler"] == dask_cluster.scheduler_address
    # nor in the config hash that the frozen application (and every pin) records
    app = [(tmp_path / out / "stages" / "application" / "application.json").read_bytes() for out in ("local", "cluster")]
    assert app[0] == app[1]


# ------------------------------------------------------------------ one orchestration: the CLIs write the study's pins
def _study_board(tmp_path, demo_dir, until, **sections):
    """Run a study on the demo cohort up to ``until`` with the publisher; return its board and split stage."""
    from srnomogram.study.cache import Runner
    from srnomogram.study.config import config_from_dict
    from srnomogram.study.pipeline import publisher
    from srnomogram.study.stages import build_stages

    out = tmp_path / "study"
    cfg = config_from_dict({"cohort": {"manifest": str(demo_dir / "manifest.csv")}, "study": {"output": str(out), "seed": 3},
                            "sr": {"enabled": False}, "validation": {"folds": 2}, **sections})
    res = Runner(cfg, build_stages(cfg), on_done=publisher(cfg, out / "board")).run(until=until)
    return out / "board", res["split"]


def _assert_same_pins(cli_board, study_board, names, exact=True):
    from srnomogram.board import list_pins, read_pin

    assert set(names) <= set(list_pins(cli_board)) and set(names) <= set(list_pins(study_board))
    for name in names:
        cli, study = read_pin(cli_board, name), read_pin(study_board, name)
        assert list(cli.columns) == list(study.columns), name
        if exact:
            pd.testing.assert_frame_equal(cli, study, check_exact=False, rtol=0, atol=1e-12, obj=name)


def test_radiomics_cli_writes_the_study_pins_with_the_same_columns_and_values(demo_dir, tmp_path):
    from srnomogram.board import list_pins

    study_board, split = _study_board(tmp_path, demo_dir, "radiomics_models", deep={"enabled": False}, radiomics={"jobs": 1})
    cohort, board = split.file("cohort.csv"), tmp_path / "cli_board"
    assert main(["-q", "radiomics", "extract", str(cohort), "-o", str(tmp_path / "or.csv"), "-j", "1", "--board", str(board)]) == 0
    assert main(["-q", "radiomics", "fit", str(cohort), "--features", str(tmp_path / "or.csv"), "-o", str(tmp_path / "fit"),
                 "--seed", "3", "--board", str(board)]) == 0
    names = ["radiomics_features_or", "radiomics_scores", "radiomics_selected", "scores_or_lr", "scores_or_svm"]
    assert sorted(list_pins(board)) == sorted(names)
    _assert_same_pins(board, study_board, names)
    # the CLI's cross-fitting over the study's folds gives the study's out-of-fold scores
    folds = split.table("folds")
    from srnomogram.radiomics import fit_or_sr_models
    from srnomogram.radiomics._cli import _read_table

    c = pd.read_csv(cohort, dtype={"case_id": str}).set_index("case_id")
    res = fit_or_sr_models(c["label"], c["split"], _read_table(tmp_path / "or.csv"), random_state=3, folds=folds)
    stage_oof = pd.read_csv(study_board.parent / "stages" / "radiomics_models" / "radiomics_scores_oof.csv", dtype={"case_id": str})
    pd.testing.assert_frame_equal(res["scores_oof"], stage_oof, check_exact=False, rtol=0, atol=1e-12)


def test_deep_cli_writes_the_study_pins_with_the_same_columns_and_scores(demo_dir, tmp_path):
    import numpy as np

    from srnomogram.board import read_pin

    params = {"image_size": 32, "progress": False}
    study_board, split = _study_board(tmp_path, demo_dir, "deep_or_mobilenet_v2", radiomics={"enabled": False},
                                      deep={"archs": ["mobilenet_v2"], "weights": "none", "epochs": 1, "batch_size": 8, "device": "cpu", "params": params})
    board = tmp_path / "cli_board"
    assert main(["-q", "deep", "train", str(split.file("cohort.csv")), "--arch", "mobilenet_v2", "--weights", "none", "--epochs", "1",
                 "--batch-size", "8", "--image-size", "32", "--seed", "3", "--deterministic", "--device", "cpu", "--gradcam", "none",
                 "--out", str(tmp_path / "deep"), "--board", str(board)]) == 0
    _assert_same_pins(board, study_board, ["scores_or_mobilenet_v2", "loss_history_or_mobilenet_v2"])
    _assert_same_pins(board, study_board, ["model_or_mobilenet_v2"], exact=False)
    cli, study = read_pin(board, "model_or_mobilenet_v2"), read_pin(study_board, "model_or_mobilenet_v2")
    for key in ("arch", "seed", "params.image_size", "train_case_ids", "loss_history"):
        assert cli[key].iloc[0] == study[key].iloc[0], key
    assert np.isfinite(read_pin(board, "scores_or_mobilenet_v2")["score"]).all()


def test_the_publisher_pins_what_each_stage_declares_and_nothing_else(tmp_path):
    from srnomogram.board import list_pins, read_pin
    from srnomogram.study.cache import Pin, Runner, Stage
    from srnomogram.study.config import config_from_dict
    from srnomogram.study.pipeline import publisher

    def fn(ctx):
        ctx.write_table("a", pd.DataFrame({"x": [1, 2]}))
        ctx.write_table("b", pd.DataFrame({"y": [3.5]}))
        ctx.write_table("not_declared", pd.DataFrame({"z": [0]}))
        ctx.path("blob.bin").write_bytes(b"\x00maps")

    stage = Stage("toy", fn, pins=(Pin("a"), Pin("b_renamed", table="b"), Pin("never_written"),
                                   Pin("built", read=lambda r: r.table("a").assign(x2=lambda d: 2 * d["x"])),
                                   Pin("blob", file="blob.bin"), Pin("no_blob", file="absent.bin")))
    cfg = config_from_dict({"cohort": {"manifest": "m.csv"}, "study": {"output": str(tmp_path)}})
    Runner(cfg, [stage], on_done=publisher(cfg, tmp_path / "board")).run()
    assert list_pins(tmp_path / "board") == ["a", "b_renamed", "blob", "built"]
    assert read_pin(tmp_path / "board", "built")["x2"].tolist() == [2, 4]
    from srnomogram.board import read_file_pin

    assert read_file_pin(tmp_path / "board", "blob").read_bytes() == b"\x00maps"


def test_every_pin_of_a_full_study_is_declared_by_exactly_one_stage():
    from srnomogram.study.config import config_from_dict
    from srnomogram.study.pipeline import study_stages

    stages = study_stages(config_from_dict({"cohort": {"manifest": "m.csv"}, "validation": {"repeats": 3},
                                            "board": {"pickle_models": True}}))
    names = [p.name for s in stages for p in s.pins]
    assert len(names) == len(set(names))
    by_stage = {s.name: {p.name for p in s.pins} for s in stages}
    # the repeated splits are a stage of their own, before main_result (which summarises them)
    assert [s.name for s in stages][-2:] == ["repeats", "main_result"]
    assert by_stage["repeats"] == {"repeated_splits", "repeated_splits_summary"}
    assert {"model_labels", "table2", "score_check"} <= by_stage["table2"]
    # board.pickle_models: the fitted pipelines are declared pins too, not written beside the publisher
    assert {"model_or_lr", "model_sr_svm"} <= by_stage["radiomics_models"]
    assert by_stage["deep_sr_resnet101"] == {"scores_sr_resnet101", "loss_history_sr_resnet101", "model_sr_resnet101", "gradcam_sr_resnet101"}
    assert by_stage["radiomics_models"] - {"model_or_lr", "model_or_svm", "model_sr_lr", "model_sr_svm"} == {
        "radiomics_scores", "radiomics_selected", "scores_or_lr", "scores_or_svm", "scores_sr_lr", "scores_sr_svm"}


def test_the_methods_text_and_the_score_warnings_come_from_the_stages_records_on_the_board(tmp_path):
    """The split's counts, the chosen model and the score's sign check reach report.html through their
    record pins (file pins of the stages' JSON), with the stage folders deleted before publishing; a record
    pin that no stage of this study declares (left on the board by an earlier config) is not read."""
    import shutil

    from srnomogram.board import write_file_pin
    from srnomogram.study.cache import Runner, Stage, record
    from srnomogram.study.config import config_from_dict
    from srnomogram.study.pipeline import publish, publisher
    from srnomogram.study.report import BoardRecords

    split_info = {"n": 12, "n_patients": 7, "unit": "patient", "source": "stratified random split"}
    best = {"model": "sr_mobilenet_v2", "label": "MobileNetV2 (SR)", "rule": "cv_auc", "folds": 3,
            "score_check": {"no_signal": True, "cv_auc": 0.55, "cv_auc_lower": 0.41, "cv_auc_upper": 0.69, "conf_level": 0.95}}
    coef = {"coef": -1.5, "se": 0.5, "p_value": 0.003, "unit": 0.1, "odds_ratio_per_unit": float(np.exp(-0.15)),
            "lower_per_unit": 0.75, "upper_per_unit": 0.95, "conf_level": 0.95, "negative": True}
    stages = [Stage("split", lambda ctx: ctx.write_json("split_info", split_info), pins=(record("split_info", "split"),)),
              Stage("table2", lambda ctx: ctx.write_json("best_model", best), pins=(record("best_model", "best"),))]
    cfg = config_from_dict({"cohort": {"manifest": "m.csv"}, "study": {"output": str(tmp_path)}, "report": {"formats": ["png"]}})
    board = tmp_path / "board"
    stale = tmp_path / "score_coefficient.json"
    stale.write_text(json.dumps(coef), encoding="utf-8")
    write_file_pin(board, "score_coefficient", stale, metadata={"stage": "nomogram"})
    runner = Runner(cfg, stages, on_done=publisher(cfg, board))
    runner.run()
    shutil.rmtree(tmp_path / "stages")
    records = BoardRecords(board, stages)
    assert "split" in records and "table2" in records and "nomogram" not in records
    assert records["split"].json("split_info") == split_info
    with pytest.raises(FileNotFoundError, match="no record 'best_model' of stage 'split'"):
        records["split"].json("best_model")
    page = " ".join(publish(cfg, stages, runner.log, tmp_path).read_text(encoding="utf-8").split())
    assert "The cohort comprised 12 lesions of 7 patients; they were divided into training and test sets (stratified random split)." in page
    assert "The model with the highest cross-validated training AUC (MobileNetV2 (SR)) provided the deep-learning score" in page
    assert ("The deep-learning score (MobileNetV2 (SR)) shows no cross-validated evidence of discrimination: its "
            "cross-validated training AUC is 0.550") in page
    assert "negative coefficient" not in page  # the nomogram stage is not in this study: its stale record is not read
    stages.append(Stage("nomogram", lambda ctx: ctx.write_json("score_coefficient", coef), pins=(record("score_coefficient", "sign"),)))
    runner = Runner(cfg, stages, on_done=publisher(cfg, board))
    runner.run()
    page = " ".join(publish(cfg, stages, runner.log, tmp_path).read_text(encoding="utf-8").split())
    assert "The deep-learning score (MobileNetV2 (SR)) enters the nomogram with a negative coefficient (-1.500; OR 0.86 per 0.1" in page


def test_the_report_and_tables_folder_show_a_newly_declared_pin_from_the_board_alone(tmp_path):
    """Adding a statistic to the report is one declared Pin: the publisher pins it, publish() exports it to
    tables/ and prints it in report.html under its title and in its order, reading the board (the stage
    folder is deleted before publishing)."""
    import shutil

    from srnomogram.study.cache import Pin, Runner, Stage
    from srnomogram.study.config import config_from_dict
    from srnomogram.study.pipeline import publisher, publish

    stat = pd.DataFrame({"model": ["nomogram"], "label": ["Nomogram"], "estimate": [0.8125], "p_value": [0.0004]})

    def fn(ctx):  # stands in for "call the R function through its wrapper"
        ctx.write_table("toy_statistic", stat)
        ctx.write_table("not_for_the_report", pd.DataFrame({"z": [1]}))

    stage = Stage("toy", fn, pins=(Pin("toy_statistic", title="Toy statistic ({level}% CI)", section="tables", order=1),
                                   Pin("not_for_the_report")))
    cfg = config_from_dict({"cohort": {"manifest": "m.csv"}, "study": {"output": str(tmp_path)}, "nomogram": {"alpha": 0.1},
                            "report": {"formats": ["png"]}})
    runner = Runner(cfg, [stage], on_done=publisher(cfg, tmp_path / "board"))
    runner.run()
    shutil.rmtree(tmp_path / "stages")  # the report reads the board, never the stage folders
    page = publish(cfg, [stage], runner.log, tmp_path).read_text(encoding="utf-8")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "tables" / "toy_statistic.csv"), stat)
    assert sorted(p.name for p in (tmp_path / "tables").iterdir()) == ["toy_statistic.csv"]
    assert "<h3>Toy statistic (90% CI)</h3>" in page and "<td>0.812</td>" in page and "&lt; 0.001" in page
    assert "not_for_the_report" not in page


def test_run_and_demo_refuse_an_output_folder_another_process_writes(tmp_path, lock_holder, capsys):
    out = tmp_path / "out"
    study = tmp_path / "study.yaml"
    study.write_text("cohort:\n  manifest: m.csv\n")
    with lock_holder(out) as holder:
        for argv in (["run", str(study), "-o", str(out)], ["demo", "-o", str(out)]):
            assert main(argv) == 2
            err = capsys.readouterr().err.strip()
            assert f"Output folder {out} is in use by pid {holder.pid} on " in err and "\n" not in err, argv
    assert [p.name for p in out.iterdir()] == [".srnomogram.lock"]  # neither wrote anything


def test_a_resumed_run_refuses_a_pin_edited_on_the_board_and_force_rewrites_it(tmp_path, monkeypatch, capsys):
    """pins takes a rewrite of an unchanged table for "identical" to the edited file and keeps the edit, so
    without the check a resumed run reuses every stage and prints the edited AUC in tables/ and the report."""
    from srnomogram.study import pipeline
    from srnomogram.study.cache import Pin, Stage

    auc = pd.DataFrame({"model": ["nomogram"], "label": ["Nomogram"], "auc": [0.8125]})
    stage = Stage("toy", lambda ctx: ctx.write_table("toy_auc", auc),
                  pins=(Pin("toy_auc", title="Toy AUC", section="tables", order=1),))
    monkeypatch.setattr(pipeline, "study_stages", lambda cfg: [stage])
    out = tmp_path / "out"
    study = tmp_path / "study.yaml"
    study.write_text(f"cohort:\n  manifest: m.csv\nstudy:\n  output: {out}\nreport:\n  formats: [png]\n")
    assert main(["run", str(study)]) == 0
    (csv,) = (out / "board" / "toy_auc").glob("*/toy_auc.csv")
    csv.write_text(csv.read_text(encoding="utf-8").replace("0.8125", "0.999"), encoding="utf-8")
    before = {p.name: p.read_bytes() for p in (out / "tables").iterdir()}
    page = (out / "report.html").read_bytes()
    capsys.readouterr()
    assert main(["run", str(study)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"Pin 'toy_auc' on board {out / 'board'} was changed after it was written" in err
    assert "--force toy" in err
    assert {p.name: p.read_bytes() for p in (out / "tables").iterdir()} == before  # nothing published from it
    assert (out / "report.html").read_bytes() == page
    assert main(["run", str(study), "--force", "toy"]) == 0
    assert pd.read_csv(out / "tables" / "toy_auc.csv")["auc"].tolist() == [0.8125]
    assert "<td>0.812</td>" in (out / "report.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("failure", ["read-only tables/", "full disk"])
def test_a_resumed_run_that_cannot_write_tables_is_one_line_and_leaves_the_tables_whole(tmp_path, monkeypatch, capsys, failure):
    """A read-only tables/ folder (tests run as root, which permission bits do not stop: the refusal is injected where
    the OS gives it, creating the temporary file) or a disk that fills half-way through a table: exit status 1, one
    line naming the table, and tables/ as the first run left it, with no temporary file."""
    import errno
    import tempfile

    from srnomogram.study import pipeline
    from srnomogram.study.cache import Pin, Stage

    stat = pd.DataFrame({"model": ["nomogram"], "estimate": [0.8125]})
    stage = Stage("toy", lambda ctx: ctx.write_table("toy_statistic", stat),
                  pins=(Pin("toy_statistic", title="Toy statistic", section="tables", order=1),))
    monkeypatch.setattr(pipeline, "study_stages", lambda cfg: [stage])
    study = tmp_path / "study.yaml"
    study.write_text("cohort: {manifest: m.csv}\nreport: {formats: [png]}\n")
    out = tmp_path / "out"
    assert main(["-q", "run", str(study), "-o", str(out)]) == 0
    tables = out / "tables"
    before = {p.name: p.read_bytes() for p in tables.iterdir()}
    assert list(before) == ["toy_statistic.csv"]
    capsys.readouterr()

    if failure == "read-only tables/":
        mkstemp = tempfile.mkstemp

        def refused(*args, dir=None, **kwargs):
            if Path(dir) == tables:
                raise PermissionError(errno.EACCES, "Permission denied", str(tables / ".toy_statistic.csv.k2x9q1.csv"))
            return mkstemp(*args, dir=dir, **kwargs)

        monkeypatch.setattr(tempfile, "mkstemp", refused)
        reason = "Permission denied; check its permissions, or choose a folder you can write in."
    else:
        to_csv = pd.DataFrame.to_csv

        def full_disk(self, path=None, *args, **kwargs):
            if path is None or Path(path).parent != tables:
                return to_csv(self, path, *args, **kwargs)
            Path(path).write_text("model,esti")
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(pd.DataFrame, "to_csv", full_disk)
        reason = "No space left on device; free some space (or choose another output folder) and rerun; finished steps are kept."
    assert main(["-q", "run", str(study), "-o", str(out)]) == 1  # resumed: the stage is reused, the tables exported again
    assert capsys.readouterr().err == f"srnomogram: error: {tables / 'toy_statistic.csv'}: {reason}\n"
    assert {p.name: p.read_bytes() for p in tables.iterdir()} == before
