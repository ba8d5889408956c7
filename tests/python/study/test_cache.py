"""Stage runner: content-hash cache, corruption detection, --force, kill-then-rerun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

from srnomogram.errors import ConfigError
from srnomogram.study.cache import DONE, Runner, Stage
from srnomogram.study.config import config_from_dict

CALLS: list = []


def _draw(ctx):
    CALLS.append("draw")
    rng = np.random.default_rng(ctx.config.study.seed)
    ctx.write_table("draws", pd.DataFrame({"x": rng.normal(size=20)}))


def _summary(ctx):
    CALLS.append("summary")
    x = ctx.inputs["draw"].table("draws")["x"]
    ctx.write_table("summary", pd.DataFrame({"mean": [x.mean()], "sd": [x.std()]}))


def _stages():
    return [
        Stage("draw", _draw, sections=("study",)),
        Stage("summary", _summary, deps=("draw",), sections=("nomogram",)),
    ]


def _cfg(tmp_path, **study):
    return config_from_dict({"cohort": {"manifest": "m.csv"}, "study": {"output": str(tmp_path), **study}})


def test_second_run_reuses_every_stage_and_gives_the_same_tables(tmp_path):
    CALLS.clear()
    r1 = Runner(_cfg(tmp_path), _stages()).run()
    first = r1["summary"].table("summary")
    r2 = Runner(_cfg(tmp_path), _stages()).run()
    assert CALLS == ["draw", "summary"]  # nothing recomputed
    pd.testing.assert_frame_equal(r2["summary"].table("summary"), first)
    draws = r2["draw"].table("draws")["x"]
    assert first["mean"][0] == pytest.approx(np.random.default_rng(0).normal(size=20).mean(), abs=1e-12)
    assert first["sd"][0] == pytest.approx(draws.std(), abs=1e-12)


def test_changing_a_setting_recomputes_only_the_stages_that_read_it(tmp_path):
    CALLS.clear()
    Runner(_cfg(tmp_path), _stages()).run()
    cfg = config_from_dict(
        {"cohort": {"manifest": "m.csv"}, "study": {"output": str(tmp_path)}, "nomogram": {"calibration_b": 5}}
    )
    Runner(cfg, _stages()).run()
    assert CALLS == ["draw", "summary", "summary"]
    Runner(_cfg(tmp_path, seed=1), _stages()).run()  # upstream change: both again
    assert CALLS[-2:] == ["draw", "summary"]


def test_corrupted_output_or_marker_is_detected_and_recomputed(tmp_path):
    CALLS.clear()
    Runner(_cfg(tmp_path), _stages()).run()
    good = (tmp_path / "stages" / "draw" / "draws.csv").read_text(encoding="utf-8")
    (tmp_path / "stages" / "draw" / "draws.csv").write_text("x\n1\n")  # corrupted output
    Runner(_cfg(tmp_path), _stages()).run()
    assert CALLS[2:] == ["draw"]  # summary's input content is unchanged, so it is reused
    assert (tmp_path / "stages" / "draw" / "draws.csv").read_text(encoding="utf-8") == good
    (tmp_path / "stages" / "summary" / DONE).write_text("{not json")  # corrupted marker
    Runner(_cfg(tmp_path), _stages()).run()
    assert CALLS[3:] == ["summary"]
    (tmp_path / "stages" / "summary" / "summary.csv").unlink()  # missing output
    Runner(_cfg(tmp_path), _stages()).run()
    assert CALLS[4:] == ["summary"]


def test_force_reruns_one_stage_and_rejects_unknown_names(tmp_path):
    CALLS.clear()
    Runner(_cfg(tmp_path), _stages()).run()
    Runner(_cfg(tmp_path), _stages(), force=["draw"]).run()
    assert CALLS == ["draw", "summary", "draw"]  # same draws, so summary is reused
    with pytest.raises(ConfigError, match="unknown stage 'drawing'; stages are: draw, summary"):
        Runner(_cfg(tmp_path), _stages(), force=["drawing"])


def test_a_failing_stage_leaves_no_partial_output(tmp_path):
    def boom(ctx):
        ctx.write_table("half", pd.DataFrame({"a": [1]}))
        raise RuntimeError("stopped")

    with pytest.raises(RuntimeError):
        Runner(_cfg(tmp_path), [Stage("boom", boom)]).run()
    assert not (tmp_path / "stages" / "boom").exists()
    assert not list((tmp_path / "stages").glob(".boom*"))


SCRIPT = textwrap.dedent(
    """
    import sys, time, pathlib
    import numpy as np, pandas as pd
    from srnomogram.study.cache import Runner, Stage
    from srnomogram.study.config import config_from_dict

    out, signal_file = sys.argv[1], sys.argv[2]

    def draw(ctx):
        rng = np.random.default_rng(ctx.config.study.seed)
        ctx.write_table("draws", pd.DataFrame({"x": rng.normal(size=50)}))

    def slow(ctx):
        x = ctx.inputs["draw"].table("draws")["x"]
        ctx.write_table("partial", pd.DataFrame({"x2": x ** 2}))
        if signal_file != "-" and not pathlib.Path(signal_file).exists():
            pathlib.Path(signal_file).write_text("in slow stage")
            time.sleep(60)  # killed here on the first run
        ctx.write_table("squares", pd.DataFrame({"x2": x ** 2}))

    def total(ctx):
        s = ctx.inputs["slow"].table("squares")["x2"].sum()
        ctx.write_table("total", pd.DataFrame({"sum": [s]}))

    cfg = config_from_dict({"cohort": {"manifest": "m.csv"}, "study": {"output": out, "seed": 3}})
    stages = [Stage("draw", draw, sections=("study",)), Stage("slow", slow, deps=("draw",)),
              Stage("total", total, deps=("slow",))]
    runner = Runner(cfg, stages)
    runner.run()
    print(sum(not e["reused"] for e in runner.log))
    """
)


def test_killed_then_rerun_study_equals_an_uninterrupted_one(tmp_path):
    script = tmp_path / "study.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([*sys.path]))
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    subprocess.run([sys.executable, str(script), str(straight), "-"], check=True, env=env, timeout=120)

    flag = tmp_path / "started"
    proc = subprocess.Popen([sys.executable, str(script), str(killed), str(flag)], env=env)
    deadline = time.time() + 60
    while not flag.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert flag.exists(), "the study never reached the slow stage"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert (killed / "stages" / "draw" / DONE).is_file()
    assert not (killed / "stages" / "slow").exists()  # nothing half-written in place

    rerun = subprocess.run(
        [sys.executable, str(script), str(killed), str(flag)], check=True, env=env, capture_output=True, encoding="utf-8"
    )
    assert rerun.stdout.strip() == "2"  # draw reused; slow and total computed
    for stage, table in (("draw", "draws"), ("slow", "squares"), ("total", "total")):
        a = pd.read_csv(straight / "stages" / stage / f"{table}.csv")
        b = pd.read_csv(killed / "stages" / stage / f"{table}.csv")
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    done = json.loads((killed / "stages" / "total" / DONE).read_text(encoding="utf-8"))
    assert done["key"] == json.loads((straight / "stages" / "total" / DONE).read_text(encoding="utf-8"))["key"]


def test_stage_folders_and_files_get_the_modes_the_umask_gives(tmp_path):
    """Not mkdtemp's 0700 / mkstemp's 0600: a study shared with a group (umask 027) stays readable by it."""
    import stat

    old = os.umask(0o027)
    try:
        res = Runner(_cfg(tmp_path), _stages()).run()
    finally:
        os.umask(old)
    folder = res["draw"].path
    assert stat.S_IMODE(folder.stat().st_mode) == 0o750
    assert stat.S_IMODE((folder / "draws.csv").stat().st_mode) == stat.S_IMODE((folder / DONE).stat().st_mode) == 0o640
