"""One process at a time in a folder: a run's lock, through ``filelock``.

``filelock.FileLock`` holds an OS lock (``flock`` on Unix) on the lock file. The operating system
drops it when the holder exits, however it exits (a kill, a crashed node on a network file system
that supports locks), so there is no stale lock to detect and no process id to read. The file itself
stays after a release; its presence means nothing.
"""
from __future__ import annotations

from pathlib import Path

from filelock import FileLock, Timeout


class RunLock:
    """A non-blocking lock on ``path``: :meth:`acquire` is False when another live process holds it."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = FileLock(str(self.path), timeout=0)

    @property
    def held(self) -> bool:
        return self._lock.is_locked

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except Timeout:
            return False
        return True

    def release(self) -> None:
        if self._lock.is_locked:
            self._lock.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
