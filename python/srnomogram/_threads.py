"""How many CPU threads srnomogram computes with: one setting for PyTorch, OpenMP/BLAS and joblib.

PyTorch, the BLAS under numpy/scipy and R, and joblib's worker processes each default to every core
of the machine, whatever the process may use (a container's CPU set, ``taskset``, a cluster job's
allocation), and PyTorch's OpenMP threads spin while they wait for each other. On a shared box the
threads of two such jobs preempt each other inside every parallel region: a job that takes 2 s an
epoch alone took 120 s beside two other CPU-bound jobs. :func:`set_threads` sets all three from
one number, by default the physical cores this process may use, and the command line also asks OpenMP to
sleep rather than spin while it waits (:func:`prefer_passive_wait`).

The number comes from, in order: the ``threads`` argument (``--threads`` on the command line,
``study.threads`` in a study file), ``$SRNOMOGRAM_THREADS``, ``$OMP_NUM_THREADS``, and the physical
cores this process may use (:func:`available_cores`: ``os.sched_getaffinity``, hyperthreads of a core
counted once, capped by a cgroup CPU quota). The thread count
changes how sums are split, so the last bits of some results, never their meaning.

From Python, call ``srnomogram.set_threads(n)`` once before computing; for the passive wait policy
set ``OMP_WAIT_POLICY=PASSIVE`` in the environment before Python starts (or before ``import torch``):
OpenMP reads it once, when it loads.
"""

from __future__ import annotations

import os
import sys

from .errors import param_error

#: Environment variable giving the thread count when neither ``--threads`` nor ``study.threads`` does.
THREADS_ENV = "SRNOMOGRAM_THREADS"
#: What the OpenMP and BLAS libraries read when they load (for those loaded after set_threads).
_LIBRARY_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

_current: int | None = None


def available_cores() -> int:
    """Physical cores this process may run on: the distinct cores of the CPUs in its affinity mask
    (two hyperthreads of one core count once, as PyTorch's own default counts them), capped by a
    cgroup CPU quota (joblib's count); the affinity mask's CPU count where the topology is unknown."""
    try:
        cpus = os.sched_getaffinity(0)
    except AttributeError:  # macOS, Windows
        cpus = range(os.cpu_count() or 1)
    try:
        cores = set()
        for cpu in cpus:
            topo = f"/sys/devices/system/cpu/cpu{cpu}/topology"
            with open(f"{topo}/physical_package_id") as pkg, open(f"{topo}/core_id") as core:
                cores.add((pkg.read().strip(), core.read().strip()))
        n = len(cores)
    except OSError:  # no sysfs topology (not Linux, some containers)
        n = len(cpus)
    try:
        from joblib import cpu_count

        n = min(n, cpu_count())  # affinity and cgroup quota (docker --cpus)
    except ImportError:  # pragma: no cover - joblib is a dependency
        pass
    return max(int(n), 1)


def _positive(value, source: str) -> int:
    try:
        n = int(str(value).strip())
    except ValueError:
        n = 0
    if n < 1:
        raise param_error("threads", source, "an int >= 1", value)
    return n


def resolve_threads(threads: int | None = None) -> int:
    """The thread count to use: ``threads``, else ``$SRNOMOGRAM_THREADS``, else ``$OMP_NUM_THREADS``,
    else :func:`available_cores`.

    Raises
    ------
    InputError
        When the value given (or the variable set) is not an integer >= 1.
    """
    if threads is not None:
        return _positive(threads, "set_threads")
    if os.environ.get(THREADS_ENV, "").strip():
        return _positive(os.environ[THREADS_ENV], f"${THREADS_ENV}")
    if os.environ.get("OMP_NUM_THREADS", "").strip().isdigit() and int(os.environ["OMP_NUM_THREADS"]) >= 1:
        return int(os.environ["OMP_NUM_THREADS"])
    return available_cores()


def set_threads(threads: int | None = None) -> int:
    """Compute with ``threads`` CPU threads (default: see :func:`resolve_threads`); return the number.

    Sets PyTorch's intra-op (and, before its first parallel work, inter-op) threads when torch is
    loaded, the thread pools of every OpenMP/BLAS library already loaded (threadpoolctl), the
    variables that libraries loaded later read (``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``,
    ``OPENBLAS_NUM_THREADS``), and the local joblib workers that :func:`srnomogram.parallel.imap_unordered`
    starts when no worker count is given (each worker then gets ``threads // workers`` threads, joblib's own rule).
    Process-wide, like ``torch.set_num_threads``: call it once, before computing.
    """
    global _current
    n = resolve_threads(threads)
    for var in _LIBRARY_ENV:
        os.environ[var] = str(n)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n)  # kept: limits set this way stay until changed
    if "torch" in sys.modules:  # else torch reads OMP_NUM_THREADS when it starts its pool
        import torch

        torch.set_num_threads(n)
        if torch.get_num_interop_threads() != n:
            try:
                torch.set_num_interop_threads(n)
            except RuntimeError:  # only possible before any inter-op work; intra-op is what our code uses
                pass
    _current = n
    return n


def current_threads() -> int:
    """The count :func:`set_threads` set, else what it would set (:func:`resolve_threads`)."""
    return _current if _current is not None else resolve_threads()


def prefer_passive_wait() -> bool:
    """Ask OpenMP threads to sleep, not spin, while they wait (``OMP_WAIT_POLICY=PASSIVE``).

    Only possible before OpenMP loads (with torch), so the command line calls it first; a value the
    user set is kept. Returns whether the policy is (or will be) passive.
    """
    if "OMP_WAIT_POLICY" not in os.environ and "torch" not in sys.modules:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE"
