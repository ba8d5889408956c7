"""Benchmark: srnomogram.radiomics.extract against PyRadiomics 3.0.1 on the BrEaST lesions.

Runs PyRadiomics' own ``RadiomicsFeatureExtractor().execute()`` (unmodified, all-pairs diameter
search included) and ours on the same lesions with the same number of joblib workers and the same
settings (PyRadiomics' defaults, diagnostics off on both sides: ``additionalInfo: false``), checks
that every feature agrees (1e-6 relative, 1e-9 absolute), and prints both wall times and the ratio.

    .venv/bin/python benchmarks/bench_radiomics.py            # PyRadiomics on 24 lesions spread over sizes
    .venv/bin/python benchmarks/bench_radiomics.py --n 60     # ... on 60 lesions
    .venv/bin/python benchmarks/bench_radiomics.py --all      # PyRadiomics on all 252 (about 17 min, 2 workers)
    .venv/bin/python benchmarks/bench_radiomics.py --n 0 --splits 20   # ours only, then OR_LR/OR_SVM over 20 splits

Ours always also runs on every lesion (cold, then a rerun from the content-hash cache).
The PyRadiomics subset is deterministic: lesions sorted by mask size, taken at evenly spaced
ranks, the largest always included.
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
DEFAULT_DATA = REPO.parent / "shared" / "data" / "breast-lesions-usg"
RTOL, ATOL = 1e-6, 1e-9


def _reference_one(case_id, image, mask, spacing):
    import logging

    import SimpleITK as sitk

    from srnomogram.data.manifest import mask_paths
    from srnomogram.data.readers import read_case
    from srnomogram.radiomics.extraction import _reference_extractor, extract_case

    logging.getLogger("radiomics").setLevel(logging.ERROR)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)  # as our workers do: fair comparison
    # Same settings as ours: no diagnostics_* entries (image hashes, connected components), which
    # srnomogram never computes; PyRadiomics computes them by default (additionalInfo: true).
    _reference_extractor(None).settings["additionalInfo"] = False
    t0, c0 = time.perf_counter(), time.process_time()
    img, msk = read_case(image, mask_paths(mask), spacing, case_id)
    feats = extract_case(img, msk, reference=True)
    return case_id, feats, time.perf_counter() - t0, time.process_time() - c0


def run_reference(df: pd.DataFrame, jobs: int, store: Path | None = None) -> tuple[pd.DataFrame, int]:
    """PyRadiomics' unmodified extractor on every row, ``jobs`` loky workers, smallest lesions first.

    With ``store``, each lesion's reference values are written there as soon as they are
    computed (``<case_id>.json``) and read back on a later run, so a long run can be resumed.
    Returns the features and how many lesions were computed (not read back) in this run.
    """
    from joblib import Parallel, delayed

    done = {}
    if store is not None:
        store.mkdir(parents=True, exist_ok=True)
        for cid in df["case_id"]:
            f = store / f"{cid}.json"
            if f.is_file():
                done[cid] = json.loads(f.read_text(encoding="utf-8"))["features"]
    todo = df[~df["case_id"].isin(list(done))]
    if "n_pixels" in todo.columns:
        todo = todo.sort_values("n_pixels", kind="stable")
    par = Parallel(n_jobs=jobs, backend="loky", return_as="generator_unordered")
    for cid, feats, seconds, cpu in par(delayed(_reference_one)(r.case_id, r.image, r["mask"], r.spacing) for _, r in todo.iterrows()):
        done[cid] = feats
        if store is not None:
            tmp = store / f".{cid}.json.tmp"
            tmp.write_text(json.dumps({"features": feats, "seconds": seconds, "cpu_seconds": cpu}), encoding="utf-8")
            os.replace(tmp, store / f"{cid}.json")
    feats = pd.DataFrame.from_dict(done, orient="index").loc[list(df["case_id"])]
    feats.index.name = "case_id"
    return feats.astype(float), len(todo)


def compare(ours: pd.DataFrame, ref: pd.DataFrame) -> dict:
    """Feature-by-feature agreement: counts and the worst relative difference."""
    if list(ours.columns) != list(ref.columns):
        return {"same_columns": False}
    a, b = ours.loc[ref.index].to_numpy(), ref.to_numpy()
    both_nan = np.isnan(a) & np.isnan(b)
    ok = both_nan | np.isclose(a, b, rtol=RTOL, atol=ATOL)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(both_nan, 0.0, np.abs(a - b) / np.maximum(np.abs(b), 1e-300))
    rel[np.abs(a - b) <= ATOL] = 0.0
    i, j = np.unravel_index(np.nanargmax(rel), rel.shape)
    return {
        "same_columns": True,
        "n_lesions": int(a.shape[0]),
        "n_values": int(a.size),
        "n_outside_tolerance": int((~ok).sum()),
        "worst_rel_diff": float(rel[i, j]),
        "worst_at": f"{ref.index[i]} {ref.columns[j]}",
    }


def subset(df: pd.DataFrame, n: int) -> pd.DataFrame:
    """``n`` lesions at evenly spaced ranks of mask size, the largest included."""
    import SimpleITK as sitk

    from srnomogram.data.manifest import mask_paths
    from srnomogram.data.readers import read_case

    sizes = []
    for _, r in df.iterrows():
        _, m = read_case(r.image, mask_paths(r["mask"]), r.spacing, r.case_id)
        sizes.append(int(sitk.GetArrayFromImage(m).sum()))
    order = np.argsort(sizes, kind="stable")
    ranks = np.unique(np.round(np.linspace(0, len(df) - 1, n)).astype(int))
    picked = df.iloc[order[ranks]].copy()
    picked["n_pixels"] = np.asarray(sizes)[order[ranks]]
    return picked


def split_aucs(df: pd.DataFrame, features: pd.DataFrame, k: int) -> pd.DataFrame:
    """Test AUC of OR_LR and OR_SVM over ``k`` seeded stratified 80/20 splits (seeds 0..k-1)."""
    import warnings

    from srnomogram.data import stratified_split
    from srnomogram.radiomics.models import fit_or_sr_models

    labels = df.set_index("case_id")["label"]
    rows = []
    for seed in range(k):
        split = stratified_split(df, test_size=0.2, seed=seed)
        split.index = labels.index
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            t2 = fit_or_sr_models(labels, split, features, random_state=seed)["table2"]
        rows.append(t2[t2["set"] == "test"].set_index("model")["auc"].rename(seed))
    aucs = pd.DataFrame(rows)
    for m in aucs.columns:
        a = aucs[m]
        print(f"{m}: test AUC over {k} splits mean {a.mean():.3f}, range {a.min():.3f}-{a.max():.3f} (sd {a.std():.3f})")
    return aucs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="Breast-Lesions-USG folder")
    ap.add_argument("--manifest", default=None, help="use this manifest instead of importing --data")
    ap.add_argument("--n", type=int, default=24, help="lesions on which PyRadiomics runs (default 24)")
    ap.add_argument("--all", action="store_true", help="run PyRadiomics on every lesion")
    ap.add_argument("--jobs", type=int, default=2, help="joblib workers for both (default 2)")
    ap.add_argument("--reference-store", default=None, help="folder keeping PyRadiomics' per-lesion values, so that a long --all run can be resumed")
    ap.add_argument("--features-out", default=None, help="write our features of every lesion here (parquet)")
    ap.add_argument("--json", default=None, help="write the measured numbers here")
    ap.add_argument("--splits", type=int, default=0, help="also fit OR_LR/OR_SVM on this many seeded stratified 80/20 splits and print test AUCs")
    args = ap.parse_args(argv)

    from srnomogram.data.importers import import_breast_lesions_usg
    from srnomogram.data.manifest import load_manifest
    from srnomogram.radiomics.extraction import extract

    tmp = Path(tempfile.mkdtemp(prefix="bench_radiomics_"))
    manifest = args.manifest or import_breast_lesions_usg(args.data, tmp / "manifest.csv", progress=False)
    df = load_manifest(manifest)
    print(f"machine: {os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f} at start; {len(df)} lesions; {args.jobs} workers")

    # ours, every lesion: cold (no cache), then cold with cache writes, then the cached rerun
    t0 = time.perf_counter()
    ours_all = extract(df, jobs=args.jobs, progress=False)
    t_ours_all = time.perf_counter() - t0
    cache = tmp / "cache"
    extract(df, jobs=args.jobs, cache_dir=cache, progress=False)
    t0 = time.perf_counter()
    cached = extract(df, jobs=args.jobs, cache_dir=cache, progress=False)
    t_cached = time.perf_counter() - t0
    assert cached.equals(ours_all), "the cached rerun differs from the fresh extraction"
    if args.features_out:
        ours_all.to_parquet(args.features_out)
    print(f"ours, all {len(df)} lesions: {t_ours_all:.1f} s; rerun from cache: {t_cached:.2f} s; {ours_all.shape[1]} features")
    c0 = time.process_time()
    extract(df, jobs=1, progress=False)
    print(f"ours, all {len(df)} lesions in one process: {time.process_time() - c0:.1f} s CPU (contention-free measure)")

    if args.splits:
        split_aucs(df, ours_all, args.splits)
    if args.n <= 0 and not args.all:
        return 0

    sub = subset(df, len(df) if args.all else args.n)
    label = f"all {len(sub)}" if args.all else f"subset of {len(sub)} (sizes {sub['n_pixels'].min()}-{sub['n_pixels'].max()} px)"
    t0 = time.perf_counter()
    ours_sub = extract(sub, jobs=args.jobs, progress=False)
    t_ours_sub = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref, n_computed = run_reference(sub, args.jobs, Path(args.reference_store) if args.reference_store else None)
    t_ref = time.perf_counter() - t0
    cmp = compare(ours_sub, ref)
    ratio = t_ref / t_ours_sub
    if n_computed < len(sub):
        print(f"PyRadiomics 3.0.1, {label}: {len(sub) - n_computed} lesions read from --reference-store, {n_computed} computed in {t_ref:.1f} s (no full-run time; ratio not meaningful)")
    else:
        print(f"PyRadiomics 3.0.1 (diagnostics off, as ours), {label}: {t_ref:.1f} s")
    print(f"ours, same lesions:        {t_ours_sub:.1f} s")
    print(f"ratio PyRadiomics / ours:  {ratio:.1f}x")
    print(
        f"equality: {cmp.get('n_values')} values of {cmp.get('n_lesions')} lesions, "
        f"{cmp.get('n_outside_tolerance')} outside rtol {RTOL:g}/atol {ATOL:g}; worst relative difference {cmp.get('worst_rel_diff'):.2e} ({cmp.get('worst_at')})"
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"n_all": len(df), "ours_all_s": t_ours_all, "ours_cached_s": t_cached, "subset": label, "pyradiomics_s": t_ref, "ours_subset_s": t_ours_sub, "ratio": ratio, "jobs": args.jobs, **cmp}, indent=2), encoding="utf-8")
    ok = cmp.get("same_columns") and cmp.get("n_outside_tolerance") == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "python"))
    sys.exit(main())
