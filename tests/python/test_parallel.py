"""srnomogram.parallel: local processes or a Dask cluster, chosen by a scheduler address."""

from __future__ import annotations

import os

import pytest

import srnomogram
from srnomogram import parallel
from srnomogram.errors import ClusterError, InputError


def test_scheduler_comes_from_the_argument_then_the_environment(monkeypatch):
    monkeypatch.delenv(parallel.SCHEDULER_ENV, raising=False)
    assert parallel.resolve_scheduler(None) is None
    monkeypatch.setenv(parallel.SCHEDULER_ENV, "tcp://10.0.0.1:8786")
    assert parallel.resolve_scheduler(None) == "tcp://10.0.0.1:8786"
    assert parallel.resolve_scheduler(" tcp://h:1 ") == "tcp://h:1"
    assert parallel.resolve_scheduler("local") is None  # 'local' ignores the variable
    assert parallel.resolve_scheduler(" LOCAL ") is None
    monkeypatch.setenv(parallel.SCHEDULER_ENV, "")
    assert parallel.resolve_scheduler(None) is None
    with pytest.raises(InputError, match="'scheduler' parameter of imap_unordered must be a Dask scheduler address"):
        parallel.resolve_scheduler(8786)


def test_local_runs_give_every_result(monkeypatch):
    monkeypatch.delenv(parallel.SCHEDULER_ENV, raising=False)
    tasks = [(i, 7) for i in range(20)]
    expected = sorted(divmod(*t) for t in tasks)
    assert sorted(parallel.imap_unordered(divmod, tasks, jobs=1)) == expected
    assert sorted(parallel.imap_unordered(divmod, tasks, jobs=2)) == expected
    assert list(parallel.imap_unordered(divmod, [], jobs=2)) == []


def test_tasks_run_on_the_cluster_workers(dask_cluster, monkeypatch):
    from distributed import Client

    monkeypatch.delenv(parallel.SCHEDULER_ENV, raising=False)
    with Client(dask_cluster.scheduler_address) as client:
        worker_pids = set(client.run(os.getpid).values())
    assert len(worker_pids) == 2 and os.getpid() not in worker_pids
    pids = list(parallel.imap_unordered(os.getpid, [()] * 12, jobs=1, scheduler=dask_cluster.scheduler_address))
    assert len(pids) == 12 and set(pids) <= worker_pids
    # the environment variable alone sends the tasks there too
    monkeypatch.setenv(parallel.SCHEDULER_ENV, dask_cluster.scheduler_address)
    assert set(parallel.imap_unordered(os.getpid, [()] * 4, jobs=1)) <= worker_pids


def test_unreachable_scheduler_is_a_one_line_cluster_error():
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ClusterError, match=rf"Could not reach the Dask scheduler at tcp://127.0.0.1:{port} .*Start one with 'dask scheduler'"):
        parallel.connect(f"tcp://127.0.0.1:{port}", timeout=1)


def test_workers_with_other_versions_are_refused(dask_cluster, monkeypatch):
    monkeypatch.setattr(srnomogram, "__version__", "0.0.0-not-the-workers")
    with pytest.raises(ClusterError, match=r"Dask worker tcp://127\.0\.0\.1:\d+ runs other versions than this process: srnomogram .* \(here 0\.0\.0-not-the-workers\)"):
        parallel.connect(dask_cluster.scheduler_address, timeout=10)


def test_scheduler_without_workers_is_a_cluster_error():
    from distributed import LocalCluster

    with LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address=":0", processes=True) as empty:
        with pytest.raises(ClusterError, match=r"has no worker after 1 s\. Start one with 'dask worker tcp://127\.0\.0\.1:\d+'"):
            parallel.connect(empty.scheduler_address, timeout=1)


@pytest.fixture(params=["garbage", "silent"])
def not_a_scheduler(request):
    """A plain TCP server on 127.0.0.1 that accepts connections and sends bytes that are not Dask's
    protocol (a length prefix of 3.07 EiB, then text) or nothing at all."""
    import socket
    import threading

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    srv.settimeout(0.2)
    stop = threading.Event()
    held = []

    def serve():
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            held.append(conn)
            if request.param == "garbage":
                try:
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n" * 4)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"tcp://127.0.0.1:{srv.getsockname()[1]}"
    stop.set()
    thread.join()
    for c in held:
        c.close()
    srv.close()


def test_a_service_that_is_not_a_dask_scheduler_fails_fast_in_one_line(not_a_scheduler):
    import time

    pytest.importorskip("distributed")
    t = time.perf_counter()
    with pytest.raises(ClusterError) as info:
        parallel.connect(not_a_scheduler, timeout=2)
    assert time.perf_counter() - t < 6  # the total timeout bounds the handshake too
    msg = str(info.value)
    assert msg.startswith(f"There is no Dask scheduler at {not_a_scheduler}") and "\n" not in msg
    assert "unset --scheduler" in msg
