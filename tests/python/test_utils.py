"""Shared helpers: atomic writes honour the umask and fsync before the rename; safe, collision-free file names."""

from __future__ import annotations

import os
import stat

import pandas as pd
import pytest

from srnomogram import utils
from srnomogram.utils import atomic_path, safe_name, safe_names, write_csv_atomic


@pytest.fixture()
def umask():
    """Set a umask for one test and restore the caller's afterwards."""
    old = os.umask(0o022)
    os.umask(old)
    yield lambda m: os.umask(m)
    os.umask(old)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_atomic_writes_get_the_mode_the_umask_gives_a_new_file(tmp_path, umask, mask, mode):
    umask(mask)
    assert utils.current_umask() == mask
    write_csv_atomic(pd.DataFrame({"a": [1]}), tmp_path / "t.csv")
    with atomic_path(tmp_path / "sub" / "x.bin") as tmp:
        tmp.write_bytes(b"x")
    plain = tmp_path / "plain.txt"
    plain.write_text("x")  # what open() gives: the reference
    for p in (tmp_path / "t.csv", tmp_path / "sub" / "x.bin"):
        assert stat.S_IMODE(p.stat().st_mode) == mode == stat.S_IMODE(plain.stat().st_mode)


def test_atomic_write_fsyncs_the_file_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}") if os.path.exists(f"/proc/self/fd/{fd}") else fd))
        real_fsync(fd)

    def replace(a, b):
        events.append(("replace", str(a), str(b)))
        real_replace(a, b)

    monkeypatch.setattr(utils.os, "fsync", fsync)
    monkeypatch.setattr(utils.os, "replace", replace)
    dst = tmp_path / "out.txt"
    with atomic_path(dst) as tmp:
        tmp.write_text("complete")
    kinds = [e[0] for e in events]
    assert kinds == ["fsync", "replace", "fsync"]
    _, src, target = events[1]
    assert target == str(dst) and events[0][1] == src  # the temporary file itself was flushed before it took the name
    assert events[2][1] == str(tmp_path)  # then the folder, so the rename itself is on disk
    assert dst.read_text(encoding="utf-8") == "complete"


def test_a_failed_atomic_write_leaves_the_old_file_and_no_temporary(tmp_path):
    dst = tmp_path / "keep.txt"
    dst.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(dst) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert dst.read_text(encoding="utf-8") == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


@pytest.mark.parametrize("cid", ["case001", "benign_12", "P-7.2", "Case.A"])
def test_plain_case_ids_are_their_own_file_names(cid):
    assert safe_name(cid) == cid


@pytest.mark.parametrize(
    "cid",
    ["../../etc/passwd", "a/b", "a\\b", "..", ".", ".hidden", "x.", "a\x00b", "CON", "nul.txt", "com1", "LPT9.png",
     " a", "é", "lésion 1", "", "a" * 101, "a:b", "~x"],
)
def test_unsafe_case_ids_map_to_a_hashed_name_inside_the_folder(tmp_path, cid):
    name = safe_name(cid)
    assert "~" in name and len(name) <= 77
    assert set(name) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-~")
    assert (tmp_path / name).resolve().parent == tmp_path.resolve()
    (tmp_path / name).write_text("x")  # a valid file name here


def test_safe_names_never_collide(tmp_path):
    ids = ["a/b", "a_b", "a\\b", "a b", "a~b", "A1", "a1", "CON", "con", "..", "._", "x" * 200, "x" * 201]
    names = safe_names(ids)
    assert len({n.casefold() for n in names}) == len(ids)  # distinct even on a case-insensitive file system
    assert names[1] == "a_b"  # a plain id keeps its name; "a/b" does not take it
    assert safe_names(["A1", "b"]) == ["A1", "b"]  # case-mapping only when two ids fold together


def test_a_second_writer_of_an_output_folder_is_refused_in_one_line_naming_the_holder(tmp_path, lock_holder):
    import json
    import socket

    from srnomogram.errors import OutputInUseError

    out = tmp_path / "study_output"
    with lock_holder(out) as holder:
        record = json.loads((out / utils.LOCK_NAME).read_text(encoding="utf-8"))
        assert record["pid"] == holder.pid and record["host"] == socket.gethostname() and record["what"] == "run"
        with pytest.raises(OutputInUseError) as info:
            with utils.output_lock(out, "run"):
                pytest.fail("entered a folder another process holds")
        msg = str(info.value)
        assert "\n" not in msg and msg.startswith(f"Output folder {out} is in use by pid {holder.pid} on ")
        assert "another output folder" in msg
        with utils.output_lock(tmp_path / "elsewhere"):  # other folders are free
            pass
    # the holder was killed (SIGKILL): its lock went with it, the file left behind blocks nothing
    assert (out / utils.LOCK_NAME).exists()
    with utils.output_lock(out, "run") as path:
        assert json.loads(path.read_text(encoding="utf-8"))["pid"] == os.getpid()
        with utils.output_lock(out, "demo"):  # re-entrant within one process (the demo runs the study)
            pass
    assert path.read_text(encoding="utf-8") == ""  # released


def test_excerpt_is_short_and_quick_whatever_the_value():
    import time

    x = ["lol"] * 10
    for _ in range(9):  # 10**10 strings through shared references, as YAML aliases build them
        x = [x] * 10
    t = time.perf_counter()
    text = utils.excerpt(x)
    assert time.perf_counter() - t < 0.1 and len(text) <= 80 and text.startswith("[[[")
    assert len(utils.excerpt("x" * 10_000)) == 80
    # short values are their plain repr (a dict keeps its order)
    assert utils.excerpt("ten") == "'ten'" and utils.excerpt({"b": 1, "a": 2}) == "{'b': 1, 'a': 2}"
    assert utils.excerpt(1.5) == "1.5" and utils.excerpt([0.0, 0.99, 0.01]) == "[0.0, 0.99, 0.01]"


def test_an_output_file_must_not_be_a_folder_an_input_or_under_a_file(tmp_path):
    from srnomogram.errors import InputError
    from srnomogram.utils import check_output_file

    (tmp_path / "folder").mkdir()
    (tmp_path / "m.csv").write_text("x\n")
    with pytest.raises(InputError, match=r"^The '-o/--output' option names .*folder, an existing folder; give a file path \(e\.g\. .*folder/scores\.csv\)\.$"):
        check_output_file(tmp_path / "folder", "-o/--output", example="scores.csv")
    with pytest.raises(InputError, match=r"^The '-o' option names .*m\.csv/out\.csv, but .*m\.csv is a file, not a folder"):
        check_output_file(tmp_path / "m.csv" / "out.csv", "-o")
    # the input itself, also spelt another way or through a link: refused, the input is kept
    (tmp_path / "link.csv").symlink_to(tmp_path / "m.csv")
    for same in (tmp_path / "m.csv", tmp_path / "folder" / ".." / "m.csv", tmp_path / "link.csv"):
        with pytest.raises(InputError, match=r"^The '-o/--output' option names .*, the input MANIFEST itself; write to another file, so that the input is kept\.$"):
            check_output_file(same, "-o/--output", inputs={"MANIFEST": tmp_path / "m.csv"})
    assert (tmp_path / "m.csv").read_text(encoding="utf-8") == "x\n"
    # an existing file that is no input is replaced (atomically, later); a new file in new folders is fine
    assert check_output_file(tmp_path / "other.csv", "-o", inputs={"MANIFEST": tmp_path / "m.csv"}) == tmp_path / "other.csv"
    assert check_output_file(tmp_path / "new" / "deeper" / "s.csv", "-o") == tmp_path / "new" / "deeper" / "s.csv"
    assert not (tmp_path / "new").exists()  # a check writes nothing


def test_an_output_folder_must_not_be_a_file_nor_inside_a_protected_folder(tmp_path):
    from srnomogram.errors import InputError
    from srnomogram.utils import check_output_dir

    (tmp_path / "f.txt").write_text("x")
    (tmp_path / "study").mkdir()
    with pytest.raises(InputError, match=r"^The '--cache-dir' option names .*f\.txt, an existing file; give a folder path\.$"):
        check_output_dir(tmp_path / "f.txt", "--cache-dir")
    with pytest.raises(InputError, match=r"but .*f\.txt is a file, not a folder"):
        check_output_dir(tmp_path / "f.txt" / "sub", "--cache-dir")
    for inside in (tmp_path / "study", tmp_path / "study" / "ext", tmp_path / "x" / ".." / "study"):
        with pytest.raises(InputError, match=r"^The '-o/--output' option names .*, which is inside the study folder STUDY_DIR .*study; "
                                             r"choose a folder outside it, so that its own files are kept\.$"):
            check_output_dir(inside, "-o/--output", outside={"the study folder STUDY_DIR": tmp_path / "study"})
    assert check_output_dir(tmp_path / "ext", "-o/--output", outside={"the study folder STUDY_DIR": tmp_path / "study"}) == tmp_path / "ext"
    assert check_output_dir(tmp_path / "study", "-o") == tmp_path / "study"  # an existing folder is fine (resume)
