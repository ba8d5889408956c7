"""Device, precision and seeding shared by deep and sr (srnomogram._torch)."""

import numpy as np
import pytest
import torch

from srnomogram import _torch
from srnomogram._torch import autocast, bf16_is_fast, cpu_flags, cpu_has_fast_bf16, resolve_amp, resolve_device, seed_everything
from srnomogram.errors import InputError

CPU = torch.device("cpu")
#: flags of /proc/cpuinfo: a Sapphire Rapids Xeon (AMX), the AMD EPYC of the dev box (AVX-512 BF16, no AMX),
#: a Cascade Lake Xeon (AVX-512 without BF16), an AVX2-only CPU
XEON_AMX = "fpu sse2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8"
EPYC = "fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni"
SKYLAKE = "fpu sse2 avx2 avx512f avx512bw avx512_vnni"
AVX2 = "fpu sse2 avx avx2 fma"


def test_auto_device_is_the_cpu_without_cuda_and_a_named_device_is_kept(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == resolve_device(None) == CPU
    assert resolve_device("cpu") == CPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda") and resolve_device("cuda:1") == torch.device("cuda:1")


def test_device_errors_name_the_parameter_and_the_value(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(InputError, match=r"'device' parameter of SuperResolver is 'cuda' but CUDA is not available here"):
        resolve_device("cuda", "SuperResolver")
    with pytest.raises(InputError, match=r"'device' parameter of DeepClassifier.*Got 'gpu0' instead"):
        resolve_device("gpu0", "DeepClassifier")


@pytest.mark.parametrize("flags, environ, fast", [
    (XEON_AMX, {}, True),
    (XEON_AMX, {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_AMX"}, True),
    (XEON_AMX, {"ONEDNN_MAX_CPU_ISA": "AVX2"}, False),  # oneDNN told not to use AMX nor AVX-512
    (XEON_AMX, {"DNNL_MAX_CPU_ISA": "avx512_core_bf16"}, True),
    (EPYC, {}, True),  # AVX-512 BF16: measured 2.5x faster than float32
    (EPYC, {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}, False),  # bf16 emulated: measured 0.9x
    (EPYC, {"ONEDNN_MAX_CPU_ISA": "AVX2"}, False),  # measured 0.2x
    (SKYLAKE, {}, False),
    (AVX2, {}, False),
    ("", {}, False),  # no /proc/cpuinfo (not Linux)
])
def test_a_cpu_counts_as_fast_in_bf16_only_with_native_bf16_that_onednn_may_use(flags, environ, fast):
    assert cpu_has_fast_bf16(flags.split(), environ) is fast


def test_cpu_flags_are_read_from_the_flags_line(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text(f"processor\t: 0\nmodel name\t: Intel Xeon\nflags\t\t: {XEON_AMX}\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    assert cpu_flags(str(info)) == frozenset(XEON_AMX.split())
    assert cpu_flags(str(tmp_path / "absent")) == frozenset()


@pytest.mark.parametrize("amx", [True, False])
def test_auto_precision_on_the_cpu_is_bf16_exactly_where_the_cpu_has_native_bf16(monkeypatch, amx):
    monkeypatch.setattr(_torch, "cpu_flags", lambda *a: frozenset((XEON_AMX if amx else SKYLAKE).split()))
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    assert bf16_is_fast(CPU) is amx
    assert resolve_amp("auto", CPU) == (torch.bfloat16 if amx else None)
    assert resolve_amp("auto", CPU, auto_bf16=False) is None  # the CNNs' scoring stays fp32
    assert resolve_amp("bf16", CPU) == torch.bfloat16 and resolve_amp("none", CPU) is None  # asked for: as asked


@pytest.mark.parametrize("supported", [True, False])
def test_auto_precision_on_cuda_is_bf16_where_the_gpu_supports_it(monkeypatch, supported):
    from srnomogram.sr import SuperResolver

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: supported)
    cuda = resolve_device("cuda")
    assert resolve_amp("auto", cuda) == (torch.bfloat16 if supported else None)
    model = SuperResolver()
    model.device_ = cuda
    assert model._bf16() is supported


def test_amp_errors_name_the_parameter_the_estimator_and_the_value():
    with pytest.raises(InputError, match=r"'amp' parameter of SuperResolver must be 'auto', 'bf16' or 'none'\. Got 'fp16' instead"):
        resolve_amp("fp16", CPU, "SuperResolver")


def test_autocast_is_bf16_for_a_dtype_and_float32_for_none():
    x = torch.ones(2, 2)
    with autocast(CPU, torch.bfloat16):
        assert (x @ x).dtype == torch.bfloat16
    with autocast(CPU, None):
        assert (x @ x).dtype == torch.float32


def test_seed_everything_repeats_numpy_and_torch_draws():
    seed_everything(7)
    a = (np.random.rand(3), torch.rand(3))
    seed_everything(7)
    b = (np.random.rand(3), torch.rand(3))
    np.testing.assert_array_equal(a[0], b[0])
    assert torch.equal(a[1], b[1])
