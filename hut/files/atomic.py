"""One atomic write for every file the suite writes (records, checkpoints, tables, caches).

:func:`write_atomic` writes a temporary file in the destination's folder, flushes and fsyncs it, then
renames it over the destination, so a reader (or a rerun after a kill) sees the old file or the new
one, never half of one; a failed write (a full disk) leaves the old file as it was and names the file.
"""
from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable

from hut.runtime import faults

# Errors of the disk itself (full, over quota, read-only, failing): no further write is tried; the
# files are left as the last good write made them.
DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO}


def write_atomic(path: str | os.PathLike, data: bytes | str | Callable[[IO[bytes]], Any]) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over ``path``.

    ``data``: bytes, text (UTF-8), or a function that writes to the open binary file (``torch.save``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's file is 0600; results are read by others
        faults.point(f"write:{path.name}")
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.errno is not None:  # name the file (a full disk, a read-only folder)
            raise OSError(e.errno, f"cannot write {path}: {e.strerror}") from None
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(o: Any):
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def remove_partial_writes(directory: Path) -> list[Path]:
    """Delete the temporary files a writer killed mid-write left (never read; only swept up)."""
    gone = []
    for p in Path(directory).glob(".*.tmp"):
        p.unlink(missing_ok=True)
        gone.append(p)
    return gone


def is_disk_error(err: BaseException) -> bool:
    """A full, read-only or failing disk: nothing more should be written (the files stay as they are)."""
    return isinstance(err, OSError) and err.errno in DISK_ERRORS


def check_writable(directory: Path, key: str = "results_dir") -> None:
    """Fail before any work if ``directory`` cannot be written (``key``: the setting that names it)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".write-test-"):
            pass
    except OSError as e:
        raise PermissionError(f"{key}: cannot write to {directory} ({e.strerror})") from None
