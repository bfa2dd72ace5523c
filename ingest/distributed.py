"""Many drives on a Dask cluster: each task ingests one drive, the client commits.

Each task runs :func:`ingest.run.prepare_drive` on a worker: one pass over one drive into a
temporary folder of the shared store. It returns the drive's catalog rows as Arrow tables.
The client commits each drive in its own transaction as its result arrives, under the
store's writer lock and on a connection opened for that commit, exactly as a serial run
would (DuckDB has one writer; other processes read and commit between two drives).

``workers=N`` starts a ``LocalCluster`` bound to 127.0.0.1; ``scheduler="tcp://host:8786"``
uses an existing cluster, whose workers must see the store and the inputs at the same paths
(a shared filesystem).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from drivecat.ingest.errors import IngestError
from drivecat.ingest.run import (
    IngestOptions,
    IngestResult,
    Prepared,
    commit_locked,
    failed,
    prepare_drives,
    sweep_and_snapshot,
)


def _task(path: str, options: IngestOptions, known: Mapping[str, str]) -> list[Prepared]:
    return prepare_drives(Path(path), options, known)


@contextmanager
def _client(workers: int | None, scheduler: str | None) -> Iterator[Any]:
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise IngestError(
            "distributed ingest needs dask.distributed: pip install 'drivecat[distributed]'"
        ) from None
    if scheduler:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as err:
            raise IngestError(f"{scheduler}: cannot reach the Dask scheduler: {err}") from None
        with client:
            yield client
        return
    cluster = LocalCluster(
        n_workers=workers or 1,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=50,
    )
    with cluster, Client(cluster) as client:
        yield client


def ingest_distributed(
    paths: Sequence[Path],
    options: IngestOptions,
    workers: int | None = None,
    scheduler: str | None = None,
) -> Iterator[IngestResult]:
    """Ingest ``paths`` as tasks on Dask; yield each drive's result as it is committed.

    A drive that fails, for whatever reason, yields a ``failed`` result naming the file,
    as on the serial path.
    """
    from dask.distributed import as_completed

    store = Path(options.store)
    known = sweep_and_snapshot(store)
    with _client(workers, scheduler) as client:
        futures = {client.submit(_task, str(p), options, known, pure=False): str(p) for p in paths}
        for future in as_completed(futures):
            path = futures[future]
            try:
                for prepared in future.result():
                    yield commit_locked(store, prepared, options.force)
            except Exception as err:  # as on the serial path: this drive fails alone
                yield failed(path, err)
