"""Benchmark: ``sr apply`` on the BrEaST lesions, whole-image SR against ROI-only SR.

Baseline: whole-image SR (``region="image"``, what ``sr apply`` did before ROI-only SR). Both run
the default generator (32 channels x 8 blocks, random weights with a non-zero last layer: the
run time does not depend on the weights) on the same images, 2D, resampled back onto the original
grid (the study's setting), float32 unless ``--amp bf16``. Per image it prints the wall and CPU
times of both and checks that the ROI result equals whole-image SR inside the lesion box + margin
(bit for bit). Then the totals and the ratio whole / ROI on that subset, and (``--all``) an
end-to-end ``apply_manifest(region="roi")`` run on every lesion (reading, SR, writing PNGs and
sidecars), the command the study runs.

    python benchmarks/bench_sr_apply.py                # 30 lesions, evenly spaced by case id
    python benchmarks/bench_sr_apply.py --n 30 --all   # ... then ROI-only sr apply on all 252
    python benchmarks/bench_sr_apply.py --n 0 --all    # ROI-only sr apply on all 252 only

Wall times on a shared machine include waiting; CPU (process) times do not.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "breast-lesions-usg"


def _model(channels, blocks, amp):
    import torch

    from srnomogram.sr import SuperResolver
    from srnomogram.sr.networks import Generator

    torch.manual_seed(0)
    G = Generator(channels, blocks).eval()
    torch.nn.init.normal_(G.tail.weight, std=0.05)
    model = SuperResolver(channels=channels, blocks=blocks, device="cpu", amp=amp, progress=False)
    model.generator_, model.device_, model.ndim_, model.n_training_planes_, model.history_ = G, torch.device("cpu"), 2, 0, []
    return model


def _timed(fn):
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t, time.process_time() - c


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--n", type=int, default=30, help="lesions timed both ways (default 30)")
    ap.add_argument("--all", action="store_true", help="also run ROI-only sr apply end to end on every lesion")
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--blocks", type=int, default=8)
    ap.add_argument("--amp", choices=("none", "bf16", "auto"), default="none")
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        raise SystemExit(f"BrEaST not found at {args.data}; pass --data")

    import SimpleITK as sitk
    import torch

    from srnomogram.data import load_manifest, read_image
    from srnomogram.data.readers import read_masks_union
    from srnomogram.data.importers import import_breast_lesions_usg
    from srnomogram.data.manifest import mask_paths
    from srnomogram.sr.apply import read_box, roi_halo, super_resolve_array

    model = _model(args.channels, args.blocks, args.amp)
    G, bf16 = model.generator_, model._bf16()
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, CPU threads {torch.get_num_threads()}, "
          f"capability {torch.backends.cpu.get_cpu_capability()}")
    print(f"generator {args.channels} channels x {args.blocks} blocks, {'bf16' if bf16 else 'float32'}; halo {roi_halo(G)} px; ROI margin 0.1")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        manifest = import_breast_lesions_usg(args.data, tmp / "manifest.csv", progress=False)
        df = load_manifest(manifest).sort_values("case_id").reset_index(drop=True)
        pick = np.unique(np.linspace(0, len(df) - 1, min(args.n, len(df))).round().astype(int))
        rows = []
        for i in pick:
            r = df.iloc[i]
            img = sitk.GetArrayFromImage(read_image(r["image"], r.get("spacing")))
            mask = sitk.GetArrayFromImage(read_masks_union(list(np.atleast_1d(mask_paths(r["mask"]))), r.get("spacing")))
            box = read_box(mask, 0.1)
            whole, tw, cw = _timed(lambda: super_resolve_array(G, img, "cpu", resample_back=True, bf16=bf16))
            roi, tr, cr = _timed(lambda: super_resolve_array(G, img, "cpu", resample_back=True, bf16=bf16, boxes=[box]))
            same = np.array_equal(whole[box], roi[box])
            frac = (box[0].stop - box[0].start) * (box[1].stop - box[1].start) / img.size
            rows.append(dict(case_id=r["case_id"], shape=f"{img.shape[0]}x{img.shape[1]}", box_fraction=frac, whole_s=tw, roi_s=tr,
                             whole_cpu_s=cw, roi_cpu_s=cr, identical=same))
            print(f"{r['case_id']:>10} {img.shape[0]:4d}x{img.shape[1]:<4d} box {frac:6.1%}  whole {tw:6.2f} s ({cw:6.2f} CPU)  "
                  f"ROI {tr:6.2f} s ({cr:6.2f} CPU)  {tw / tr:5.1f}x  identical in box: {same}")
        t = pd.DataFrame(rows)
        if len(t):
            _summary(t, len(df))
        if args.all:
            _, ta, ca = _timed(lambda: model.apply_manifest(manifest, out_dir=tmp / "sr", manifest_out=tmp / "m_sr.csv", region="roi"))
            print(f"ROI-only sr apply of all {len(df)} lesions (read, SR, write PNG + sidecar): {ta / 60:.1f} min wall ({ca / 60:.1f} min CPU)")


def _summary(t, n_all):
    print(f"\n{len(t)} lesions: whole-image {t.whole_s.sum():.1f} s wall ({t.whole_cpu_s.sum():.1f} s CPU), "
          f"ROI-only {t.roi_s.sum():.1f} s wall ({t.roi_cpu_s.sum():.1f} s CPU); "
          f"ratio whole / ROI {t.whole_s.sum() / t.roi_s.sum():.2f}x wall, {t.whole_cpu_s.sum() / t.roi_cpu_s.sum():.2f}x CPU; "
          f"median per image {t.whole_s.median():.2f} s vs {t.roi_s.median():.2f} s; identical in every box: {bool(t.identical.all())}")
    print(f"whole-image SR of all {n_all} lesions, extrapolated from these: {t.whole_s.mean() * n_all / 60:.1f} min wall, "
          f"{t.whole_cpu_s.mean() * n_all / 60:.1f} min CPU")


if __name__ == "__main__":
    main()
