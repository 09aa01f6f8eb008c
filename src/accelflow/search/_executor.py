"""Where evaluations run: a narrow executor interface and three implementations.

``submit(fn, params)`` returns a standard :class:`concurrent.futures.Future`, whatever the engine, so the
search loop waits on futures in one way. The study lives only in the launching process: workers evaluate
``fn(params)`` and never touch the storage.

>>> with SerialExecutor() as ex:
...     ex.submit(abs, -3).result()
3
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable
from types import TracebackType
from typing import Any

from accelflow.search._errors import SearchError

__all__ = ["Executor", "SerialExecutor", "ProcessPoolExecutor", "DaskExecutor", "make_executor"]

log = logging.getLogger(__name__)


class Executor(ABC):
    """Runs ``fn(params)`` somewhere and returns a future; ``n_workers`` evaluations may be in flight."""

    n_workers: int = 1

    @abstractmethod
    def submit(self, fn: Callable[[Any], Any], params: Any) -> cf.Future[Any]:
        """Start evaluating ``fn(params)``; the future holds its result or its exception."""

    def close(self) -> None:  # noqa: B027  (optional hook; the serial executor holds nothing)
        """Release workers (idempotent)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class SerialExecutor(Executor):
    """Evaluates in the calling process, at submit time (the reference implementation)."""

    n_workers = 1

    def submit(self, fn: Callable[[Any], Any], params: Any) -> cf.Future[Any]:
        fut: cf.Future[Any] = cf.Future()
        try:
            fut.set_result(fn(params))
        except Exception as exc:  # the loop records it as a failed trial
            fut.set_exception(exc)
        return fut


def _share_cores(threads: int) -> None:
    """Worker initialiser: cap math-library threads so N workers do not oversubscribe the cores (PyTorch
    and OpenMP default to one thread per core in *every* process, like Dask's nanny we set them)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


class ProcessPoolExecutor(Executor):
    """``n_workers`` local processes (standard library, spawn context: no fork of a threaded parent), each
    limited to its share of the cores for PyTorch/OpenMP threads."""

    def __init__(self, n_workers: int) -> None:
        if n_workers < 1:
            raise SearchError(f"--workers must be >= 1, got {n_workers}")
        self.n_workers = n_workers
        threads = max(1, (os.cpu_count() or 1) // n_workers)
        self._pool = cf.ProcessPoolExecutor(n_workers, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_share_cores, initargs=(threads,))

    def submit(self, fn: Callable[[Any], Any], params: Any) -> cf.Future[Any]:
        return self._pool.submit(fn, params)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor(Executor):
    """Dask distributed: a local cluster of ``n_workers`` single-threaded processes, or an existing
    scheduler at ``address`` (e.g. ``tcp://10.0.0.5:8786``; its worker count sets ``n_workers``)."""

    def __init__(self, n_workers: int | None = None, address: str | None = None) -> None:
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError as exc:
            raise SearchError(f"Dask is not installed ({exc}); pip install 'dask[distributed]'") from None
        self._cluster: Any = None
        if address is None:
            if n_workers is None or n_workers < 1:
                raise SearchError(f"a local Dask cluster needs n_workers >= 1, got {n_workers}")
            self._cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                         dashboard_address=None)
            self._client = Client(self._cluster)
        else:
            try:
                self._client = Client(address, timeout=30)
            except (OSError, TimeoutError) as exc:
                raise SearchError(f"--scheduler {address!r}: cannot connect ({exc})") from None
        workers = len(self._client.scheduler_info().get("workers", {}))
        self.n_workers = n_workers or max(workers, 1)
        log.info("Dask client %s with %d worker(s)", self._client.dashboard_link or address, workers)

    def submit(self, fn: Callable[[Any], Any], params: Any) -> cf.Future[Any]:
        out: cf.Future[Any] = cf.Future()
        task = self._client.submit(fn, params, pure=False)

        def _done(f: Any) -> None:
            try:
                out.set_result(f.result())
            except Exception as exc:  # evaluation error, or a worker lost
                out.set_exception(exc)

        task.add_done_callback(_done)
        out.dask_future = task  # type: ignore[attr-defined]  # keep a reference so Dask keeps the task
        return out

    def close(self) -> None:
        if getattr(self, "_client", None) is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            # Nannies warn when they kill idle worker processes at shutdown; that is the intended end.
            nanny = logging.getLogger("distributed.nanny")
            level = nanny.level
            nanny.setLevel(logging.ERROR)
            try:
                self._cluster.close()
            finally:
                nanny.setLevel(level)
            self._cluster = None


def make_executor(workers: int = 1, scheduler: str | None = None) -> Executor:
    """The executor behind ``--workers N`` / ``--scheduler ADDRESS``: serial for 1 worker, a process pool
    for more, Dask when a scheduler address (or ``local``, a local Dask cluster) is given."""
    if workers < 1:
        raise SearchError(f"--workers must be >= 1, got {workers}")
    if scheduler == "local":
        return DaskExecutor(n_workers=workers)
    if scheduler:
        return DaskExecutor(address=scheduler)
    return SerialExecutor() if workers == 1 else ProcessPoolExecutor(workers)
