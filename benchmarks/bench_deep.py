"""Images/s of srnomogram's deep training loop against a plain PyTorch reference loop, at equal precision.

Both loops train the same torchvision network (random init), on the same ROI crops, with the same
batch size, image size, optimiser (SGD 0.005, momentum 0.9) and augmentation (random crop +
horizontal flip), for the same number of steps after the same warm-up, in alternating rounds (medians
reported). Each precision is compared with itself, so the ratios measure the loop, not the arithmetic:

* **ours** (:func:`srnomogram.deep.engine.train_one_epoch`): every ROI preloaded once as one uint8
  tensor on the device, crop/flip/normalise there, losses kept on the device (no per-step host
  sync), optional ``torch.compile``;
* **reference** (the named baseline): torchvision model, ROIs as PIL images,
  ``torchvision.transforms`` (RandomCrop, RandomHorizontalFlip, ToTensor, Normalize) in a
  ``Dataset`` read through a ``DataLoader`` (shuffle, ``--workers`` workers, pinned memory on CUDA),
  batches copied to the device each step, ``loss.item()`` each step (as a plain loop logs it).

``fp32`` runs both loops in float32 with the default memory layout; ``bf16`` runs both under bf16
autocast with channels-last model and inputs (the CUDA defaults of ``DeepClassifier``). bf16's own gain
(bf16 / fp32 images/s of the same loop) is printed separately.

Usage::

    python benchmarks/bench_deep.py                          # CPU: demo cohort, both precisions
    python benchmarks/bench_deep.py --precision fp32         # one precision only
    python benchmarks/bench_deep.py --device cuda --steps 100 --compile --full-recipe
    python benchmarks/bench_deep.py --manifest M.csv --image-col image_sr

``--full-recipe`` also times the paper's whole recipe with our loop (200 epochs over 266 ROIs,
batch 16; goal on an H100: <= 60 s for MobileNetV2).
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rois(args):
    from srnomogram.data import demo_cohort, load_manifest
    from srnomogram.deep.data import load_rois
    from srnomogram.deep.presets import precrop_size

    if args.manifest:
        df = load_manifest(args.manifest)
    else:
        tmp = Path(tempfile.mkdtemp(prefix="bench_deep_"))
        df = load_manifest(demo_cohort(tmp, n=args.n, seed=0, n_volumes=0))
    return load_rois(df, args.image_col, size=precrop_size(args.image_size), progress=False)


def _timer(run, warmup, device, batch_size):
    """Run ``warmup`` untimed steps, then return ``timed(n_steps) -> (images/s, mean loss)``.

    ``run(n_steps)`` trains that many steps and returns their mean loss as a float.
    """
    run(warmup)
    _sync(device)

    def timed(n_steps):
        t = time.perf_counter()
        mean_loss = run(n_steps)
        _sync(device)
        return n_steps * batch_size / (time.perf_counter() - t), mean_loss

    return timed


def bench_ours(rois, args, device, amp):
    """Our loop; ``amp`` is None (fp32) or ``torch.bfloat16`` (bf16 autocast + channels-last)."""
    from srnomogram.deep.engine import train_one_epoch
    from srnomogram.deep.networks import build_model
    from srnomogram.deep.presets import TrainPreset

    torch.manual_seed(0)
    cl = amp is not None  # channels-last goes with bf16 (the CUDA defaults)
    model = build_model(args.arch, "none").to(device)
    if cl:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.005, momentum=0.9, weight_decay=1e-4)
    images, labels = rois.images.to(device), rois.labels.to(device)
    gen = torch.Generator(device=device).manual_seed(0)
    preset = TrainPreset(args.image_size)
    step_fn = None
    if args.compile:
        compiled = torch.compile(model)

        def step_fn(x, y):
            return F.cross_entropy(compiled(x), y)

    n = images.shape[0]
    per_epoch = len(range(0, n, args.batch_size))

    def run(n_steps):
        done, out = 0, []
        while done < n_steps:
            # epochs over the preloaded set; the last epoch is cut to the asked number of steps
            take = min(per_epoch, n_steps - done)
            sub = images[: min(n, take * args.batch_size)], labels[: min(n, take * args.batch_size)]
            out.append(train_one_epoch(model, opt, sub[0], sub[1], args.batch_size, preset, gen, amp_dtype=amp, channels_last=cl, step_fn=step_fn))
            done += take
        return float(torch.cat(out).float().mean())

    return _timer(run, args.warmup, device, args.batch_size)


class _PilDataset(torch.utils.data.Dataset):
    def __init__(self, images_u8, labels, transform):
        from PIL import Image

        self.images = [Image.fromarray(a[0]).convert("RGB") for a in images_u8.numpy()]
        self.labels = labels.tolist()
        self.transform = transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.transform(self.images[i]), self.labels[i]


def bench_reference(rois, args, device, amp):
    """The reference loop at the same precision as ``bench_ours(..., amp)``."""
    import contextlib

    import torchvision
    from torchvision import transforms as T

    from srnomogram.deep.networks import IMAGENET_MEAN, IMAGENET_STD

    torch.manual_seed(0)
    model = getattr(torchvision.models, args.arch)(weights=None)
    if args.arch == "mobilenet_v2":
        model.classifier[-1] = torch.nn.Linear(model.classifier[-1].in_features, 2)
    else:
        model.fc = torch.nn.Linear(model.fc.in_features, 2)
    cl = amp is not None
    model = model.to(device).train()
    if cl:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.005, momentum=0.9, weight_decay=1e-4)
    tf = T.Compose([T.RandomCrop(args.image_size), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    ds = _PilDataset(rois.images, rois.labels, tf)
    dl = torch.utils.data.DataLoader(ds, batch_size=args.batch_size, shuffle=True, drop_last=True, num_workers=args.workers, pin_memory=device.type == "cuda", persistent_workers=args.workers > 0)

    def run(n_steps):
        done, tot = 0, 0.0
        while done < n_steps:
            for x, y in dl:
                x, y = x.to(device), y.to(device)
                if cl:
                    x = x.contiguous(memory_format=torch.channels_last)
                with torch.autocast(device.type, dtype=amp) if cl else contextlib.nullcontext():
                    loss = F.cross_entropy(model(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                tot += loss.item()
                done += 1
                if done >= n_steps:
                    break
        return tot / max(done, 1)

    return _timer(run, args.warmup, device, args.batch_size)


def full_recipe(args, device):
    """The paper's recipe with our loop: 200 epochs, 266 ROIs, batch 16 (DeepClassifier.fit)."""
    from srnomogram.deep.data import RoiSet
    from srnomogram.deep.model import DeepClassifier, resolve_amp
    from srnomogram.deep.presets import precrop_size

    p = precrop_size(args.image_size)
    g = torch.Generator().manual_seed(0)
    n = 266
    rois = RoiSet(torch.randint(0, 256, (n, 1, p, p), dtype=torch.uint8, generator=g), torch.ones((n, 1, p, p), dtype=torch.uint8), torch.arange(n) % 2, [str(i) for i in range(n)], np.zeros((n, 4), np.int64), np.full(n, -1), {"image_col": "image"})
    bf16 = args.precision != "fp32" and resolve_amp("bf16", device) is not None
    est = DeepClassifier(arch=args.arch, weights="none", epochs=args.full_epochs, batch_size=16, image_size=args.image_size, device=str(device), compile=args.compile, amp="bf16" if bf16 else "none", channels_last=bf16, progress=False)
    _sync(device)
    t = time.perf_counter()
    est.fit(rois)
    _sync(device)
    return time.perf_counter() - t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="mobilenet_v2", choices=("mobilenet_v2", "resnet101"))
    ap.add_argument("--device", default="auto")
    ap.add_argument("--manifest", default=None, help="a manifest (default: a synthetic demo cohort)")
    ap.add_argument("--image-col", default="image")
    ap.add_argument("--n", type=int, default=64, help="demo lesions when no manifest is given")
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default 8 on CPU, 100 on CUDA)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 2 on CPU, 20 on CUDA)")
    ap.add_argument("--workers", type=int, default=None, help="reference DataLoader workers (default 0 on CPU, 4 on CUDA)")
    ap.add_argument("--rounds", type=int, default=None, help="alternating timing rounds, medians reported (default 4 on CPU, 3 on CUDA)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    ap.add_argument("--compile", action="store_true", help="torch.compile our training step")
    ap.add_argument("--precision", default="both", choices=("fp32", "bf16", "both"),
                    help="compare the loops in fp32, in bf16 (autocast + channels-last, both loops), or both (default); "
                    "with both, --full-recipe uses bf16")
    ap.add_argument("--full-recipe", action="store_true", help="also time the paper's full recipe with our loop")
    ap.add_argument("--full-epochs", type=int, default=200)
    args = ap.parse_args(argv)

    from srnomogram.deep.model import resolve_device

    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    args.steps = args.steps or (100 if cuda else 8)
    args.warmup = args.warmup if args.warmup is not None else (20 if cuda else 2)
    args.rounds = args.rounds or (3 if cuda else 4)
    args.workers = args.workers if args.workers is not None else (4 if cuda else 0)
    if args.threads:
        torch.set_num_threads(args.threads)
    if cuda:
        torch.backends.cudnn.benchmark = True
        name = torch.cuda.get_device_name(device)
    else:
        name = f"{platform.processor() or platform.machine()} CPU ({torch.backends.cpu.get_cpu_capability()}), {torch.get_num_threads()} threads"
    rois = _rois(args)
    precisions = {"fp32": [None], "bf16": [torch.bfloat16], "both": [None, torch.bfloat16]}[args.precision]
    print(f"device: {name}; torch {torch.__version__}; {args.arch}, {len(rois)} ROIs, {args.image_size} px, batch {args.batch_size}, {args.steps} timed steps in {args.rounds} alternating rounds after {args.warmup} warm-up")
    # Rounds alternate every loop so that a shared machine's changing load hits all alike; the
    # medians over rounds are reported.
    loops = {}
    for amp in precisions:
        tag = "bf16" if amp is not None else "fp32"
        loops[("ours", tag)] = bench_ours(rois, args, device, amp)
        loops[("reference", tag)] = bench_reference(rois, args, device, amp)
    per = max(1, args.steps // args.rounds)
    rounds = {k: [] for k in loops}
    for _ in range(args.rounds):
        for k, run in loops.items():
            rounds[k].append(run(per))
    speed = {k: float(np.median([r[0] for r in v])) for k, v in rounds.items()}
    loss = {k: float(np.mean([r[1] for r in v])) for k, v in rounds.items()}
    compiled = ", torch.compile" if args.compile else ""
    for (loop, tag), v in rounds.items():
        what = "preloaded device tensor, on-device augmentation" + compiled if loop == "ours" else f"PIL + torchvision.transforms + DataLoader({args.workers} workers)"
        layout = ", channels-last" if tag == "bf16" else ""
        print(f"{loop:9s} {tag}{layout} ({what}): {speed[(loop, tag)]:8.1f} images/s  (rounds: {' '.join(f'{r[0]:.1f}' for r in v)}; mean loss {loss[(loop, tag)]:.3f})")
    for tag in ("fp32", "bf16"):
        if ("ours", tag) in speed:
            print(f"loop ratio at {tag}, ours/reference: {speed[('ours', tag)] / speed[('reference', tag)]:.2f}x")
    if len(precisions) == 2:
        for loop in ("ours", "reference"):
            print(f"bf16 gain of the {loop} loop, bf16/fp32: {speed[(loop, 'bf16')] / speed[(loop, 'fp32')]:.2f}x")
    if args.full_recipe:
        dt = full_recipe(args, device)
        print(f"full recipe ({args.full_epochs} epochs x 266 ROIs, batch 16, {args.arch}, {args.image_size} px) with our loop: {dt:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
