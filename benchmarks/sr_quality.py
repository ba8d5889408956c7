"""Quality of the SR GAN vs interpolation on held-out images: BrEaST (2D) and the demo volumes (3D).

Trains a :class:`srnomogram.sr.SuperResolver` on a subset of the cohort, holds out other images,
degrades them as in training (down-sampling by 2 along an axis + Gaussian noise) and prints PSNR/SSIM
of nearest / linear / cubic B-spline interpolation and the GAN against the originals (the named
baseline is cubic interpolation; the GAN must beat it on both). Writes the per-image table, the
summary and an original / cubic / SR figure into ``--out``.

    python benchmarks/sr_quality.py --breast ../shared/data/breast-lesions-usg --demo --out srq   # the README's table

The defaults (250 iterations, 10 held-out BrEaST images; the demo's 8 volumes, 2 held out) are the
settings of the README's quality table.
"""

from __future__ import annotations

import argparse
import glob
import json
import time
from pathlib import Path

import numpy as np


def run(name, images, ids, n_train, args, out: Path):
    import pandas as pd

    from srnomogram.sr import SuperResolver, quality_table, summarise
    from srnomogram.sr.quality import quality_figure

    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(images))
    tr, te = order[:n_train], order[n_train : n_train + args.n_test]
    model = SuperResolver(channels=args.channels, blocks=args.blocks, patch_size=args.patch_size, iterations=args.iterations,
                          batch_size=args.batch_size, lr=args.lr, adv_weight=args.adv_weight, noise_sigma=args.noise_sigma,
                          seed=args.seed, device=args.device, progress=False)
    t0 = time.perf_counter()
    model.fit_images([images[i] for i in tr])
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    table = quality_table(model, [images[i] for i in te], ids=[ids[i] for i in te], seed=1000)
    t_eval = time.perf_counter() - t0
    summ = summarise(table)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / f"{name}_quality_per_image.csv", index=False)
    summ.to_csv(out / f"{name}_quality_summary.csv")
    model.save(out / f"{name}_model")
    fig_img = images[te[0]]
    quality_figure(model, fig_img, out / f"{name}_crops.png", axis=0, seed=1000, title=f"{name}: held-out {ids[te[0]]}, degraded x2 along axis 0 + noise")
    l1 = [h["l1"] for h in model.history_]
    k = max(1, len(l1) // 10)
    info = dict(dataset=name, n_train=len(tr), n_test=len(te), iterations=args.iterations, batch_size=args.batch_size,
                patch_size=args.patch_size, channels=args.channels, blocks=args.blocks, noise_sigma=args.noise_sigma,
                adv_weight=args.adv_weight, fit_seconds=round(t_fit, 1), eval_seconds=round(t_eval, 1),
                train_l1_first10pct=float(np.mean(l1[:k])), train_l1_last10pct=float(np.mean(l1[-k:])))
    (out / f"{name}_info.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    with pd.option_context("display.width", 160, "display.max_columns", 20, "display.precision", 4):
        print(f"== {name} ==  " + json.dumps(info))
        print(summ)
    return summ


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--breast", type=Path, help="BrEaST-Lesions-USG folder (images/caseNNN.png)")
    ap.add_argument("--demo", action="store_true", help="the demo cohort's 3D volumes")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--n-train", type=int, default=64)
    ap.add_argument("--n-test", type=int, default=10, help="held-out BrEaST images (default 10, the README's table)")
    ap.add_argument("--n-volumes", type=int, default=8)
    ap.add_argument("--iterations", type=int, default=250, help="training iterations (default 250, the README's table)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--patch-size", type=int, default=48)
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--blocks", type=int, default=6)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--adv-weight", type=float, default=1e-3)
    ap.add_argument("--noise-sigma", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    import SimpleITK as sitk

    from srnomogram.data.readers import read_image

    if args.breast:
        files = sorted(glob.glob(str(args.breast / "images" / "case[0-9][0-9][0-9].png")))
        imgs = [sitk.GetArrayFromImage(read_image(f)) for f in files]
        run("breast", imgs, [Path(f).stem for f in files], args.n_train, args, args.out)
    if args.demo:
        import tempfile

        from srnomogram.data import demo_cohort, load_manifest

        with tempfile.TemporaryDirectory() as d:
            demo_cohort(d, n=4, seed=0, n_volumes=args.n_volumes)
            df = load_manifest(Path(d) / "volumes.csv")
            vols = [sitk.GetArrayFromImage(read_image(p)) for p in df["image"]]
        n_train = len(vols) - max(1, len(vols) // 4)
        args.n_test = len(vols) - n_train
        run("demo3d", vols, list(df["case_id"]), n_train, args, args.out)


if __name__ == "__main__":
    main()
