"""Quality of the SR GAN vs interpolation on held-out images: BrEaST (2D) and the demo volumes (3D).

BrEaST (the README's table): imports the collection exactly as ``srnomogram cohort import
breast-lesions-usg DIR`` does (252 lesions), splits it with the package's stratified hash split
(``srnomogram cohort split``, seed 0, test_size 0.2: 201 training, 51 held-out images), trains a
:class:`srnomogram.sr.SuperResolver` **at the package defaults** (2,000 iterations, 32 x 8 generator,
64-pixel patches, batch 16, ``amp="auto"``) on the training images only, degrades each held-out
image as in training (down-sampling by 2 along an axis + Gaussian noise) and prints PSNR/SSIM of
nearest / linear / cubic B-spline / Keys cubic (the generator's fixed skip path, i.e.
:mod:`srnomogram.sr.quality`'s ``keys``) and the GAN against the originals, with the paired gain of SR
over Keys and its 95% bootstrap interval over images. It also prints the CPU time of the training
(process CPU time, all threads: on a shared machine wall time says little) and the command.

    python benchmarks/sr_quality.py --breast ../shared/data/breast-lesions-usg --out srq   # the README's table

``--demo`` adds the demo cohort's 3D volumes (8 volumes, 2 held out). Model flags left unset keep the
package defaults; the README's 3D row used ``--demo --iterations 250 --batch-size 8 --patch-size 48
--blocks 6``. Writes the per-image table, the summary, the model and an original / cubic / SR figure
into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np

MODEL_FLAGS = ("iterations", "batch_size", "patch_size", "channels", "blocks", "lr", "adv_weight", "noise_sigma", "amp")


def _model(args):
    from srnomogram.sr import SuperResolver

    given = {k: getattr(args, k) for k in MODEL_FLAGS if getattr(args, k) is not None}
    return SuperResolver(seed=args.seed, device=args.device, progress=False, **given)


def _cpu():
    flags = ""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and name in ("", platform.machine()):
                name = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = line.split(":", 1)[1]
                break
    except OSError:
        pass
    isa = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if f" {f}" in flags]
    return f"{name}, {len(os.sched_getaffinity(0))} cores usable, flags: {' '.join(isa) or 'unknown'}"


def gain_ci(table, ref="keys", n_boot=2000, seed=0):
    """Paired mean PSNR gain of SR over ``ref`` (dB) with a 95% percentile bootstrap interval, images resampled."""
    wide = table.pivot_table(index=["image", "axis"], columns="method", values="psnr")
    per_image = (wide["sr"] - wide[ref]).groupby(level="image").mean()
    v = per_image.to_numpy()
    rng = np.random.default_rng(seed)
    boots = v[rng.integers(0, len(v), size=(n_boot, len(v)))].mean(axis=1)
    return float(v.mean()), float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))


def run(name, train_images, test_images, test_ids, args, out: Path):
    import pandas as pd
    import torch

    from srnomogram.sr import quality_table, summarise
    from srnomogram.sr.quality import quality_figure

    model = _model(args)
    c0, t0 = time.process_time(), time.perf_counter()
    model.fit_images(train_images)
    cpu_fit, t_fit = time.process_time() - c0, time.perf_counter() - t0
    c0, t0 = time.process_time(), time.perf_counter()
    table = quality_table(model, test_images, ids=test_ids, seed=1000)
    cpu_eval, t_eval = time.process_time() - c0, time.perf_counter() - t0
    summ = summarise(table)
    gain, lo, hi = gain_ci(table)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / f"{name}_quality_per_image.csv", index=False)
    summ.to_csv(out / f"{name}_quality_summary.csv")
    model.save(out / f"{name}_model")
    quality_figure(model, test_images[0], out / f"{name}_crops.png", axis=0, seed=1000,
                   title=f"{name}: held-out {test_ids[0]}, degraded x2 along axis 0 + noise")
    l1 = [h["l1"] for h in model.history_]
    k = max(1, len(l1) // 10)
    p = model.get_params()
    info = dict(dataset=name, n_train=len(train_images), n_test=len(test_images),
                **{k_: p[k_] for k_ in ("iterations", "batch_size", "patch_size", "channels", "blocks", "noise_sigma", "adv_weight", "amp")},
                bf16=model._bf16(), torch=torch.__version__, torch_threads=torch.get_num_threads(), cpu=_cpu(),
                fit_cpu_seconds=round(cpu_fit, 1), fit_wall_seconds=round(t_fit, 1),
                eval_cpu_seconds=round(cpu_eval, 1), eval_wall_seconds=round(t_eval, 1),
                sr_gain_over_keys_db=round(gain, 3), sr_gain_over_keys_ci95=[round(lo, 3), round(hi, 3)],
                train_l1_first10pct=float(np.mean(l1[:k])), train_l1_last10pct=float(np.mean(l1[-k:])))
    (out / f"{name}_info.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    with pd.option_context("display.width", 160, "display.max_columns", 20, "display.precision", 4):
        print(f"== {name} ==  " + json.dumps(info))
        print(summ)
    k_, s_ = summ.loc["keys"], summ.loc["sr"]
    n_axes = len(table[["image", "axis"]].drop_duplicates()) // max(1, len(test_images))
    print(f"| {name}, {len(test_images)} held-out images x {n_axes} axes | {k_.psnr:.2f} dB / {k_.ssim:.3f} | "
          f"{s_.psnr:.2f} dB / {s_.ssim:.3f} | {gain:+.2f} dB (95% CI {lo:+.2f} to {hi:+.2f}) |")
    print(f"training: {cpu_fit / 60:.1f} CPU-min ({t_fit / 60:.1f} min wall) on {info['cpu']}, {info['torch_threads']} torch threads, bf16={info['bf16']}")
    return summ


def breast_split(src: Path, work: Path, seed: int, test_size: float):
    """The package's import and stratified hash split of BrEaST: (train DataFrame, test DataFrame)."""
    from srnomogram.data import load_manifest
    from srnomogram.data.importers import import_breast_lesions_usg
    from srnomogram.data.split import split_manifest

    work.mkdir(parents=True, exist_ok=True)
    manifest = import_breast_lesions_usg(src, work / "breast_manifest.csv", progress=False)
    split_manifest(manifest, test_size=test_size, seed=seed)
    df = load_manifest(manifest)
    return df[df["split"] == "train"], df[df["split"] == "test"]


def read_arrays(df):
    import SimpleITK as sitk

    from srnomogram.data.readers import read_image

    sp = df["spacing"] if "spacing" in df.columns else [None] * len(df)
    return [sitk.GetArrayFromImage(read_image(p, s)) for p, s in zip(df["image"], sp)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--breast", type=Path, help="BrEaST-Lesions-USG folder (xlsx sheet and images/)")
    ap.add_argument("--demo", action="store_true", help="the demo cohort's 3D volumes")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--split-seed", type=int, default=0, help="seed of the stratified hash split (default 0)")
    ap.add_argument("--test-size", type=float, default=0.2, help="held-out fraction of each class (default 0.2)")
    ap.add_argument("--n-volumes", type=int, default=8)
    for flag in MODEL_FLAGS:
        typ = str if flag == "amp" else (float if flag in ("lr", "adv_weight", "noise_sigma") else int)
        ap.add_argument("--" + flag.replace("_", "-"), type=typ, default=None, help="SuperResolver parameter (default: the package default)")
    ap.add_argument("--seed", type=int, default=0, help="SuperResolver seed (default 0)")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    print("command: python " + shlex.join([sys.argv[0]] + (sys.argv[1:] if argv is None else list(argv))), flush=True)

    if args.breast:
        train, test = breast_split(args.breast, args.out, args.split_seed, args.test_size)
        print(f"BrEaST split (seed {args.split_seed}, test_size {args.test_size}): {len(train)} training, {len(test)} held-out images", flush=True)
        run("breast", read_arrays(train), read_arrays(test), list(test["case_id"]), args, args.out)
    if args.demo:
        import tempfile

        import SimpleITK as sitk

        from srnomogram.data import demo_cohort, load_manifest
        from srnomogram.data.readers import read_image

        with tempfile.TemporaryDirectory() as d:
            demo_cohort(d, n=4, seed=0, n_volumes=args.n_volumes)
            df = load_manifest(Path(d) / "volumes.csv")
            vols = [sitk.GetArrayFromImage(read_image(p)) for p in df["image"]]
        rng = np.random.default_rng(args.seed)
        order = rng.permutation(len(vols))
        n_train = len(vols) - max(1, len(vols) // 4)
        tr, te = order[:n_train], order[n_train:]
        ids = list(df["case_id"])
        run("demo3d", [vols[i] for i in tr], [vols[i] for i in te], [ids[i] for i in te], args, args.out)


if __name__ == "__main__":
    main()
