"""Benchmark: radiomics extraction throughput on a large synthetic cohort, locally and on a Dask cluster.

The cohort is the demo generator's with ``lesion_sizes="breast"`` (mask areas spread like the
BrEaST cohort's, on images of at least 512 x 512 pixels), so the cost per lesion is that of a real
cohort, not of the small demo masks. It prints:

* throughput (lesions/s) of ``srnomogram.radiomics.extract`` with 1 and 2 local worker processes
  and on a 2-worker ``dask.distributed.LocalCluster`` (1 thread each), and the scaling efficiency
  (rate with 2 workers / 2 x rate with 1); the three feature tables must be equal bit for bit;
* the cost per lesion against the mask area, split into the shape class and everything else
  (reading, the texture classes), with the log-log slope of each (1 = linear in the area);
* on a few lesions (``--reference``), the agreement with PyRadiomics 3.0.1 unmodified
  (1e-6 relative, 1e-9 absolute, as ``bench_radiomics.py``).

    .venv/bin/python benchmarks/bench_scale.py                 # 2,000 lesions (the cohort is written once)
    .venv/bin/python benchmarks/bench_scale.py --n 200         # a quick run while developing
    .venv/bin/python benchmarks/bench_scale.py --skip-cluster  # local workers only

The machine is shared: the load average is printed beside the numbers, and the CPU time of the
single-process run is printed as a contention-free measure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
#: The 252 BrEaST mask areas in pixels (5th, 25th, 50th, 75th, 95th percentiles), for comparison.
BREAST_AREA_QUANTILES = {0.05: 2839, 0.25: 7230, 0.5: 15634, 0.75: 25876, 0.95: 68865}
RTOL, ATOL = 1e-6, 1e-9
AREA_BINS = (0, 4000, 8000, 16000, 32000, 64000, np.inf)


def _load():
    return f"load average {os.getloadavg()[0]:.1f}"


def cohort(folder: Path, n: int, seed: int) -> pd.DataFrame:
    """The synthetic cohort in ``folder`` (written on the first run, read back afterwards), with mask areas."""
    from PIL import Image

    from srnomogram.data import demo_cohort, load_manifest

    manifest = folder / "manifest.csv"
    if not manifest.is_file():
        t0 = time.perf_counter()
        demo_cohort(folder, n=n, seed=seed, n_volumes=0, lesion_sizes="breast")
        print(f"wrote the cohort of {n} lesions to {folder} in {time.perf_counter() - t0:.0f} s")
    df = load_manifest(manifest)
    if len(df) != n:
        raise SystemExit(f"{manifest} holds {len(df)} lesions, not --n {n}; remove the folder or pass another --cohort")
    df["area_px"] = [int(np.count_nonzero(np.asarray(Image.open(p)))) for p in df["mask"]]
    return df


def throughput(df: pd.DataFrame, skip_cluster: bool) -> tuple[list[dict], dict, pd.DataFrame]:
    """Wall time of extract() with 1 and 2 local workers and on a 2-worker LocalCluster."""
    from srnomogram.radiomics.extraction import extract

    warm = df.iloc[:4]
    rows, tables = [], {}

    def timed(label, workers, **kw):
        extract(warm, progress=False, **kw)  # start the workers and import PyRadiomics there first
        c0, t0 = time.process_time(), time.perf_counter()
        tables[label] = extract(df, progress=False, **kw)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        rows.append({"run": label, "workers": workers, "wall_s": wall, "lesions_per_s": len(df) / wall, "client_cpu_s": cpu, "load": os.getloadavg()[0]})
        print(f"  {label:<32} {wall:8.1f} s  {len(df) / wall:6.1f} lesions/s  ({_load()})", flush=True)

    timed("1 local process", 1, jobs=1)
    timed("2 local workers (loky)", 2, jobs=2)
    if not skip_cluster:
        from distributed import LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0", processes=True) as cluster:
            timed("2-worker Dask LocalCluster", 2, scheduler=cluster.scheduler_address)
    first = next(iter(tables.values()))
    equal = {k: bool(v.equals(first)) for k, v in tables.items()}
    return rows, equal, first


def cost_by_area(df: pd.DataFrame, k: int) -> pd.DataFrame:
    """Per-lesion CPU time of one extraction and of its shape class, on ``k`` lesions spread over the areas."""
    import SimpleITK as sitk

    from srnomogram.data.manifest import mask_paths
    from srnomogram.data.readers import read_case
    from srnomogram.radiomics.extraction import _can_precrop, _extractor, _precropped_input, extract_case, pyradiomics_input
    from srnomogram.radiomics.shape import fast_shape_class

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    order = np.argsort(df["area_px"].to_numpy(), kind="stable")
    picked = df.iloc[order[np.unique(np.round(np.linspace(0, len(df) - 1, min(k, len(df)))).astype(int))]]
    ex = _extractor(None)
    rows = []
    for r in picked.itertuples():
        c0 = time.process_time()
        img, msk = read_case(r.image, mask_paths(r.mask), r.spacing, r.case_id)
        extract_case(img, msk)
        total = time.process_time() - c0
        img, msk = _precropped_input(img, msk) if _can_precrop(ex) else pyradiomics_input(img, msk)
        c0 = time.process_time()
        shape = fast_shape_class()(img, msk)
        shape.enableAllFeatures()
        shape.execute()
        rows.append({"case_id": r.case_id, "area_px": r.area_px, "total_ms": 1e3 * total, "shape_ms": 1e3 * (time.process_time() - c0)})
    out = pd.DataFrame(rows)
    out["other_ms"] = out["total_ms"] - out["shape_ms"]
    return out


def reference_check(df: pd.DataFrame, k: int, features: pd.DataFrame) -> dict:
    """Our features against PyRadiomics' unmodified extractor on ``k`` lesions up to the median area."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_radiomics import compare, run_reference

    order = np.argsort(df["area_px"].to_numpy(), kind="stable")
    half = order[: max(len(order) // 2, 1)]
    sub = df.iloc[half[np.unique(np.round(np.linspace(0, len(half) - 1, k)).astype(int))]].copy()
    sub["n_pixels"] = sub["area_px"]
    ref, _ = run_reference(sub, jobs=2)
    return compare(features.loc[ref.index], ref)


def slope(x, y) -> float:
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="lesions in the synthetic cohort (default 2000)")
    ap.add_argument("--seed", type=int, default=0, help="cohort seed (default 0)")
    ap.add_argument("--cohort", default=None, help="folder of the cohort (default: <tmp>/srnomogram_bench_scale_n<N>_seed<S>, reused)")
    ap.add_argument("--cost-lesions", type=int, default=60, help="lesions timed one by one for the cost-by-area table (default 60)")
    ap.add_argument("--reference", type=int, default=6, help="lesions compared with PyRadiomics unmodified (default 6; 0 skips)")
    ap.add_argument("--skip-cluster", action="store_true", help="do not start a LocalCluster")
    ap.add_argument("--json", default=None, help="write the measured numbers here")
    args = ap.parse_args(argv)

    folder = Path(args.cohort) if args.cohort else Path(tempfile.gettempdir()) / f"srnomogram_bench_scale_n{args.n}_seed{args.seed}"
    df = cohort(folder, args.n, args.seed)
    q = df["area_px"].quantile(list(BREAST_AREA_QUANTILES))
    print(f"machine: {os.cpu_count()} CPU(s), {_load()} at start; {len(df)} synthetic lesions (lesion_sizes='breast')")
    print("mask area (px) percentiles 5/25/50/75/95: this cohort " + " / ".join(f"{v:,.0f}" for v in q) + "; BrEaST " + " / ".join(f"{v:,}" for v in BREAST_AREA_QUANTILES.values()))

    print("throughput (wall time, whole cohort, after a 4-lesion warm-up of each kind of worker):")
    rows, equal, features = throughput(df, args.skip_cluster)
    t = pd.DataFrame(rows).set_index("run")
    one = t.loc["1 local process", "lesions_per_s"]
    t["speedup"] = t["lesions_per_s"] / one
    t["efficiency"] = t["speedup"] / t["workers"]
    print(t[["workers", "wall_s", "lesions_per_s", "speedup", "efficiency", "load"]].to_string(float_format=lambda v: f"{v:.2f}"))
    cpu1 = t.loc["1 local process", "client_cpu_s"]
    print(f"1 local process: {cpu1:.1f} s CPU = {len(df) / cpu1:.1f} lesions per CPU-second (the contention-free measure on a shared machine)")
    print(f"feature tables equal bit for bit across runs: {all(equal.values())} ({equal})")

    cost = cost_by_area(df, args.cost_lesions)
    cost["area_bin"] = pd.cut(cost["area_px"], AREA_BINS, right=False)
    by = cost.groupby("area_bin", observed=True).agg(n=("area_px", "size"), area_px=("area_px", "median"), total_ms=("total_ms", "median"), shape_ms=("shape_ms", "median"), other_ms=("other_ms", "median"))
    by["shape_share"] = by["shape_ms"] / by["total_ms"]
    print(f"cost per lesion (CPU ms, one process, medians per area bin; {len(cost)} lesions spread over the areas):")
    print(by.to_string(float_format=lambda v: f"{v:.1f}" if abs(v) >= 1 else f"{v:.2f}"))
    slopes = {c: slope(cost["area_px"], cost[c].clip(lower=1e-3)) for c in ("total_ms", "shape_ms", "other_ms")}
    print("log-log slope against the area (1 = linear): " + ", ".join(f"{k[:-3]} {v:.2f}" for k, v in slopes.items()))

    cmp = {}
    if args.reference > 0:
        cmp = reference_check(df, args.reference, features)
    if cmp:
        print(
            f"equality with PyRadiomics 3.0.1 on {cmp.get('n_lesions')} lesions up to the median area: {cmp.get('n_values')} values, "
            f"{cmp.get('n_outside_tolerance')} outside rtol {RTOL:g}/atol {ATOL:g}; worst relative difference {cmp.get('worst_rel_diff'):.2e}"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"n": len(df), "throughput": rows, "equal": equal, "cost_by_area": by.reset_index().astype({"area_bin": str}).to_dict("records"), "slopes": slopes, "reference": cmp}, indent=2, default=float),
            encoding="utf-8",
        )
    ok = all(equal.values()) and (not cmp or (cmp.get("same_columns") and cmp.get("n_outside_tolerance") == 0))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "python"))
    sys.exit(main())
