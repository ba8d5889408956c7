"""Cohort stage timings, each printed as a ratio against a named baseline.

* ``demo_cohort(n=120)`` against the issue's budget of 20 s (2 cores).
* ``max_feret_diameter`` (hull + all pairs of hull vertices) against brute force over all pairs
  of mask pixels, on demo masks (and on BrEaST masks when ../shared holds them).
* The BrEaST import (252 lesions) wall time, when the data are present.

Run: ``.venv/bin/python benchmarks/bench_cohort.py``
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def brute_force(mask, spacing):
    pts = np.argwhere(mask).astype(float) * spacing
    best = 0.0
    for s in range(0, len(pts), 1024):
        d2 = ((pts[s : s + 1024, None, :] - pts[None, :, :]) ** 2).sum(-1)
        best = max(best, d2.max())
    return float(np.sqrt(best))


def main():
    from PIL import Image

    from srnomogram.data import demo_cohort, load_manifest
    from srnomogram.data.geometry import max_feret_diameter

    print(f"machine: {os.cpu_count()} CPU cores visible; load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        manifest = demo_cohort(Path(tmp) / "demo", n=120, seed=0)
        dt = time.perf_counter() - t
        print(f"demo_cohort(n=120): {dt:.2f} s = {dt / 20:.2f} x the 20 s budget")
        df = load_manifest(manifest)
        masks = [np.asarray(Image.open(p)) > 0 for p in df["mask"][:10]]
        t = time.perf_counter()
        fast = [max_feret_diameter(m, 0.2) for m in masks]
        t_fast = time.perf_counter() - t
        t = time.perf_counter()
        slow = [brute_force(m, 0.2) for m in masks]
        t_slow = time.perf_counter() - t
        assert np.allclose(fast, slow, rtol=1e-12)
        print(f"max_feret_diameter on 10 demo masks ({int(np.mean([m.sum() for m in masks]))} px each on average): "
              f"{t_fast * 1e3:.1f} ms vs brute force all pairs {t_slow * 1e3:.0f} ms = {t_slow / t_fast:.0f}x faster, equal to 1e-12")

    breast = Path(__file__).resolve().parents[2] / "shared" / "data" / "breast-lesions-usg"
    if breast.is_dir():
        from srnomogram.data import import_breast_lesions_usg

        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            import_breast_lesions_usg(breast, Path(tmp) / "m.csv", progress=False)
            dt = time.perf_counter() - t
        print(f"BrEaST import (252 lesions, Feret diameter of each mask): {dt:.2f} s")
    else:
        print("BrEaST data not found; import timing skipped", file=sys.stderr)


if __name__ == "__main__":
    main()
