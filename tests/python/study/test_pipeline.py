"""End to end: `srnomogram demo` on a tiny cohort (slow), and `srnomogram run` argument errors."""

from __future__ import annotations

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
    text = report.read_text()
    assert "Table 2" in text and "data:image/png;base64," in text and "http://" not in text
    t2 = pd.read_csv(out / "tables" / "table2.csv")
    assert set(t2["model"]) == {"OR-LR", "OR-SVM", "SR-LR", "SR-SVM", "OR-MobileNetV2", "SR-MobileNetV2"}
    assert {"scores", "table2", "manifest", "calibration", "decision_curves", "gradcam_or_mobilenet_v2"} <= set(list_pins(out / "board"))
    pd.testing.assert_frame_equal(read_pin(out / "board", "table2"), t2)
    for fig in ("figure3_roc_models", "figure6_nomogram", "figure7_validation"):
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
