"""Decoding ahead of compute: a bounded background thread over any iterator of batches."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

__all__ = ["decode_ahead"]

_DONE = object()


def decode_ahead(batches: Iterator, depth: int) -> Iterator:
    """Run ``batches`` in a background thread, at most ``depth`` items ahead.

    Decoding (PyAV) and numpy copies release the GIL, so they overlap the model.
    The queue bound keeps memory at O(depth) batches however long the video; an
    error in the thread is raised here; closing this generator stops the thread.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in batches:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as e:  # handed to the consumer, raised there
            put(e)
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()  # the generator's `with open_video` releases the decoder here

    thread = threading.Thread(target=work, name="deg-decode", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()
