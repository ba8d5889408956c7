"""Shared fixtures: the real BrEaST cohort (from ../shared, never copied in) and the demo cohort."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("SRNOMOGRAM_SHARED", REPO.parent / "shared"))
BREAST = SHARED / "data" / "breast-lesions-usg"
GOLDEN = SHARED / "golden"

# One thread count for the whole session. When nobody gives a count, the training loops follow the
# other jobs of a shared machine (srnomogram._threads.adapt_threads), and a test that calls the
# command line in this process would leave that on: its numbers (two runs compared to the last bit)
# would then depend on what else the machine runs. A count given (OMP_NUM_THREADS=1 in .ci/levels.sh)
# is kept.
if not os.environ.get("SRNOMOGRAM_THREADS", "").strip() and not os.environ.get("OMP_NUM_THREADS", "").strip():
    from srnomogram._threads import available_cores

    os.environ["SRNOMOGRAM_THREADS"] = str(available_cores())


@pytest.fixture(scope="session")
def breast_dir() -> Path:
    """The Breast-Lesions-USG cohort (Pawłowska et al., Sci Data 2024; CC BY 4.0)."""
    if not (BREAST / "images").is_dir():
        pytest.skip(f"BrEaST cohort not found at {BREAST}")
    return BREAST


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    if not GOLDEN.is_dir():
        pytest.skip(f"golden files not found at {GOLDEN}")
    return GOLDEN


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    """A small synthetic demo cohort (40 lesions), written once per test session."""
    from srnomogram.data import demo_cohort

    path = tmp_path_factory.mktemp("demo")
    demo_cohort(path, n=40, seed=0)
    return path


@pytest.fixture(scope="session")
def dask_cluster():
    """A ``dask.distributed.LocalCluster`` of 2 single-thread worker processes on the loopback interface."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0", processes=True) as cluster:
        yield cluster


@pytest.fixture
def torch_threads_of_workers(dask_cluster):
    """Run this process's torch with the workers' thread count (Dask starts them with OMP_NUM_THREADS=1).

    A float32 convolution sums in another order with another thread count on some kernel paths (measured:
    PyTorch's AVX2 kernels with 2 threads here against 1 on the workers put CNN scores 1e-6 apart), so
    the cluster-equals-local tests compare like with like; the README says what a real cluster gives.
    """
    import torch
    from distributed import Client

    with Client(dask_cluster.scheduler_address) as client:
        counts = set(client.run(torch.get_num_threads).values())
    assert len(counts) == 1, counts
    before = torch.get_num_threads()
    torch.set_num_threads(counts.pop())
    yield
    torch.set_num_threads(before)


@pytest.fixture()
def lock_holder():
    """``hold(folder)``: a context manager in which another process holds ``folder``'s output lock
    (:func:`srnomogram.utils.output_lock`); yields that process (its ``pid``)."""
    import contextlib
    import subprocess
    import sys

    script = ("import sys\nfrom srnomogram.utils import output_lock\n"
              "with output_lock(sys.argv[1], 'run'):\n    print('held', flush=True)\n    sys.stdin.read()\n")

    @contextlib.contextmanager
    def hold(folder):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "python"), os.environ.get("PYTHONPATH", "")])}
        proc = subprocess.Popen([sys.executable, "-c", script, str(folder)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, encoding="utf-8", env=env)
        try:
            assert proc.stdout.readline().strip() == "held"
            yield proc
        finally:
            proc.kill()
            proc.wait()

    return hold
