"""Device, precision, autocast and seeding shared by :mod:`srnomogram.deep` and :mod:`srnomogram.sr`.

One rule for both: ``amp="auto"`` runs bf16 only where bf16 is *faster* than float32 on the device
at hand, which is decided from what the device reports, not assumed:

* CUDA: a GPU with native bf16 (compute capability 8.0+, ``torch.cuda.is_bf16_supported()``);
* CPU: a processor with native bf16 arithmetic, AMX (``amx_bf16``, Intel Sapphire Rapids and
  later) or AVX-512 BF16 (``avx512_bf16``, e.g. AMD Zen 4 EPYC, Intel Cooper Lake), as the flags
  of ``/proc/cpuinfo`` report them, and oneDNN allowed to use it (``ONEDNN_MAX_CPU_ISA`` unset,
  ``ALL``, or a ``*BF16*`` / ``*AMX*`` level).

Measured with ``benchmarks/bench_sr.py --inference-only`` (2D SR of a 485x537 image by the default
generator) on a 2-core AMD EPYC with ``avx512_bf16`` and no AMX: bf16 2.46x faster than float32
(CPU time); the same CPU with oneDNN capped at plain AVX-512 (``ONEDNN_MAX_CPU_ISA=AVX512_CORE``,
bf16 emulated, as on Skylake / Cascade Lake Xeons) 0.90x, and at AVX2 (``ONEDNN_MAX_CPU_ISA=AVX2
ATEN_CPU_CAPABILITY=avx2``) 0.21x: bf16 is slower there, so ``auto`` keeps float32.
"""

from __future__ import annotations

import contextlib
import os
import random

import numpy as np
import torch

from .errors import InputError, param_error

#: Where the CPU flags are read on Linux.
CPUINFO = "/proc/cpuinfo"
AMP_CHOICES = ("auto", "bf16", "none")


def resolve_device(device="auto", func: str = "srnomogram") -> torch.device:
    """``"auto"`` (or None) → CUDA when available, else CPU; otherwise ``torch.device(device)``.

    Raises
    ------
    InputError
        For a string torch cannot parse, or a CUDA device when none is available.
    """
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise param_error("device", func, "'auto', 'cpu', 'cuda' or 'cuda:N'", device) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"The 'device' parameter of {func} is {device!r} but CUDA is not available here (no CUDA device found). Use device='auto' or 'cpu'.")
    return dev


def cpu_flags(path: str = CPUINFO) -> frozenset:
    """The CPU feature flags the kernel reports (first ``flags`` line of ``/proc/cpuinfo``); empty where unreadable."""
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


#: CPU flags of native bf16 arithmetic that oneDNN's bf16 convolutions use.
BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_has_fast_bf16(flags=None, environ=None) -> bool:
    """True when this CPU has native bf16 arithmetic (AMX or AVX-512 BF16) and oneDNN may use it (see the module notes)."""
    flags = cpu_flags() if flags is None else frozenset(flags)
    environ = os.environ if environ is None else environ
    isa = environ.get("ONEDNN_MAX_CPU_ISA", environ.get("DNNL_MAX_CPU_ISA", "ALL")).strip().upper()
    allowed = isa in ("", "ALL", "DEFAULT") or "AMX" in isa or "BF16" in isa
    return allowed and any(f in flags for f in BF16_FLAGS)


def bf16_is_fast(device: torch.device) -> bool:
    """Whether bf16 autocast is expected to beat float32 on ``device`` (CUDA with bf16; a CPU with AMX or AVX-512 BF16)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        return cpu_has_fast_bf16()
    return False


def resolve_amp(amp, device: torch.device, func: str = "srnomogram", *, auto_bf16: bool = True) -> torch.dtype | None:
    """The autocast dtype for ``amp``: ``torch.bfloat16``, or None for float32.

    ``"auto"``: bf16 where :func:`bf16_is_fast` and ``auto_bf16`` (callers pass False where float32
    is wanted regardless, e.g. the CNNs' scoring), float32 elsewhere. ``"bf16"``: bf16 on any
    device. ``"none"``: float32.
    """
    if amp == "auto":
        return torch.bfloat16 if auto_bf16 and bf16_is_fast(device) else None
    if amp in ("bf16", "bfloat16"):
        return torch.bfloat16
    if amp in ("none", "fp32", "float32"):
        return None
    raise param_error("amp", func, "'auto', 'bf16' or 'none'", amp)


def autocast(device: torch.device, dtype: torch.dtype | None):
    """``torch.autocast`` for ``dtype`` on ``device``, or a no-op context when ``dtype`` is None (float32)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and PyTorch (CPU and every GPU) in one call.

    Parameters
    ----------
    seed : int
        The seed.
    deterministic : bool
        Also ask PyTorch for deterministic algorithms (slower on a GPU; same numbers every run).
    """
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
