"""Wall time of the study's nomogram stage with and without the decision curves' bootstrap bands.

The stage fits the clinical model and the nomogram, then computes ROC/DeLong, Hosmer–Lemeshow,
rms::calibrate (B = nomogram.calibration_b), rms::validate (same B) and the decision curves on train
and test. ``nomogram.dca_bootstraps`` (default 500) adds rmda-style bootstrap bands to the four
decision curves; this script measures what they cost, on a BrEaST-sized synthetic cohort (252
lesions, 8:2 split) with the study's defaults (B = 1000, 100 thresholds).

Usage (repository root): python benchmarks/bench_nomogram_stage.py [--n 252] [--reps 2] [--b 1000]
Prints the median wall and CPU (this process, R included) time of the stage for dca_bootstraps = 0 and 500 and their difference, and
the time of one internal validation (rms::validate, B bootstraps).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=252)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--b", type=int, default=1000)
    args = ap.parse_args()

    from srnomogram import stats
    from srnomogram.data import demo_cohort
    from srnomogram.study.cache import Runner, Stage, StageContext, StageResult
    from srnomogram.study.config import config_from_dict
    from srnomogram.study.stages import build_stages, run_nomogram

    stats.r_versions()  # start R before timing
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        manifest = demo_cohort(tmp / "cohort", n=args.n, seed=0, n_volumes=0)

        def cfg_for(bootstraps):
            return config_from_dict({
                "cohort": {"manifest": str(manifest)},
                "study": {"output": str(tmp / "o")},
                "nomogram": {"calibration_b": args.b, "dca_bootstraps": bootstraps},
            })

        cfg0 = cfg_for(0)
        split = Runner(cfg0, build_stages(cfg0)).run(until="split")["split"]
        cohort = pd.read_csv(split.file("cohort.csv"), dtype={"case_id": str})
        rng = np.random.default_rng(0)
        score = np.clip(0.35 + 0.25 * cohort["label"] + rng.normal(0, 0.25, len(cohort)), 0, 1)
        (tmp / "t2").mkdir()
        pd.DataFrame({"case_id": cohort["case_id"], "deep_score": score}).to_csv(tmp / "t2" / "scores.csv", index=False)
        inputs = {"split": split, "table2": StageResult("table2", tmp / "t2", "k", {})}
        times, cpu = {}, {}
        for bootstraps in (0, 500):
            cfg = cfg_for(bootstraps)
            runs, cpus = [], []
            for r in range(args.reps):
                out = tmp / f"nom_{bootstraps}_{r}"
                out.mkdir()
                ctx = StageContext(config=cfg, inputs=inputs, dir=out, stage=Stage("nomogram", run_nomogram), key="k")
                t0, c0 = time.perf_counter(), time.process_time()
                run_nomogram(ctx)
                runs.append(time.perf_counter() - t0)
                cpus.append(time.process_time() - c0)
            times[bootstraps] = statistics.median(runs)
            cpu[bootstraps] = statistics.median(cpus)
        # the internal validation's share: rms::validate of the nomogram fit alone (the stage runs two)
        train = cohort.assign(deep_score=score)[lambda d: d["split"] == "train"].reset_index(drop=True)
        fit = stats.fit_nomogram(data=train[["label", "age", "max_diameter_cm", "deep_score"]],
                                 formula="label ~ age + max_diameter_cm + deep_score")
        runs = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            stats.validate_nomogram(fit, B=args.b, seed=0)
            runs.append(time.perf_counter() - t0)
        t_val = statistics.median(runs)
    print(f"nomogram stage, n = {args.n}, calibration/validation B = {args.b}, median of {args.reps}:")
    print(f"  dca_bootstraps = 0:   {times[0]:6.2f} s wall, {cpu[0]:6.2f} s CPU")
    print(f"  dca_bootstraps = 500: {times[500]:6.2f} s wall, {cpu[500]:6.2f} s CPU  "
          f"(+{times[500] - times[0]:.2f} s wall, +{cpu[500] - cpu[0]:.2f} s CPU, CPU ratio {cpu[500] / cpu[0]:.2f})")
    print(f"  of which validate_nomogram(B = {args.b}) of one model: {t_val:6.2f} s (the stage runs two)")


if __name__ == "__main__":
    main()
