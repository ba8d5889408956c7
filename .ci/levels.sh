#!/usr/bin/env bash
# pytest under each CPU code path this CPU can emulate below its own, and with one thread.
#
# CI machines and users' CPUs differ (Intel Xeon with AMX, AMD EPYC with AVX-512 BF16, AMD EPYC with
# AVX2 only), and PyTorch picks its kernels by CPU: oneDNN (convolutions) by ONEDNN_MAX_CPU_ISA, ATen
# (everything else) by ATEN_CPU_CAPABILITY, and sums split by thread count. Every test must hold on
# each of these paths, so each level that is *below* this CPU's own is run here with the CPU capped
# to it; the native level is the plain run of tests/run.sh. A level the CPU cannot do is skipped with
# a line saying so (a cap above the hardware would silently run the native path).
#
#   levels: AVX2 (oneDNN AVX2 + ATen avx2) < AVX512_CORE < AVX512_CORE_BF16 < AVX512_CORE_AMX (native
#   only); then OMP_NUM_THREADS=1 (and SRNOMOGRAM_THREADS=1) at the native level.
#
# Arguments go to pytest (default: the whole suite). Every level runs even when one fails; the exit
# status is 1 if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export MPLBACKEND=Agg
flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
has() { local f; for f; do [[ $flags == *" $f "* ]] || return 1; done; }

# oneDNN's name for the best ISA it would use here (its dispatcher needs all these flags)
if has amx_bf16 amx_tile avx512_bf16 avx512f avx512bw avx512vl avx512dq; then native=AVX512_CORE_AMX
elif has avx512_bf16 avx512f avx512bw avx512vl avx512dq; then native=AVX512_CORE_BF16
elif has avx512f avx512bw avx512vl avx512dq; then native=AVX512_CORE
elif has avx2 fma; then native=AVX2
else native=none
fi
echo "== CPU: oneDNN native level $native; PyTorch ATen $("$PY" -c 'import torch; print(torch.backends.cpu.get_cpu_capability())');" \
  "flags: $(tr ' ' '\n' <<<"$flags" | grep -E '^(avx2|fma|avx512|amx)' | tr '\n' ' ')=="

failed=()
run_level() {  # name, then env assignments
  local name=$1; shift
  echo "== pytest, $name =="
  local t0=$SECONDS
  env -u ONEDNN_MAX_CPU_ISA -u DNNL_MAX_CPU_ISA -u ATEN_CPU_CAPABILITY -u OMP_NUM_THREADS -u SRNOMOGRAM_THREADS \
    "$@" "$PY" -m pytest -q -p no:cacheprovider "${PYTEST_ARGS[@]}" || failed+=("$name")
  echo "== $name: $((SECONDS - t0)) s =="
}
PYTEST_ARGS=("$@")

order=(AVX2 AVX512_CORE AVX512_CORE_BF16 AVX512_CORE_AMX)
rank() { local i; for i in "${!order[@]}"; do [[ ${order[$i]} == "$1" ]] && { echo "$i"; return; }; done; echo -1; }
for level in AVX2 AVX512_CORE AVX512_CORE_BF16; do
  if [[ $native == none || $(rank "$level") -gt $(rank "$native") ]]; then
    echo "== skipped ONEDNN_MAX_CPU_ISA=$level: this CPU cannot run it (native level $native) =="
  elif [[ $level == "$native" ]]; then
    echo "== skipped ONEDNN_MAX_CPU_ISA=$level: it is this CPU's native level, run by tests/run.sh =="
  elif [[ $level == AVX2 ]]; then
    cap=$(ATEN_CPU_CAPABILITY=avx2 "$PY" -c "import torch; print(torch.backends.cpu.get_cpu_capability())")
    if [[ $cap == AVX2 ]]; then
      run_level "ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2" ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2
    else
      echo "== skipped ONEDNN_MAX_CPU_ISA=AVX2: PyTorch refuses ATEN_CPU_CAPABILITY=avx2 here (reports $cap) =="
    fi
  else
    run_level "ONEDNN_MAX_CPU_ISA=$level" ONEDNN_MAX_CPU_ISA="$level"
  fi
done
run_level "OMP_NUM_THREADS=1 (native level)" OMP_NUM_THREADS=1 SRNOMOGRAM_THREADS=1

if ((${#failed[@]})); then
  printf '== failed under: %s ==\n' "${failed[@]}"
  exit 1
fi
