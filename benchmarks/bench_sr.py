"""Speed of the SR GAN: training iterations/s and z-SR of a 256x256x64 volume, on CPU and (if present) CUDA.

Wall and CPU (process) times are both printed: on a shared machine wall time includes waiting.
Baseline for inference: SciPy cubic B-spline interpolation of the same volume along z (what the
SR replaces); the ratio printed is SR time / cubic time. Training is timed for L1-only and for
adversarial iterations (generator + discriminator updates) of the default model
(32 channels x 8 blocks, 64x64 patches, batch 16), and 2D SR (both axes, back onto the input grid,
as ``sr apply``) of a 485x537 image, the size of a BrEaST scan. Three settings: CPU float32 (the
CPU default where bf16 is not native), CPU bf16 + channels-last (``amp="bf16"``; the ``auto`` choice on a CPU with AMX or AVX-512 BF16; its ratio to
float32 is printed) and, when present, CUDA (bf16 autocast, channels_last, the CUDA default).

    python benchmarks/bench_sr.py [--iters 5] [--channels 32 --blocks 8]
    python benchmarks/bench_sr.py --inference-only --repeats 3   # 2D SR only, float32 vs bf16
    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 python benchmarks/bench_sr.py --inference-only   # as on an AVX2-only CPU

It also prints what ``amp="auto"`` chooses on this machine (:func:`srnomogram._torch.bf16_is_fast`):
bf16 on a CPU only with AMX, which these numbers are meant to justify.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_train(device, args, bf16):
    from srnomogram.sr.engine import LossWeights, train_step
    from srnomogram.sr.networks import Generator, PatchDiscriminator

    torch.manual_seed(0)
    G, D = Generator(args.channels, args.blocks).to(device), PatchDiscriminator(args.channels).to(device)
    if bf16:
        G.to(memory_format=torch.channels_last)
        D.to(memory_format=torch.channels_last)
    og, od = torch.optim.Adam(G.parameters(), 2e-4), torch.optim.Adam(D.parameters(), 2e-4)
    hr = torch.rand(args.batch, 1, args.patch, args.patch, device=device)
    if bf16:
        hr = hr.contiguous(memory_format=torch.channels_last)
    out = {}
    for adv in (False, True):
        kw = dict(weights=LossWeights(), noise_sigma=0.01, mode="downsample", generator=None, adversarial=adv, device=device, bf16=bf16)
        train_step(G, D, og, od, hr, **kw)  # warm-up
        _sync(device)
        t = time.perf_counter()
        for _ in range(args.iters):
            train_step(G, D, og, od, hr, **kw)
        _sync(device)
        out["adversarial" if adv else "l1_only"] = args.iters / (time.perf_counter() - t)
    return out, G


def bench_infer(G, device, vol, bf16, resample_back=False):
    from srnomogram.sr.apply import super_resolve_array

    warm = vol[:4, :64, :64] if vol.ndim == 3 else vol[:64, :64]
    super_resolve_array(G, warm, device, resample_back=resample_back, bf16=bf16)  # warm-up
    _sync(device)
    t, c = time.perf_counter(), time.process_time()
    y = super_resolve_array(G, vol, device, resample_back=resample_back, bf16=bf16)
    _sync(device)
    return time.perf_counter() - t, time.process_time() - c, y.shape


def bench_infer_2d(G, img, bf16, repeats):
    """Best-of-``repeats`` wall and CPU seconds of 2D SR of ``img`` (both axes, back onto its grid)."""
    from srnomogram.sr.apply import super_resolve_array

    super_resolve_array(G, img[:96, :96], torch.device("cpu"), resample_back=True, bf16=bf16)  # warm-up
    best = (np.inf, np.inf)
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        super_resolve_array(G, img, torch.device("cpu"), resample_back=True, bf16=bf16)
        best = min(best, (time.perf_counter() - t, time.process_time() - c))
    return best


def inference_only(args, img):
    from srnomogram._torch import bf16_is_fast, cpu_flags
    from srnomogram.sr.networks import Generator

    torch.manual_seed(0)
    G = Generator(args.channels, args.blocks).eval()
    torch.nn.init.normal_(G.tail.weight, std=0.05)
    flags = cpu_flags()
    print(f"CPU flags: amx_bf16={'amx_bf16' in flags}, avx512_bf16={'avx512_bf16' in flags}, avx2={'avx2' in flags}; "
          f"ATen capability {torch.backends.cpu.get_cpu_capability()}; amp='auto' picks {'bf16' if bf16_is_fast(torch.device('cpu')) else 'float32'} here")
    w32, c32 = bench_infer_2d(G, img, False, args.repeats)
    w16, c16 = bench_infer_2d(G, img, True, args.repeats)
    print(f"2D SR of a 485x537 image, best of {args.repeats}: float32 {w32:.2f} s wall ({c32:.2f} s CPU), "
          f"bf16 + channels-last {w16:.2f} s wall ({c16:.2f} s CPU); bf16 / float32 speed: {w32 / w16:.2f}x wall, {c32 / c16:.2f}x CPU")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=5, help="timed training iterations per mode")
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--blocks", type=int, default=8)
    ap.add_argument("--patch", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--inference-only", action="store_true", help="only 2D SR of one image, float32 vs bf16 (random weights)")
    ap.add_argument("--repeats", type=int, default=3, help="with --inference-only: timed runs per precision (best kept)")
    args = ap.parse_args(argv)
    if args.inference_only:
        print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, CPU threads {torch.get_num_threads()}")
        inference_only(args, (np.random.default_rng(0).random((485, 537)) * 255).astype(np.uint8))
        return

    from srnomogram.sr.degradation import interpolate_axis

    rng = np.random.default_rng(0)
    vol = (rng.random((64, 256, 256)) * 255).astype(np.uint8)  # (z, y, x)
    img = (rng.random((485, 537)) * 255).astype(np.uint8)
    t, c = time.perf_counter(), time.process_time()
    interpolate_axis(vol.astype(np.float32) / 255, 0, 3)
    t_cubic, c_cubic = time.perf_counter() - t, time.process_time() - c
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, CPU threads {torch.get_num_threads()}")
    print(f"model: {args.channels} channels x {args.blocks} blocks; training batch {args.batch} x {args.patch}x{args.patch}")
    print(f"baseline  cubic B-spline z-interpolation of 256x256x64 (CPU, SciPy): {t_cubic:.2f} s wall, {c_cubic:.2f} s CPU")
    settings = [(torch.device("cpu"), False), (torch.device("cpu"), True)]
    if torch.cuda.is_available():
        settings.append((torch.device("cuda"), True))
    first = None
    for dev, bf16 in settings:
        rates, G = bench_train(dev, args, bf16)
        secs, cpu, shape = bench_infer(G.eval(), dev, vol, bf16)
        secs2d, _, _ = bench_infer(G, dev, img, bf16, resample_back=True)
        name = ("CPU" if dev.type == "cpu" else f"GPU ({torch.cuda.get_device_name(0)})") + (", bf16 + channels_last" if bf16 else ", float32")
        print(f"{name}: train {rates['l1_only']:.2f} it/s (L1 only), {rates['adversarial']:.2f} it/s (adversarial)")
        print(f"{name}: z-SR of 256x256x64 -> {shape[2]}x{shape[1]}x{shape[0]}: {secs:.2f} s wall, {cpu:.2f} s CPU ({secs / t_cubic:.1f}x cubic interpolation, wall)")
        print(f"{name}: 2D SR of a 485x537 image (both axes, back onto its grid): {secs2d:.2f} s wall")
        if first is None:
            first = (rates, secs, secs2d)
        else:
            print(f"{name} vs CPU float32: train {rates['l1_only'] / first[0]['l1_only']:.2f}x it/s, "
                  f"z-SR {first[1] / secs:.2f}x faster, 2D SR {first[2] / secs2d:.2f}x faster")
    if not torch.cuda.is_available():
        print("GPU: not available (no CUDA device)")


if __name__ == "__main__":
    main()
