"""How many CPU threads srnomogram computes with: one setting for PyTorch, OpenMP/BLAS and joblib.

PyTorch, the BLAS under numpy/scipy and R, and joblib's worker processes each default to every core
of the machine, whatever the process may use (a container's CPU set, ``taskset``, a cluster job's
allocation), and PyTorch's OpenMP threads spin while they wait for each other. On a shared box the
threads of two such jobs preempt each other inside every parallel region: a job that takes 2 s an
epoch alone took 120 s beside two other CPU-bound jobs. :func:`set_threads` sets all three from
one number, by default the physical cores this process may use, and the command line also asks OpenMP to
sleep rather than spin while it waits (:func:`prefer_passive_wait`).

When nobody gave the number, the training loops (SR, CNNs) also follow the other jobs of a shared
machine (:func:`adapt_threads`): every few seconds they look at how many of this process's cores other
processes keep busy, and compute with the cores left free (one at least), back up when the others go.

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

import logging
import os
import sys
import time

from .errors import param_error

log = logging.getLogger(__name__)

#: Environment variable giving the thread count when neither ``--threads`` nor ``study.threads`` does.
THREADS_ENV = "SRNOMOGRAM_THREADS"
#: What the OpenMP and BLAS libraries read when they load (for those loaded after set_threads).
_LIBRARY_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

_current: int | None = None
#: The cores set_threads chose itself (no explicit count); None when the count was given. Only then does
#: :func:`adapt_threads` change the count.
_auto_cores: int | None = None
_written: str | None = None  # the OMP_NUM_THREADS value set_threads wrote
_interop_tried = False  # torch.set_num_interop_threads was called (it succeeds at most once per process)
#: Seconds between two looks at what the other jobs use (:func:`adapt_threads`).
ADAPT_EVERY = 5.0


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
    global _current, _auto_cores, _probe, _written
    n = resolve_threads(threads)
    omp = os.environ.get("OMP_NUM_THREADS", "").strip()
    explicit = (threads is not None or bool(os.environ.get(THREADS_ENV, "").strip())
                or (omp.isdigit() and omp != _written))  # a variable we wrote ourselves is no choice of the user's
    _auto_cores = None if explicit else n
    _probe = _LoadProbe() if _auto_cores and _auto_cores > 1 else None
    for var in _LIBRARY_ENV:
        os.environ[var] = str(n)
    _written = str(n)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n)  # kept: limits set this way stay until changed
    _set_torch(n)
    _current = n
    return n


def _set_torch(n: int) -> None:
    global _interop_tried
    if "torch" in sys.modules:  # else torch reads OMP_NUM_THREADS when it starts its pool
        import torch

        torch.set_num_threads(n)
        # torch takes the inter-op count once per process, and only before any inter-op work: after
        # the first try, successful or not, every later one fails (adapt_threads calls this often).
        if not _interop_tried and torch.get_num_interop_threads() != n:
            _interop_tried = True
            try:
                torch.set_num_interop_threads(n)
            except RuntimeError:  # inter-op work already started; intra-op is what our code uses
                pass


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


# ---------------------------------------------------------------------------------------------- a shared box
def _busy_seconds(cpus) -> float | None:
    """CPU-seconds the CPUs ``cpus`` have spent busy since boot (all processes), from ``/proc/stat``;
    None where there is no such file (not Linux)."""
    try:
        with open("/proc/stat") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    ticks = 0
    for line in lines:
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
            ticks += user + nice + system + irq + softirq + steal  # guest time is counted in user
    return ticks / os.sysconf("SC_CLK_TCK")


class _LoadProbe:
    """How many of this process's CPUs other processes kept busy since the last look: the busy time of
    those CPUs (``/proc/stat``) minus this process's own CPU time, per second of wall time."""

    def __init__(self):
        try:
            self.cpus = os.sched_getaffinity(0)
        except AttributeError:  # pragma: no cover - not Linux
            self.cpus = set(range(os.cpu_count() or 1))
        self.sample = self._now()

    def _now(self):
        """(wall seconds, busy CPU-seconds of our CPUs or None, this process's CPU-seconds)."""
        return time.monotonic(), _busy_seconds(self.cpus), time.process_time()

    def others(self, min_interval: float = 0.25) -> float | None:
        """Cores busy with other processes since the last call, or None (too soon, or no /proc/stat)."""
        new = self._now()
        (t0, busy0, own0), (t1, busy1, own1) = self.sample, new
        if busy0 is None or busy1 is None or t1 - t0 < min_interval:
            return None
        self.sample = new
        return max(0.0, (busy1 - busy0) - (own1 - own0)) / (t1 - t0)


_probe: _LoadProbe | None = None
_next_look = 0.0


def free_cores(cores: int, others: float) -> int:
    """Threads to compute with when other processes keep ``others`` of our ``cores`` busy: the cores they
    leave free, at least one. A core counts as taken once others use 3/4 of it, so light background work
    (a shell, a file copy) does not cost a thread and a CPU-bound job (one whole core) does."""
    return int(min(cores, max(1, cores - int(others + 0.25))))


def adapt_threads() -> int | None:
    """Follow the other jobs of a shared machine: called often from the training loops (SR, CNNs), at most
    every :data:`ADAPT_EVERY` seconds it looks at how many of this process's cores other processes keep
    busy and computes with the cores they leave free (:func:`free_cores`), back up to the count
    :func:`set_threads` chose when they go.

    Why: PyTorch splits every operation over its threads and waits at the end of each for the slowest.
    When another job holds a core, one of our threads waits for the scheduler there at every operation:
    ``sr train`` took 4.9 times its idle wall time beside two busy loops on two cores, where one thread
    gets two thirds of a core and no waits. Only when :func:`set_threads` chose the count itself: a count
    given with ``--threads``, ``study.threads``, ``$SRNOMOGRAM_THREADS`` or ``$OMP_NUM_THREADS`` is kept,
    for runs that must repeat to the last bit (the thread count changes how sums are split).

    Returns the new count when it changed, else None.
    """
    global _next_look, _current
    if _probe is None or _auto_cores is None:
        return None
    now = time.monotonic()
    if now < _next_look:
        return None
    others = _probe.others()
    if others is None:
        return None
    _next_look = now + ADAPT_EVERY
    n = free_cores(_auto_cores, others)
    if n == _current:
        return None
    log.info("threads %s -> %d: other processes keep %.1f of this process's %d cores busy", _current, n, others, _auto_cores)
    _set_torch(n)
    _current = n
    return n
