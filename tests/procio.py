"""Reading a child process's output line by line with a deadline.

``select`` on a text pipe lies once Python has buffered several lines, so a
thread pumps lines into a queue and the test waits on the queue.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import IO


class Lines:
    def __init__(self, stream: IO[str]) -> None:
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, needle: str, *, count: int = 1, timeout: float = 120) -> str:
        """The ``count``-th line containing ``needle``; fails past ``timeout`` or at EOF."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"saw {seen} of {count} lines with {needle!r} in {timeout} s") from None
            if line is None:
                raise AssertionError(f"the process ended after {seen} of {count} lines with {needle!r}")
            if needle in line:
                seen += 1
                if seen == count:
                    return line.strip()
