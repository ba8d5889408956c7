"""Where the demo's time goes: ``srnomogram demo`` with the CPU time of each stage.

Runs ``srnomogram demo`` in this process (arguments after ``--`` are passed on, e.g. ``-o demo_study
--set deep.archs=[mobilenet_v2]``) and prints, per stage, the wall time and the CPU time (user + sys
of this process, which includes R through rpy2 and every torch thread, plus that of reaped child
processes such as the radiomics workers). CPU time is the figure to compare on a shared machine,
where wall time depends on what else runs; the total at the end also covers the figures and report.

    python benchmarks/bench_demo.py -- -o demo_study
"""

from __future__ import annotations

import logging
import resource
import sys
import time


def _cpu() -> tuple[float, float]:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime, c.ru_utime + c.ru_stime


class _StageClock(logging.Handler):
    """Turns the runner's "Stage X: running." / "done" lines into per-stage CPU and wall seconds."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.rows, self._open = [], {}

    def emit(self, record):
        msg = record.getMessage()
        if not msg.startswith("Stage "):
            return
        name = msg[len("Stage "):].split(":", 1)[0]
        now = (time.perf_counter(), *_cpu())
        if msg.endswith("running."):
            self._open[name] = now
        elif ": done" in msg and name in self._open:
            w0, s0, c0 = self._open.pop(name)
            self.rows.append((name, now[0] - w0, now[1] - s0, now[2] - c0))


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    from srnomogram.cli import main as cli_main

    clock = _StageClock()
    logging.getLogger("srnomogram.study.cache").addHandler(clock)
    w0, s0, c0 = time.perf_counter(), *_cpu()
    rc = cli_main(["demo", *argv])
    wall, (s1, c1) = time.perf_counter() - w0, _cpu()
    print(f"{'stage':<28}{'wall s':>9}{'CPU s':>9}{'child CPU s':>13}")
    for name, w, s, c in clock.rows:
        print(f"{name:<28}{w:>9.1f}{s:>9.1f}{c:>13.1f}")
    print(f"{'total (with figures, report)':<28}{wall:>9.1f}{s1 - s0:>9.1f}{c1 - c0:>13.1f}")
    print(f"CPU total: {(s1 - s0 + c1 - c0) / 60:.2f} min (user + sys); command: python benchmarks/bench_demo.py -- {' '.join(argv)}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
