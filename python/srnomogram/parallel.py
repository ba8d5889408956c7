"""Where independent per-lesion tasks run: in this process, in local worker processes, or on a Dask cluster.

One function, :func:`imap_unordered`, runs ``func(*task)`` for every task and yields the results
as they finish, so the caller's progress bar advances the same way wherever the work runs:

* no scheduler, ``jobs=1`` (or a single task): in this process;
* no scheduler, otherwise: ``jobs`` local worker processes (joblib's loky backend);
* a scheduler address: the workers of a running ``dask.distributed`` cluster, through joblib's
  Dask backend (the cluster's worker threads set the parallelism; ``jobs`` is not used).

The scheduler address comes from the caller (``--scheduler`` on the command line,
``study.scheduler`` in a study file) or else from the ``DASK_SCHEDULER_ADDRESS`` environment
variable, the variable Dask itself reads; ``"local"`` runs locally whatever the environment says
(what a task already running on a cluster worker passes on, so that it never waits on the cluster
it occupies). Every task computes the same function on the same
inputs wherever it runs, so a cluster gives the same numbers as a local run, provided its
workers run the same versions of srnomogram and of the libraries that compute the numbers:
this is checked on every worker before any task is sent.

The workers read the images, masks and cache folders by the paths the caller gives, so a
cluster needs a filesystem shared by the client and every worker, mounted at the same paths.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator

from .errors import ClusterError, param_error

#: Environment variable naming the scheduler when the caller gives none (Dask reads the same one).
SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"
#: The address that means "run locally", whatever ``$DASK_SCHEDULER_ADDRESS`` says.
LOCAL = "local"
#: Packages whose versions must match between this process and every worker.
CHECKED_PACKAGES = ("srnomogram", "pyradiomics", "numpy", "scipy", "SimpleITK")


def resolve_scheduler(scheduler: str | None = None) -> str | None:
    """The Dask scheduler address to use: ``scheduler``, else ``$DASK_SCHEDULER_ADDRESS``, else None (local).

    ``"local"`` (:data:`LOCAL`) gives None without reading the environment.
    """
    if isinstance(scheduler, str) and scheduler.strip().lower() == LOCAL:
        return None
    if scheduler is None:
        scheduler = os.environ.get(SCHEDULER_ENV) or None
        if scheduler is None:
            return None
    if not isinstance(scheduler, str) or not scheduler.strip():
        raise param_error("scheduler", "imap_unordered", "a Dask scheduler address such as 'tcp://host:8786', 'local' or None", scheduler)
    return scheduler.strip()


def package_versions(packages=CHECKED_PACKAGES) -> dict:
    """Versions of ``packages`` in this process (None for one not installed).

    Module-level so that a Dask worker can run it (``Client.run``): a worker that cannot import
    srnomogram fails here, before any lesion is sent to it.
    """
    from importlib import metadata

    from . import __version__

    out = {}
    for name in packages:
        if name == "srnomogram":
            out[name] = __version__
            continue
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def connect(scheduler: str, timeout: float | None = None, packages=CHECKED_PACKAGES):
    """A ``distributed.Client`` on ``scheduler`` whose every worker runs this process's versions of ``packages``.

    ``timeout`` (seconds) bounds the wait for the scheduler and for a first worker; None takes
    Dask's own connection timeout (``distributed.comm.timeouts.connect``, 30 s by default; set
    ``DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT`` to change it).

    Raises
    ------
    ClusterError
        When dask.distributed is not installed, the scheduler does not answer, no worker joins
        within ``timeout`` seconds, or a worker runs other versions (or cannot import srnomogram).
    """
    try:
        import dask
        from distributed import Client
    except ImportError:
        raise ClusterError(
            f"A Dask scheduler was given ({scheduler}) but dask.distributed is not installed. "
            "Install it with pip install 'srnomogram[dask]', or unset the scheduler to run locally."
        ) from None
    if timeout is None:
        timeout = dask.utils.parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), default="seconds")
    _probe(scheduler, timeout)
    try:
        client = Client(scheduler, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise _unreachable(scheduler, exc) from None
    try:
        try:
            client.wait_for_workers(1, timeout=timeout)
        except (TimeoutError, OSError):
            raise ClusterError(f"The Dask scheduler at {scheduler} has no worker after {timeout:g} s. Start one with 'dask worker {scheduler}'.") from None
        try:
            remote = client.run(package_versions, tuple(packages))
        except Exception as exc:  # a worker that cannot unpickle the function cannot import srnomogram
            raise ClusterError(
                f"A Dask worker of {scheduler} cannot run srnomogram ({type(exc).__name__}: {exc}). "
                "Install the same srnomogram on every worker."
            ) from None
        here = package_versions(tuple(packages))
        for worker, versions in sorted(remote.items()):
            diff = [f"{k} {versions.get(k)} (here {v})" for k, v in here.items() if versions.get(k) != v]
            if diff:
                raise ClusterError(
                    f"Dask worker {worker} runs other versions than this process: {', '.join(diff)}. "
                    "Install the same versions on every worker so that the cluster gives the same numbers."
                )
    except BaseException:
        client.close()
        raise
    return client


def _unreachable(scheduler, exc) -> ClusterError:
    return ClusterError(
        f"Could not reach the Dask scheduler at {scheduler} ({type(exc).__name__}: {exc}). "
        f"Start one with 'dask scheduler' and 'dask worker {scheduler}', or unset --scheduler / study.scheduler / {SCHEDULER_ENV}."
    )


def _probe(scheduler: str, timeout: float) -> None:
    """Check, within ``timeout`` seconds in all, that a Dask scheduler answers at a ``tcp://`` address.

    ``distributed.Client`` bounds the TCP connection by its timeout but not the handshake after it: a
    service that accepts and stays silent makes it wait for minutes, and one that answers in another
    protocol makes it read a length prefix such as 3.07 EiB and fail allocating it. So first a plain TCP
    connection, then Dask's handshake and an ``identity`` request, all under one deadline, on a thread of
    its own (the caller may be inside an event loop). Other protocols (``tls://`` needs the security
    settings, ``ucx://``, ...) are left to ``Client``.

    Raises
    ------
    ClusterError
        "Could not reach the Dask scheduler at ADDR" (nothing listens there) or "There is no Dask
        scheduler at ADDR" (something else answers, or nothing does after the connection).
    """
    import asyncio
    import socket
    import time
    from concurrent.futures import ThreadPoolExecutor

    from distributed.comm import connect as comm_connect
    from distributed.comm.addressing import get_address_host_port, parse_address
    from distributed.core import send_recv

    try:
        scheme, _ = parse_address(scheduler)
        if scheme != "tcp":
            return
        host, port = get_address_host_port(scheduler)
    except ValueError as exc:
        raise _unreachable(scheduler, exc) from None
    deadline = time.monotonic() + timeout
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:  # refused, no route, timed out
        raise _unreachable(scheduler, exc) from None

    async def identity():
        comm = await comm_connect(scheduler, timeout=max(deadline - time.monotonic(), 0.1))
        try:
            return await send_recv(comm, op="identity")
        finally:
            comm.abort()

    def ask():
        return asyncio.run(asyncio.wait_for(identity(), max(deadline - time.monotonic(), 0.1)))

    reason = None
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="srnomogram-probe") as pool:
            reply = pool.submit(ask).result()
    except (TimeoutError, asyncio.TimeoutError):
        reason = f"it accepts connections but sent no Dask handshake within {timeout:g} s"
    except Exception as exc:  # a garbage length prefix (MemoryError), a closed stream, a bad message, ...
        reason = f"it does not speak Dask's protocol ({type(exc).__name__})"
    else:
        kind = reply.get("type") if isinstance(reply, dict) else None
        if kind != "Scheduler":
            reason = f"it is a Dask {kind}, not a scheduler" if isinstance(kind, str) else "it does not answer as a Dask scheduler"
    if reason:
        raise ClusterError(
            f"There is no Dask scheduler at {scheduler}: {reason[:120]}. Check the address (a scheduler logs "
            f"'Scheduler at: tcp://HOST:PORT'), or unset --scheduler / study.scheduler / {SCHEDULER_ENV} to run locally."
        )


def imap_unordered(func: Callable, tasks: Iterable[tuple], jobs: int | None = None, scheduler: str | None = None, packages=CHECKED_PACKAGES) -> Iterator:
    """Yield ``func(*task)`` for every task, in the order the tasks finish.

    Parameters
    ----------
    func : callable
        A module-level function (it is pickled to the workers).
    tasks : iterable of tuples
        Positional arguments of each call; plain, picklable data (paths, numbers, tuples).
    jobs : int or None
        Local worker processes: None (or -1) the thread setting (:func:`srnomogram.set_threads`; by default
        the cores this process may use), 1 this process. Not used on a cluster.
    scheduler : str or None
        Dask scheduler address (``tcp://host:8786``); None reads ``$DASK_SCHEDULER_ADDRESS`` and
        runs locally when it is unset; ``"local"`` runs locally. See the module notes.
    packages : sequence of str
        Distributions whose versions every worker must share with this process (add ``"torch"``
        for a task that runs a network).

    Raises
    ------
    ClusterError
        When a scheduler is given but cannot be used (see :func:`connect`).
    """
    from joblib import Parallel, delayed, parallel_config

    from ._threads import current_threads

    tasks = list(tasks)
    address = resolve_scheduler(scheduler)
    if not tasks:
        return
    if address is None:
        # None or -1: the thread setting (srnomogram.set_threads), not every core of the machine
        n_jobs = current_threads() if jobs is None or int(jobs) == -1 else int(jobs)
        if n_jobs == 1 or len(tasks) == 1:
            for t in tasks:
                yield func(*t)
            return
        yield from Parallel(n_jobs=n_jobs, backend="loky", return_as="generator_unordered")(delayed(func)(*t) for t in tasks)
        return
    client = connect(address, packages=packages)
    try:
        with parallel_config(backend="dask", client=client):
            yield from Parallel(return_as="generator_unordered")(delayed(_on_worker)(func, *t) for t in tasks)
    finally:
        client.close()


def _on_worker(func, *args):
    """``func(*args)`` on a cluster worker, with joblib's local backend inside.

    joblib's Dask backend makes every joblib loop inside a task send its own tasks to the same
    cluster; a task that occupies a worker thread and waits for them can wait forever (a repeated
    split's seed runs whole studies). Inside a task, work stays on that worker.
    """
    from joblib import parallel_config

    with parallel_config(backend="loky"):
        return func(*args)
