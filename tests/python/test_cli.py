"""The ``srnomogram cohort`` commands: help, what they write, and one-line errors."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from srnomogram.cli import main
from srnomogram.data import load_manifest, stratified_split


def test_help_lists_the_cohort_commands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["cohort", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("import", "split", "demo", "validate"):
        assert cmd in out
    with pytest.raises(SystemExit):
        main(["cohort", "import", "--help"])
    out = capsys.readouterr().out
    assert "breast-lesions-usg" in out and "folder" in out


def test_module_entry_point_runs(tmp_path):
    res = subprocess.run([sys.executable, "-m", "srnomogram", "cohort", "split", "--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0
    assert "--test-size" in res.stdout and "--seed" in res.stdout


def test_demo_split_validate_round_trip(tmp_path, capsys, caplog):
    out = tmp_path / "demo"
    with caplog.at_level("INFO"):
        assert main(["cohort", "demo", str(out), "--n", "10", "--seed", "2", "--volumes", "1"]) == 0
    assert f"to {out / 'manifest.csv'}" in caplog.text  # the log says what was written where
    assert main(["cohort", "split", str(out / "manifest.csv"), "--seed", "1", "--test-size", "0.25"]) == 0
    df = load_manifest(out / "manifest.csv")
    assert df.split.tolist() == stratified_split(df, test_size=0.25, seed=1).tolist()
    capsys.readouterr()
    assert main(["cohort", "validate", str(out / "manifest.csv")]) == 0
    line = capsys.readouterr().out
    assert "10 lesions, 6 benign / 4 malignant; test 3, train 7; 2D images" in line
    assert main(["cohort", "validate", str(out / "volumes.csv")]) == 0
    assert "1 lesion, 1 benign / 0 malignant; no split column; 3D images" in capsys.readouterr().out


def test_folder_import_from_the_command_line(tmp_path):
    for cls in ("benign", "malignant"):
        (tmp_path / "src" / cls).mkdir(parents=True)
        Image.fromarray(np.full((6, 6), 50, np.uint8)).save(tmp_path / "src" / cls / "a.png")
        Image.fromarray(np.pad(np.full((2, 2), 255, np.uint8), 2)).save(tmp_path / "src" / cls / "a_mask.png")
    assert main(["cohort", "import", "folder", str(tmp_path / "src"), "-o", str(tmp_path / "m.csv"), "--spacing", "0.1"]) == 0
    assert pd.read_csv(tmp_path / "m.csv").case_id.tolist() == ["benign_a", "malignant_a"]


def test_breast_import_from_the_command_line(breast_dir, tmp_path):
    assert main(["-q", "cohort", "import", "breast-lesions-usg", str(breast_dir), "-o", str(tmp_path / "m.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "m.csv")) == 252


def test_errors_are_one_line_with_exit_status_2_and_leave_files_untouched(tmp_path, capsys):
    pd.DataFrame(dict(case_id=["a", "b", "c"], image="x.png", mask="x_mask.png", label=[0, 0, 1])).to_csv(tmp_path / "m.csv", index=False)
    before = (tmp_path / "m.csv").read_bytes()
    assert main(["cohort", "split", str(tmp_path / "m.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("srnomogram: error: ") and err.count("\n") == 1
    assert "m.csv: the split leaves class label=0 empty in the test set (2 case(s)" in err
    assert (tmp_path / "m.csv").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.csv"]
    assert main(["cohort", "validate", str(tmp_path / "m.csv")]) == 2
    assert "m.csv, row 2, column 'image': file" in capsys.readouterr().err
