"""Wall time of a job alone and beside competing CPU-bound jobs, before and after the thread settings.

A shared box (a lab server, a cluster node) runs other jobs. PyTorch's OpenMP threads, one per core by
default, spin while they wait for each other; when another job holds a core, every parallel region waits
for a thread that is not running. The goal (issue 20): under two-way contention a job takes at most
about twice its idle wall time, not five times.

Jobs (the command line, in a fresh process each time, on a 40-lesion demo cohort):

* ``sr``: ``srnomogram sr train`` with the default generator (32 channels x 8 blocks, 64 px patches,
  batches of 16) for ``--sr-iterations`` iterations (default 40; the package default is 2000);
* ``cnn``: ``srnomogram deep train``, MobileNetV2 from scratch at 64 px for ``--cnn-epochs`` epochs;
* ``demo`` (with ``--demo``): ``srnomogram demo`` on ``--demo-n`` lesions (the whole study).

Settings, each timed alone (idle) and beside ``--competitors`` busy loops (one core each):

* ``before`` (the baseline): what srnomogram did until now: torch imported before the command runs, so
  OpenMP keeps its default (spinning) wait policy, and threads = every CPU of the machine;
* ``after``: the command line as it is now: ``OMP_WAIT_POLICY=PASSIVE`` set before torch loads,
  threads = the physical cores this process may use (``srnomogram._threads``);
* ``active`` (with ``--active``): the new thread count with ``OMP_WAIT_POLICY=ACTIVE``, OpenMP's
  worst case, to show what the wait policy alone does.

Printed: wall and CPU seconds, contended / idle per setting, and each setting's contended wall
against the baseline's. CPU seconds count the job's own work plus what its threads burn spinning:
the same work in more CPU seconds is time taken from the other jobs. Wall times include whatever else the machine runs: on a machine that is not
idle, "idle" means "without the added competitors".

    python benchmarks/bench_contention.py                       # sr + cnn: 8 timed runs, a few minutes idle
    python benchmarks/bench_contention.py --demo --demo-n 60    # the whole demo too
    python benchmarks/bench_contention.py --jobs sr --sr-iterations 100 --repeats 2

Measured (2-core AMD EPYC with AVX-512 BF16, already loaded by other jobs: load average 16-21 before
the two busy loops were added, so "idle" is not idle; to be rerun on an idle box), with
``--jobs sr,cnn --sr-iterations 10 --cnn-epochs 2``, stopped after the sr rows and the cnn baseline:

    job   setting   idle s  contended s  contended/idle  contended vs before  cpu s idle  cpu s contended
    sr    before      98.6        274.8           2.79x                1.00x        22.8             30.9
    sr    after       65.4        131.9           2.02x                0.48x        14.8             13.4
    cnn   before      89.3            -

and with one busy loop (``--competitors 1 --sr-iterations 3 --cnn-epochs 1``, load average 18):
sr 45.2 -> 91.3 s before (2.02x), 37.1 -> 52.1 s after (1.41x); cnn 64.7 -> 107.5 s before (1.66x),
26.8 -> 58.9 s after (2.19x), the cnn's CPU seconds 17.8 before and 7.4 after (the same work: the
difference is spinning).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Runs the command line after importing torch, as the CLI did before it set a wait policy.
BEFORE_LAUNCHER = "import sys, torch; from srnomogram.cli import main; sys.exit(main(sys.argv[1:]))"
BUSY = "while True: pass"


def _env(setting: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "SRNOMOGRAM_THREADS")}
    if setting == "before":
        env["SRNOMOGRAM_THREADS"] = str(os.cpu_count() or 1)
    elif setting == "active":
        env["OMP_WAIT_POLICY"] = "ACTIVE"
    elif setting == "one":
        env["SRNOMOGRAM_THREADS"] = "1"
    elif setting == "fixed":  # the thread count given: no adaptation to the other jobs
        env["SRNOMOGRAM_THREADS"] = str(_cores())
    elif setting == "spin":  # OpenMP's own default wait policy (spin a while, then sleep)
        env["OMP_WAIT_POLICY"] = ""
    env.setdefault("MPLBACKEND", "Agg")
    return env


def _cores() -> int:
    from srnomogram._threads import available_cores

    return available_cores()


def _command(setting: str, argv: list[str]) -> list[str]:
    if setting == "before":
        return [sys.executable, "-c", BEFORE_LAUNCHER, *argv]
    return [sys.executable, "-m", "srnomogram.cli", *argv]


def _timed(cmd, env, log: Path) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one command."""
    with open(log, "wb") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed (rc {proc.returncode}); see {log}")
    return wall, usage.ru_utime + usage.ru_stime


def _with_competitors(n: int, fn):
    busy = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(n)]
    try:
        time.sleep(0.5)  # let them take their cores
        return fn()
    finally:
        for p in busy:
            p.kill()
        for p in busy:
            p.wait()


def _jobs(args, work: Path) -> dict:
    from srnomogram.data.demo import demo_cohort
    from srnomogram.data.split import split_manifest

    manifest = demo_cohort(work / "cohort", n=40, n_volumes=0)
    split_manifest(manifest, test_size=0.25, seed=0)
    jobs = {
        "sr": lambda out: ["sr", "train", str(manifest), "--out", str(out), "--iterations", str(args.sr_iterations)],
        "cnn": lambda out: ["deep", "train", str(manifest), "--out", str(out), "--epochs", str(args.cnn_epochs), "--image-size", "64",
                            "--batch-size", "8", "--weights", "none", "--gradcam", "none"],
    }
    if args.demo:
        jobs["demo"] = lambda out: ["demo", "-o", str(out), "-n", str(args.demo_n)]
    return {k: v for k, v in jobs.items() if k in args.jobs or k == "demo"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", default="sr,cnn", help="comma-separated: sr, cnn (default both)")
    ap.add_argument("--demo", action="store_true", help="also time the whole demo")
    ap.add_argument("--demo-n", type=int, default=60, help="demo lesions (default 60)")
    ap.add_argument("--sr-iterations", type=int, default=40)
    ap.add_argument("--cnn-epochs", type=int, default=3)
    ap.add_argument("--competitors", type=int, default=2, help="busy loops beside the job (default 2)")
    ap.add_argument("--active", action="store_true", help="also time OMP_WAIT_POLICY=ACTIVE with the new thread count")
    ap.add_argument("--settings", default=None, help="comma-separated settings to time (default before,after[,active]); "
                    "'one' = one thread")
    ap.add_argument("--repeats", type=int, default=1, help="timings per cell; the median is printed")
    args = ap.parse_args()
    args.jobs = args.jobs.split(",")
    settings = args.settings.split(",") if args.settings else ["before", "after"] + (["active"] if args.active else [])

    import platform

    from srnomogram._threads import available_cores

    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {available_cores()} physical cores "
          f"this process may use, load average {os.getloadavg()[0]:.1f} at the start; {args.competitors} competing busy loops")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_contention_") as tmp:
        work = Path(tmp)
        for job, argv in _jobs(args, work).items():
            for setting in settings:
                for contended in (False, True):
                    times = []
                    for r in range(args.repeats):
                        out = work / f"{job}_{setting}_{int(contended)}_{r}"
                        cmd, env = _command(setting, argv(out)), _env(setting)
                        run = lambda: _timed(cmd, env, work / f"{out.name}.log")  # noqa: E731
                        times.append(_with_competitors(args.competitors, run) if contended else run())
                    wall, cpu = sorted(times)[len(times) // 2]
                    rows.append((job, setting, contended, wall, cpu))
                    print(f"  {job:5s} {setting:7s} {'contended' if contended else 'idle':9s} wall {wall:7.1f} s  cpu {cpu:7.1f} s", flush=True)
    print()
    print(f"{'job':5s} {'setting':7s} {'idle s':>8s} {'contended s':>12s} {'contended/idle':>15s} {'contended vs before':>20s}"
          f" {'cpu s idle':>11s} {'cpu s contended':>16s}")
    t = {(j, s, c): (w, cpu) for j, s, c, w, cpu in rows}
    for job in dict.fromkeys(j for j, *_ in rows):
        for s in settings:
            (idle, cpu_i), (cont, cpu_c) = t[job, s, False], t[job, s, True]
            print(f"{job:5s} {s:7s} {idle:8.1f} {cont:12.1f} {cont / idle:14.2f}x {cont / t[job, 'before', True][0]:19.2f}x"
                  f" {cpu_i:11.1f} {cpu_c:16.1f}")
    print("baseline: 'before' (threads = every CPU, OpenMP's default wait policy); goal: contended/idle <= about 2")


if __name__ == "__main__":
    main()
