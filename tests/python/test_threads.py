"""srnomogram._threads: one thread count for PyTorch, OpenMP/BLAS and joblib workers."""

from __future__ import annotations

import os
import sys

import pytest
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from srnomogram import _threads, parallel
from srnomogram.cli import build_parser, main
from srnomogram.errors import InputError


@pytest.fixture
def restore_threads(monkeypatch):
    """set_threads is process-wide: put torch, the BLAS/OpenMP pools and the variables back afterwards."""
    torch_threads, pools = torch.get_num_threads(), threadpool_info()
    for var in (*_threads._LIBRARY_ENV, _threads.THREADS_ENV, "OMP_WAIT_POLICY"):
        monkeypatch.setenv(var, "0")  # registers the original value (or its absence) for undo
        monkeypatch.delenv(var)
    for name, value in (("_current", None), ("_auto_cores", None), ("_probe", None), ("_written", None)):
        monkeypatch.setattr(_threads, name, value)
    yield
    torch.set_num_threads(torch_threads)
    threadpool_limits(limits={p["prefix"]: p["num_threads"] for p in pools})


def test_the_count_comes_from_the_argument_then_the_variables_then_the_cores(restore_threads, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)  # a process pinned to one CPU
    assert _threads.available_cores() == 1 and _threads.resolve_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert _threads.resolve_threads() == 3
    monkeypatch.setenv(_threads.THREADS_ENV, "5")
    assert _threads.resolve_threads() == 5
    assert _threads.resolve_threads(2) == 2


@pytest.mark.parametrize("value", ["0", "abc", "-2"])
def test_a_bad_variable_is_a_one_line_error_naming_it(restore_threads, monkeypatch, value):
    monkeypatch.setenv(_threads.THREADS_ENV, value)
    with pytest.raises(InputError, match=rf"'threads' parameter of \$SRNOMOGRAM_THREADS must be an int >= 1\. Got '{value}' instead"):
        _threads.resolve_threads()


def test_set_threads_sets_torch_the_loaded_pools_the_variables_and_the_workers(restore_threads):
    assert _threads.set_threads(1) == 1
    assert torch.get_num_threads() == 1
    assert all(p["num_threads"] == 1 for p in threadpool_info())  # numpy's BLAS, torch's OpenMP, ...
    assert all(os.environ[v] == "1" for v in _threads._LIBRARY_ENV)  # what libraries loaded later read
    assert _threads.current_threads() == 1
    # local workers follow it: with one thread the tasks run in this process, not in 2 workers
    assert set(parallel.imap_unordered(os.getpid, [()] * 4)) == {os.getpid()}
    assert set(parallel.imap_unordered(os.getpid, [()] * 4, jobs=-1)) == {os.getpid()}


def test_passive_wait_is_asked_for_only_before_openmp_loads(restore_threads, monkeypatch):
    assert "torch" in sys.modules and not _threads.prefer_passive_wait()  # too late: kept as it was
    assert "OMP_WAIT_POLICY" not in os.environ
    monkeypatch.delitem(sys.modules, "torch")
    assert _threads.prefer_passive_wait() and os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # the user's own choice stays
    assert not _threads.prefer_passive_wait() and os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


COMPUTING = [["run", "s.yaml"], ["demo"], ["validate", "S", "m.csv", "-o", "o"], ["predict", "S", "m.csv", "-o", "o.csv"],
             ["sr", "train", "m.csv", "--out", "o"], ["sr", "apply", "m.csv", "--model", "M"],
             ["deep", "train", "m.csv", "--out", "o"], ["deep", "predict", "C", "m.csv", "-o", "o.csv"],
             ["radiomics", "extract", "m.csv", "-o", "o.csv"]]


@pytest.mark.parametrize("argv", COMPUTING, ids=lambda a: " ".join(a[:2]))
def test_every_computing_command_takes_threads(argv):
    parser = build_parser()
    assert parser.parse_args([*argv, "--threads", "3"]).threads == 3
    assert parser.parse_args(argv).threads is None


def test_the_command_line_sets_the_threads_before_the_command_runs(restore_threads, tmp_path):
    rc = main(["radiomics", "extract", str(tmp_path / "missing.csv"), "-o", str(tmp_path / "f.csv"), "--threads", "1"])
    assert rc == 2 and torch.get_num_threads() == 1 and _threads.current_threads() == 1


def test_run_passes_threads_to_the_study_setting():
    from srnomogram.study._cli import _cli_overrides

    args = build_parser().parse_args(["run", "s.yaml", "--threads", "2"])
    assert _cli_overrides(args) == ["study.threads=2"]


def test_threads_below_one_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["sr", "train", "m.csv", "--out", "o", "--threads", "0"])
    assert exc.value.code == 2 and "argument --threads: must be an integer >= 1, got '0'" in capsys.readouterr().err


def test_torch_interop_threads_are_tried_once_per_process(restore_threads, monkeypatch):
    """torch takes the inter-op count once, before any inter-op work: adapt_threads must not retry it."""
    calls = []

    def refuse(n):
        calls.append(n)
        raise RuntimeError("Error: cannot set number of interop threads after parallel work has started")

    monkeypatch.setattr(_threads, "_interop_tried", False, raising=False)
    monkeypatch.setattr(torch, "get_num_interop_threads", lambda: 7)
    monkeypatch.setattr(torch, "set_num_interop_threads", refuse)
    _threads._set_torch(2)
    _threads._set_torch(1)
    assert calls == [2] and torch.get_num_threads() == 1


# ---------------------------------------------------------------------------------------------- a shared box
@pytest.mark.parametrize("cores, others, expected", [
    (2, 0.0, 2), (2, 0.5, 2), (2, 0.8, 1), (2, 1.0, 1), (2, 2.0, 1), (2, 3.5, 1),
    (8, 0.0, 8), (8, 2.0, 6), (8, 2.7, 6), (8, 2.8, 5), (1, 0.0, 1), (1, 5.0, 1)])
def test_free_cores_leaves_the_cores_other_jobs_hold(cores, others, expected):
    assert _threads.free_cores(cores, others) == expected


def test_the_probe_counts_busy_time_minus_this_process_own(monkeypatch):
    clock = {"wall": 100.0, "busy": 50.0, "own": 3.0}
    monkeypatch.setattr(_threads._LoadProbe, "_now", lambda self: (clock["wall"], clock["busy"], clock["own"]))
    probe = _threads._LoadProbe()
    clock.update(wall=102.0, busy=54.0, own=4.0)  # 2 s: 4 CPU-s busy, of which 1 s ours
    assert probe.others() == pytest.approx(1.5)
    clock.update(wall=102.1)  # too soon to tell
    assert probe.others() is None
    clock.update(wall=103.0, busy=54.2, own=4.5)  # ours exceeds the busy delta within tick resolution: never < 0
    assert probe.others() == 0.0


@pytest.mark.skipif(not os.path.exists("/proc/stat") or not hasattr(os, "sched_getaffinity"), reason="Linux /proc/stat")
def test_the_probe_sees_a_busy_loop_on_this_process_cpus():
    import subprocess
    import time

    probe = _threads._LoadProbe()
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        probe.others()  # restart the interval once the loop runs
        time.sleep(1.0)
        others = probe.others()
    finally:
        busy.kill()
        busy.wait()
    # a scheduler that does not leave a CPU idle while the loop can run keeps at least one CPU busy
    # all the time, whatever else the machine runs; this process sleeps
    assert others is not None and others >= 0.75


def test_adapt_threads_follows_other_jobs_only_when_the_count_was_not_given(restore_threads, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(_threads, "available_cores", lambda: 2)
    others = {"v": 2.0}
    monkeypatch.setattr(_threads._LoadProbe, "others", lambda self, min_interval=0.25: others["v"])
    monkeypatch.setattr(_threads, "_next_look", 0.0)
    assert _threads.set_threads() == 2 and torch.get_num_threads() == 2
    assert _threads.adapt_threads() == 1 and torch.get_num_threads() == 1 and _threads.current_threads() == 1
    assert _threads.adapt_threads() is None  # not before ADAPT_EVERY seconds
    monkeypatch.setattr(_threads, "_next_look", 0.0)
    others["v"] = 0.1  # they left: back to the cores set_threads chose
    assert _threads.adapt_threads() == 2 and torch.get_num_threads() == 2
    # set_threads again (as run_study may): our own OMP_NUM_THREADS is no user choice
    assert _threads.set_threads() == 2 and _threads._auto_cores == 2
    # a count the user gave is kept, for runs that must repeat to the last bit
    monkeypatch.setattr(_threads, "_next_look", 0.0)
    others["v"] = 2.0
    assert _threads.set_threads(2) == 2 and _threads.adapt_threads() is None and torch.get_num_threads() == 2
    monkeypatch.setenv(_threads.THREADS_ENV, "2")
    assert _threads.set_threads() == 2 and _threads.adapt_threads() is None
