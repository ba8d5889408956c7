"""Output folders belong to the command that made them (``OUT/.srnomogram.json``): a command refuses another's.

Fast: the folders here are built by hand (a marker, or the files an old srnomogram left); the external tests
(``test_external.py``, slow) aim ``validate`` and ``predict`` at a trained study's folder.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from srnomogram.cli import main
from srnomogram.errors import OutputOwnerError
from srnomogram.study.folders import MARKER, Owner, claim_output, folder_owner

RUN = Owner("study", "run")
VALIDATE_A = Owner("validate", "validate", study="/studies/a", study_key="key-a")
VALIDATE_B = Owner("validate", "validate", study="/studies/b", study_key="key-b")
PREDICT_A = Owner("predict", "predict", study="/studies/a", study_key="key-a", option="--work-dir")


def snapshot(folder: Path) -> dict:
    """Every file and folder under ``folder`` with its bytes' SHA-256 (folders: None)."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None
            for p in sorted(folder.rglob("*"))}


def marked(folder: Path, owner: Owner) -> Path:
    """A folder that ``owner`` claimed once, with a stage of its own in it."""
    with claim_output(folder, owner):
        (folder / "stages" / "split").mkdir(parents=True)
        (folder / "stages" / "split" / "done.json").write_text('{"key": "k", "files": {}}')
    return folder


def legacy_study(folder: Path) -> Path:
    """What 'srnomogram run' left before markers: resolved_config.yaml, stages/, board/, a report."""
    (folder / "stages" / "deep_or_mobilenet_v2" / "model").mkdir(parents=True)
    (folder / "stages" / "deep_or_mobilenet_v2" / "model" / "model.pt").write_bytes(b"\x80weights")
    (folder / "board").mkdir()
    (folder / "resolved_config.yaml").write_text("study: {name: old}\n")
    (folder / "report.html").write_text("<html>the study's report</html>")
    return folder


def test_a_new_or_empty_folder_is_claimed_with_a_marker_naming_kind_command_and_study(tmp_path):
    from srnomogram import __version__

    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".srnomogram.lock").write_text("")  # an earlier refused or killed command's
    for name in ("new", "empty"):
        with claim_output(tmp_path / name, VALIDATE_A) as folder:
            assert folder == (tmp_path / name).resolve()
        rec = json.loads((tmp_path / name / MARKER).read_text(encoding="utf-8"))
        assert {k: rec[k] for k in ("kind", "command", "study", "study_key", "srnomogram")} == {
            "kind": "validate", "command": "validate", "study": "/studies/a", "study_key": "key-a", "srnomogram": __version__}
        assert rec["created"].endswith("Z")


def test_each_command_resumes_its_own_folder_and_keeps_its_marker(tmp_path):
    for owner, again in ((RUN, Owner("study", "demo")), (VALIDATE_A, Owner("validate", "validate", study="/moved/a", study_key="key-a")),
                         (PREDICT_A, PREDICT_A)):
        folder = marked(tmp_path / owner.kind, owner)
        before = (folder / MARKER).read_bytes()
        with claim_output(folder, again):  # run after demo; the same study moved (same key); predict again
            pass
        assert (folder / MARKER).read_bytes() == before


@pytest.mark.parametrize("kind, owner, says", [
    ("study", VALIDATE_A, "is a study folder, written by 'srnomogram run' at 20"),
    ("study", PREDICT_A, "is a study folder, written by 'srnomogram run' at 20"),
    ("validate", RUN, "is an external validation folder of the study /studies/a, written by 'srnomogram validate' at "),
    ("validate", VALIDATE_B, "is an external validation folder of the study /studies/a, written by 'srnomogram validate' at "),
    ("validate", PREDICT_A, "is an external validation folder of the study /studies/a"),
    ("predict", VALIDATE_A, "is a prediction work folder of the study /studies/a, written by 'srnomogram predict' at "),
    ("predict", Owner("predict", "predict", study="/studies/b", study_key="key-b"), "is a prediction work folder of the study /studies/a"),
])
def test_a_folder_of_another_kind_or_study_is_refused_in_one_line_and_left_byte_identical(tmp_path, kind, owner, says):
    first = {"study": RUN, "validate": VALIDATE_A, "predict": PREDICT_A}[kind]
    folder = marked(tmp_path / "out", first)
    before = snapshot(folder)
    with pytest.raises(OutputOwnerError, match=r"choose a new or empty folder for") as e:
        with claim_output(folder, owner):
            pytest.fail("wrote into a folder of another command")
    msg = str(e.value)
    assert "\n" not in msg and f"Output folder {folder.resolve()} " in msg and says in msg
    if owner.kind == kind:  # the same kind, another study
        assert f", not of the study {owner.study} applied now: " in msg
    else:
        assert f"; 'srnomogram {owner.command}' does not write into it: " in msg
    assert snapshot(folder) == before


def test_a_non_empty_folder_srnomogram_did_not_write_is_refused_for_every_command(tmp_path):
    folder = tmp_path / "thesis"
    folder.mkdir()
    (folder / "chapter1.tex").write_text("keep me")
    (folder / "figures").mkdir()
    before = snapshot(folder)
    for owner in (RUN, VALIDATE_A, PREDICT_A):
        with pytest.raises(OutputOwnerError, match=rf"Output folder {folder} is not empty and srnomogram did not write it"):
            with claim_output(folder, owner):
                pass
    (folder / MARKER).write_text("{not json")
    before = snapshot(folder)
    with pytest.raises(OutputOwnerError, match="unreadable owner marker"):
        with claim_output(folder, RUN):
            pass
    assert snapshot(folder) == before


def test_a_study_folder_of_before_markers_is_resumed_by_run_and_refused_by_validate_and_predict(tmp_path):
    old = legacy_study(tmp_path / "old_study")
    before = snapshot(old)
    for owner in (VALIDATE_A, PREDICT_A):
        with pytest.raises(OutputOwnerError, match="is a study folder"):
            with claim_output(old, owner):
                pass
    assert snapshot(old) == before
    assert folder_owner(old)["legacy"] is True
    with claim_output(old, RUN):  # adopted: the marker is written once, the rest kept
        pass
    assert json.loads((old / MARKER).read_text())["kind"] == "study"
    assert {k: v for k, v in snapshot(old).items() if k not in (MARKER, ".srnomogram.lock")} == before


def test_an_old_prediction_work_folder_is_resumed_by_predict_only(tmp_path):
    work = tmp_path / "scores_work"
    (work / "stages" / "nomogram").mkdir(parents=True)
    (work / "cache").mkdir()
    assert folder_owner(work)["kind"] == "predict"
    with pytest.raises(OutputOwnerError, match="is a prediction work folder"):
        with claim_output(work, RUN):
            pass
    with claim_output(work, PREDICT_A):
        pass
    assert json.loads((work / MARKER).read_text())["study_key"] == "key-a"


def _fake_prepare(study, manifest, out, need_label, opts):
    return SimpleNamespace(out=Path(out).resolve(), options=dict(opts), study=SimpleNamespace(path=Path(study).resolve(), key="k"))


@pytest.mark.parametrize("legacy", [False, True], ids=["marked", "before markers"])
def test_validate_and_predict_aimed_at_another_study_leave_it_byte_identical(tmp_path, monkeypatch, capsys, legacy):
    """The study applied is 'a'; the folder given to -o / --work-dir is another study 'b' (with a trained CNN)."""
    from srnomogram.study import external

    monkeypatch.setattr(external, "_prepare", _fake_prepare)
    monkeypatch.setattr(external, "_run_stages", lambda *a, **k: pytest.fail("ran stages into another study's folder"))
    other = legacy_study(tmp_path / "b")
    if not legacy:
        marked(other, RUN)
    before = snapshot(other)
    for argv in (["validate", str(tmp_path / "a"), "m.csv", "-o", str(other)],
                 ["predict", str(tmp_path / "a"), "m.csv", "-o", str(tmp_path / "s.csv"), "--work-dir", str(other)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        when = "(before owner markers)" if legacy else "at 20"
        assert err.count("\n") == 1 and f"Output folder {other} is a study folder, written by 'srnomogram run' {when}" in err, err
        assert "choose a new or empty folder for " + ("-o/--output" if argv[0] == "validate" else "--work-dir") in err
    assert snapshot(other) == before
    assert not (tmp_path / "s.csv").exists()


def test_run_and_demo_refuse_a_validation_folder_and_a_folder_of_other_files(tmp_path, monkeypatch):
    from srnomogram.study import load_config, run_study
    from srnomogram.study.demo import run_demo

    ext = marked(tmp_path / "ext", VALIDATE_A)
    (tmp_path / "m.csv").write_text("case_id,image,mask,label\n")
    (tmp_path / "study.yaml").write_text(f"cohort: {{manifest: {tmp_path / 'm.csv'}}}\nstudy: {{output: {ext}}}\n")
    before = snapshot(ext)
    with pytest.raises(OutputOwnerError, match="is an external validation folder .* 'srnomogram run' does not write into it"):
        run_study(load_config(tmp_path / "study.yaml"))
    assert snapshot(ext) == before
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "notes.txt").write_text("keep me")
    with pytest.raises(OutputOwnerError, match="is not empty and srnomogram did not write it"):
        run_demo(docs, n=4)
    assert sorted(p.name for p in docs.iterdir()) == ["notes.txt"]
