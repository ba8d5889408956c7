"""Shared fixtures: the real BrEaST cohort (from ../shared, never copied in) and the demo cohort."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("SRNOMOGRAM_SHARED", REPO.parent / "shared"))
BREAST = SHARED / "data" / "breast-lesions-usg"
GOLDEN = SHARED / "golden"


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
