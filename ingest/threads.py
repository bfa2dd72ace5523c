"""Two helpers that let the pass use both cores: the heavy parts (zstd, sha256, file
writes) release the GIL, so running them beside the Python routing overlaps real work.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
_DONE = object()


class BackgroundWriter:
    """Runs submitted calls one at a time, in order, on one thread.

    The queue is bounded, so a slow disk slows the producer instead of growing memory. The
    first exception a call raises is re-raised by the next ``submit`` or by ``drain``.
    """

    def __init__(self, depth: int = 32) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="drivecat-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            fn, args, always = item
            if always:
                fn(*args)
            elif self._error is None:
                try:
                    fn(*args)
                except BaseException as err:  # handed to the submitting thread
                    self._error = err

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        self._raise()
        self._queue.put((fn, args, False))

    def drain(self) -> None:
        """Wait for everything submitted so far; re-raise a failure."""
        if self._closed:
            return
        done = threading.Event()
        self._queue.put((done.set, (), True))
        done.wait()
        self._raise()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put(_DONE)
            self._thread.join()


def prefetch(source: Iterator[T], batch: int = 256, depth: int = 4) -> Iterator[T]:
    """Iterate ``source`` on a background thread, ``batch`` items at a time.

    The reader (decompressing chunks) then runs beside the consumer. At most ``depth``
    batches wait in memory. An exception in ``source`` is re-raised in the consumer;
    closing the returned generator early stops the thread.
    """
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            items: list[T] = []
            for item in source:
                items.append(item)
                if len(items) >= batch:
                    if not put(items):
                        return
                    items = []
            if items:
                put(items)
            put(_DONE)
        except BaseException as err:
            put(err)

    thread = threading.Thread(target=produce, name="drivecat-reader", daemon=True)
    thread.start()
    try:
        while True:
            got = q.get()
            if got is _DONE:
                return
            if isinstance(got, BaseException):
                raise got
            yield from got
    finally:
        stop.set()
        thread.join()
