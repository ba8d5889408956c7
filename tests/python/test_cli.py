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
    for cmd in ("import", "combine", "split", "demo", "validate"):
        assert cmd in out
    with pytest.raises(SystemExit):
        main(["cohort", "import", "--help"])
    out = capsys.readouterr().out
    assert "breast-lesions-usg" in out and "bus-bra" in out and "folder" in out


def test_module_entry_point_runs(tmp_path):
    res = subprocess.run([sys.executable, "-m", "srnomogram", "cohort", "split", "--help"], capture_output=True, encoding="utf-8", timeout=120)
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


# ------------------------------------------------------------------------------------ bad outputs and inputs
@pytest.fixture()
def tiny(tmp_path):
    """Two 2D lesions, a manifest, an existing folder and an existing file."""
    for k in range(2):
        Image.fromarray(np.full((8, 8), 90 + k, np.uint8)).save(tmp_path / f"c{k}.png")
        Image.fromarray(np.pad(np.full((4, 4), 255, np.uint8), 2)).save(tmp_path / f"c{k}_mask.png")
    pd.DataFrame(dict(case_id=["c0", "c1"], image=["c0.png", "c1.png"], mask=["c0_mask.png", "c1_mask.png"], label=[0, 1],
                      spacing=0.1, age=[40, 50], max_diameter_cm=[1.0, 2.0])).to_csv(tmp_path / "m.csv", index=False)
    (tmp_path / "folder").mkdir()
    (tmp_path / "file.txt").write_text("keep me\n")
    (tmp_path / "study").mkdir()  # stands for a study folder: outputs are checked before the study is read
    (tmp_path / "study.yaml").write_text(f"cohort:\n  manifest: {tmp_path / 'm.csv'}\n")
    return tmp_path


FOLDER = r"names {t}/folder, an existing folder; give a file path"
FILE = r"names {t}/file.txt, an existing file; give a folder path"
SAME = r"names {t}/m.csv, the input MANIFEST itself; write to another file"
IN_STUDY = r"which is inside the study folder STUDY_DIR {t}/study; choose a folder outside it"

BAD_OUTPUTS = [
    (["run", "{t}/study.yaml", "-o", "{t}/file.txt"], "'-o/--output'", FILE),
    (["demo", "-o", "{t}/file.txt"], "'-o/--output'", FILE),
    (["validate", "{t}/study", "{t}/m.csv", "-o", "{t}/file.txt"], "'-o/--output'", FILE),
    (["validate", "{t}/study", "{t}/m.csv", "-o", "{t}/study"], "'-o/--output'", IN_STUDY),
    (["validate", "{t}/study", "{t}/m.csv", "-o", "{t}/study/external"], "'-o/--output'", IN_STUDY),
    (["predict", "{t}/study", "{t}/m.csv", "-o", "{t}/folder"], "'-o/--output'", FOLDER),
    (["predict", "{t}/study", "{t}/m.csv", "-o", "{t}/m.csv"], "'-o/--output'", SAME),
    (["predict", "{t}/study", "{t}/m.csv", "-o", "{t}/s.csv", "--work-dir", "{t}/file.txt"], "'--work-dir'", FILE),
    (["predict", "{t}/study", "{t}/m.csv", "-o", "{t}/s.csv", "--work-dir", "{t}/study/w"], "'--work-dir'", IN_STUDY),
    (["radiomics", "extract", "{t}/m.csv", "-o", "{t}/folder"], "'-o/--output'", FOLDER),
    (["radiomics", "extract", "{t}/m.csv", "-o", "{t}/m.csv"], "'-o/--output'", SAME),
    (["radiomics", "extract", "{t}/m.csv", "-o", "{t}/f.csv", "--cache-dir", "{t}/file.txt"], "'--cache-dir'", FILE),
    (["sr", "apply", "{t}/m.csv", "--model", "{t}/no_model", "--manifest-out", "{t}/folder"], "'--manifest-out'", FOLDER),
    (["sr", "apply", "{t}/m.csv", "--model", "{t}/no_model", "--out-dir", "{t}/file.txt"], "'--out-dir'", FILE),
    (["deep", "predict", "{t}/no_model", "{t}/m.csv", "-o", "{t}/m.csv"], "'-o/--output'", SAME),
    (["deep", "predict", "{t}/no_model", "{t}/m.csv", "-o", "{t}/folder"], "'-o/--output'", FOLDER),
    (["cohort", "split", "{t}/m.csv", "-o", "{t}/folder"], "'-o/--output'", FOLDER),
    # the other commands' outputs, for the same reasons
    (["cohort", "import", "folder", "{t}", "-o", "{t}/folder"], "'-o/--output'", FOLDER),
    (["cohort", "demo", "{t}/file.txt"], "'OUT'", FILE),
    (["radiomics", "fit", "{t}/m.csv", "--features", "{t}/f.csv", "-o", "{t}/file.txt"], "'-o/--output'", FILE),
    (["sr", "train", "{t}/m.csv", "--out", "{t}/file.txt"], "'--out'", FILE),
    (["sr", "quality", "{t}/m.csv", "--model", "{t}/no_model", "--out", "{t}/m.csv"], "'--out'", SAME),
    (["deep", "train", "{t}/m.csv", "--out", "{t}/file.txt"], "'--out'", FILE),
    (["deep", "gradcam", "{t}/no_model", "{t}/m.csv", "--out", "{t}/file.txt"], "'--out'", FILE),
]


@pytest.mark.parametrize("argv, option, message", BAD_OUTPUTS, ids=[" ".join(a[:2]) + " " + o for a, o, _ in BAD_OUTPUTS])
def test_a_bad_output_path_is_refused_in_one_line_before_any_work(tiny, capsys, monkeypatch, argv, option, message):
    """An existing folder where a file goes, a file where a folder goes, the input manifest, or the study itself."""
    import re

    from srnomogram.radiomics import extraction

    monkeypatch.setattr(extraction, "extract", lambda *a, **k: pytest.fail("features extracted before the output was checked"))
    before = {p: p.read_bytes() for p in tiny.rglob("*") if p.is_file()}
    assert main([a.format(t=tiny) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"srnomogram: error: The {option} option ")
    assert re.search(message.format(t=re.escape(str(tiny))), err), err
    assert {p: p.read_bytes() for p in tiny.rglob("*") if p.is_file()} == before  # nothing written, no input changed


EMPTY_OUTPUTS = [
    (["run", "{t}/study.yaml", "-o", ""], "'-o/--output'", "folder"),
    (["demo", "-o", ""], "'-o/--output'", "folder"),
    (["validate", "{t}/study", "{t}/m.csv", "-o", ""], "'-o/--output'", "folder"),
    (["validate", "{t}/study", "{t}/m.csv", "-o", "  "], "'-o/--output'", "folder"),
    (["predict", "{t}/study", "{t}/m.csv", "-o", ""], "'-o/--output'", "file"),
    (["predict", "{t}/study", "{t}/m.csv", "-o", "{t}/s.csv", "--work-dir", ""], "'--work-dir'", "folder"),
]


@pytest.mark.parametrize("argv, option, what", EMPTY_OUTPUTS, ids=[" ".join(a[:1]) + f" {o} {a[-1]!r}" for a, o, _ in EMPTY_OUTPUTS])
def test_an_empty_output_path_is_refused_not_taken_for_the_current_folder(tiny, capsys, monkeypatch, argv, option, what):
    cwd = tiny / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    before = {p: p.read_bytes() for p in tiny.rglob("*") if p.is_file()}
    assert main([a.format(t=tiny) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err == f"srnomogram: error: The {option} option is empty; give a {what} path (an empty one would write into the current folder).\n"
    assert {p: p.read_bytes() for p in tiny.rglob("*") if p.is_file()} == before and not any(cwd.iterdir())
    assert not (tiny / "s_work").exists()


def test_a_decompression_bomb_is_one_line_in_cohort_validate_and_radiomics_extract(tiny, capsys, monkeypatch):
    from srnomogram.data.readers import MAX_PIXELS_ENV

    from .data.test_readers import _png_header

    monkeypatch.delenv(MAX_PIXELS_ENV, raising=False)
    _png_header(tiny / "c1.png", 30000, 30000)
    for argv in (["cohort", "validate", str(tiny / "m.csv")],
                 ["radiomics", "extract", str(tiny / "m.csv"), "-o", str(tiny / "f.csv"), "-j", "1"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "c1.png has 30000 x 30000 = 900000000 pixels, over the limit of 89478485 pixels" in err
        assert MAX_PIXELS_ENV in err
    assert not (tiny / "f.csv").exists()


def test_a_manifest_with_only_a_header_is_refused_by_every_cohort_command(tiny, capsys):
    pd.read_csv(tiny / "m.csv").iloc[:0].to_csv(tiny / "empty.csv", index=False)
    before = (tiny / "empty.csv").read_bytes()
    for argv in (["cohort", "validate"], ["cohort", "split"]):
        assert main([*argv, str(tiny / "empty.csv")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "empty.csv has no rows (only a header); a manifest needs one row per lesion" in err
    assert (tiny / "empty.csv").read_bytes() == before


def test_run_says_when_the_clinical_exclusions_leave_no_lesion(tiny, capsys):
    """Not 'The train set has only one class': the reason, the column and the remedy."""
    pd.read_csv(tiny / "m.csv").assign(age=np.nan).to_csv(tiny / "m.csv", index=False)
    assert main(["run", str(tiny / "study.yaml"), "-o", str(tiny / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert ("m.csv: 0 of 2 lesions are left after excluding those with a missing clinical value "
            "(cohort.clinical: 'age' empty in 2 rows); fill in the values or remove the factor from cohort.clinical.") in err


# ------------------------------------------------------------------- hostile inputs and a refusing file system (issue 28)
# a named pipe was waited on for ever, in C (SimpleITK) where a signal cannot stop it: the thread method ends the run
@pytest.mark.timeout(120, method="thread")
def test_a_named_pipe_folder_or_deep_params_file_is_one_line_in_every_cohort_and_radiomics_command(tiny, capsys):
    import os

    pd.read_csv(tiny / "m.csv").assign(image=["c0.png", "pipe.png"]).to_csv(tiny / "piped.csv", index=False)
    os.mkfifo(tiny / "pipe.png")
    (tiny / "params.yaml").write_text("setting: " + "[" * 95_000 + "]" * 95_000 + "\n")  # 190 kB
    cases = [
        (["cohort", "validate", "{t}/piped.csv"], "piped.csv, row 3, column 'image': {t}/pipe.png is a named pipe (FIFO), not a file."),
        (["radiomics", "extract", "{t}/piped.csv", "-o", "{t}/f.csv", "-j", "1"], "is a named pipe (FIFO), not a file."),
        (["cohort", "validate", "{t}"], "Manifest {t} is a folder; give the CSV inside it (e.g. {t}/m.csv; it holds m.csv, piped.csv)."),
        (["radiomics", "extract", "{t}/m.csv", "-o", "{t}/f.csv", "--params", "{t}/params.yaml"],
         "PyRadiomics parameter file {t}/params.yaml nests values more than 64 levels deep (line 1)"),
    ]
    before = {p: p.read_bytes() for p in tiny.rglob("*") if p.is_file()}
    for argv, message in cases:
        assert main([a.format(t=tiny) for a in argv]) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("srnomogram: error: ") and err.count("\n") == 1 and message.format(t=tiny) in err, err
    assert {p: p.read_bytes() for p in tiny.rglob("*") if p.is_file()} == before


def test_a_file_name_too_long_is_one_line_naming_it_with_exit_status_1(tiny, capsys):
    """ENAMETOOLONG fails for root too (permission bits do not); it escaped as a traceback."""
    long = tiny / ("x" * 300 + ".csv")
    before = (tiny / "m.csv").read_bytes()
    for argv in (["cohort", "split", str(tiny / "m.csv"), "-o", str(long)],
                 ["cohort", "import", "folder", str(tiny), "-o", str(tiny / ("y" * 300) / "m.csv")]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("srnomogram: error: ")
        assert err.endswith(": File name too long; choose a shorter name.\n") and ("x" * 300 in err or "y" * 300 in err)
    assert (tiny / "m.csv").read_bytes() == before


def test_a_full_disk_is_one_line_naming_the_file_and_leaves_the_old_file_whole(tiny, capsys, monkeypatch):
    """ENOSPC half-way through writing: the error names the output (write() names no file), exit status 1,
    and the output keeps its old bytes with no temporary file left beside it."""
    import errno

    six = pd.concat([pd.read_csv(tiny / "m.csv")] * 3, ignore_index=True)
    six.assign(case_id=[f"c{i}" for i in range(6)]).to_csv(tiny / "m.csv", index=False)
    out = tiny / "split.csv"
    out.write_text("the old split\n")

    def full_disk(self, path, *args, **kwargs):
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("case_id,ima")  # half a file
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", full_disk)
    assert main(["cohort", "split", str(tiny / "m.csv"), "-o", str(out), "--test-size", "0.5"]) == 1
    err = capsys.readouterr().err
    assert err == (f"srnomogram: error: {out}: No space left on device; free some space (or choose another output folder) "
                   "and rerun; finished steps are kept.\n")
    assert out.read_text() == "the old split\n"
    assert sorted(p.name for p in tiny.iterdir() if p.name.startswith(".")) == []


def test_ctrl_c_still_exits_130(tiny, capsys, monkeypatch):
    from srnomogram.data import split as split_module

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(split_module, "stratified_split", interrupted)
    assert main(["cohort", "split", str(tiny / "m.csv")]) == 130
    assert "interrupted; finished steps are kept" in capsys.readouterr().err
