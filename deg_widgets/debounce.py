"""``Debouncer``: run a callback once, a while after the last of a burst of events."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

__all__ = ["Debouncer"]


class Debouncer:
    """Run ``fn`` once, ``delay`` seconds after the last :meth:`kick`.

    In a kernel the call is scheduled on the running asyncio loop (the thread that
    handles widget messages, so no locking against edits is needed); without a running
    loop (scripts, tests) a ``threading.Timer`` runs it.
    """

    def __init__(self, delay: float, fn: Callable[[], None]):
        self.delay = delay
        self.fn = fn
        self._handle: asyncio.TimerHandle | threading.Timer | None = None

    def kick(self) -> None:
        self.cancel()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            timer = threading.Timer(self.delay, self.fn)
            timer.daemon = True
            timer.start()
            self._handle = timer
        else:
            self._handle = loop.call_later(self.delay, self.fn)

    @property
    def pending(self) -> bool:
        h = self._handle
        if isinstance(h, threading.Timer):
            return h.is_alive()
        return h is not None and not h.cancelled()

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
