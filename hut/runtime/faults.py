"""Fault injection for the suite's own tests: ``HUT_FAULT="<action>:<point>:<n>[;...]"``.

Off unless the environment variable is set, and then only at the named points; :func:`point` is one
dictionary lookup on a module constant otherwise. Points the code reaches:

* ``step``: after each optimiser step;
* ``eval``: after each evaluation batch (GLUE forward, E2E beam-search batch);
* ``write:<file name>``: inside :func:`hut.files.atomic.write_atomic`, after the temporary file is written
  and synced, before it replaces ``<file name>`` (``metrics.json``, ``checkpoint.pt``, ...).

Actions, at the ``n``-th time (1-based) this process reaches the point:

* ``kill``: SIGKILL this process (nothing is cleaned up, as when a machine dies);
* ``enospc``: raise ``OSError(ENOSPC)`` (a full disk);
* ``delay``: sleep ``n`` seconds at *every* time instead (lets a test overlap two launches).
"""
from __future__ import annotations

import errno
import os
import signal
import time

ACTIONS = ("kill", "enospc", "delay")


def _parse(spec: str | None) -> dict[str, tuple[str, float]]:
    plan: dict[str, tuple[str, float]] = {}
    for part in filter(None, (spec or "").split(";")):
        action, _, rest = part.partition(":")
        name, _, n = rest.rpartition(":")
        if action not in ACTIONS or not name or not n:
            raise ValueError(f"HUT_FAULT: bad entry {part!r}; expected <{'|'.join(ACTIONS)}>:<point>:<n>")
        plan[name] = (action, float(n))
    return plan


_PLAN = _parse(os.environ.get("HUT_FAULT"))
_SEEN: dict[str, int] = {}


def point(name: str) -> None:
    """Mark that this process reached ``name``; act if ``HUT_FAULT`` says so."""
    if not _PLAN or name not in _PLAN:
        return
    action, n = _PLAN[name]
    if action == "delay":
        time.sleep(n)
        return
    _SEEN[name] = _SEEN.get(name, 0) + 1
    if _SEEN[name] != int(n):
        return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    raise OSError(errno.ENOSPC, f"No space left on device (HUT_FAULT at {name})")
