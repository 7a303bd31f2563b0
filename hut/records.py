"""Run records: where a run writes, atomic JSON, skip-done, numbered attempts, run locks.

One directory per run::

    <results_dir>/<experiment>/<task>/<method_key>/<model>/seed=<s>/
        metrics.json            the record (INTERFACE.md), rewritten atomically every epoch
        metrics.attempt<N>.json earlier records kept by force=true
        checkpoint.pt           trainable params, optimiser, scheduler, RNG, data position
        run.lock                held by the live process (pid, host); stale locks are taken over
        predictions.txt, references.txt (E2E)

``method_key`` is the method name, or ``<method>-<variant>`` for ablation cells (Tables 4, 5).
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
# Credential-like keys (but not e.g. `max_new_tokens`, a decoding setting).
_SECRET_KEY = re.compile(r"(api[_-]?key|secret|passw(or)?d|credential|(^|_)(auth_|access_)?token$)", re.I)


def write_atomic(path: str | os.PathLike, data: bytes | str) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(o: Any):
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


class CorruptRecord(ValueError):
    pass


def read_record(path: str | os.PathLike) -> dict:
    """Load a record; a truncated or non-object file raises CorruptRecord naming the path."""
    try:
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
    except json.JSONDecodeError as e:
        raise CorruptRecord(f"{path}: corrupt or truncated JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(obj, dict):
        raise CorruptRecord(f"{path}: not a JSON object")
    return obj


def scrub_secrets(obj: Any) -> Any:
    """Drop any mapping key that looks like a credential (records and wandb configs never hold one)."""
    if isinstance(obj, dict):
        return {k: scrub_secrets(v) for k, v in obj.items() if not _SECRET_KEY.search(str(k))}
    if isinstance(obj, list):
        return [scrub_secrets(v) for v in obj]
    return obj


@dataclass(frozen=True)
class RunPaths:
    results_dir: Path
    experiment: str
    task: str
    method_key: str
    model: str
    seed: int

    @property
    def dir(self) -> Path:
        return (Path(self.results_dir) / self.experiment / self.task / self.method_key / self.model
                / f"seed={self.seed}")

    @property
    def record(self) -> Path:
        return self.dir / "metrics.json"

    @property
    def checkpoint(self) -> Path:
        return self.dir / "checkpoint.pt"

    @property
    def lock(self) -> Path:
        return self.dir / "run.lock"

    @property
    def key(self) -> str:
        return f"{self.experiment}/{self.task}/{self.method_key}/{self.model}/seed={self.seed}"


def method_key(method_name: str, variant: str | None) -> str:
    return f"{method_name}-{variant}" if variant else method_name


def archive_record(paths: RunPaths) -> Path | None:
    """force=true: keep the previous record as metrics.attempt<N>.json (N = 1, 2, ...)."""
    if not paths.record.exists():
        return None
    n = 1
    while (paths.dir / f"metrics.attempt{n}.json").exists():
        n += 1
    dest = paths.dir / f"metrics.attempt{n}.json"
    os.replace(paths.record, dest)
    return dest


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner_alive(info: dict) -> bool:
    if info.get("host") != socket.gethostname():
        return True  # another machine: we cannot tell, assume alive (a cluster job may hold it)
    return _pid_alive(int(info.get("pid", -1)))


class RunLock:
    """An O_EXCL lock file so two overlapping launches never run the same run at once.

    A lock whose process is gone (same host) is stale and taken over.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.held = False

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = json.dumps({"pid": os.getpid(), "host": socket.gethostname()})
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    info = json.loads(self.path.read_text() or "{}")
                except (OSError, json.JSONDecodeError):
                    info = {}
                if info and _owner_alive(info):
                    return False
                try:  # stale: remove and retry once
                    os.unlink(self.path)
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, "w") as f:
                f.write(me)
            self.held = True
            return True
        return False

    def release(self) -> None:
        if self.held:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            self.held = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def git_sha() -> str | None:
    here = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        sha = out.stdout.strip()
        if out.returncode != 0 or not sha:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": sys.version.split()[0]}
    for pkg in ("hut-suite", "torch", "transformers", "peft", "accelerate", "datasets", "hydra-core", "numpy"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def check_writable(directory: Path) -> None:
    """Fail before training if the results directory cannot be written."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".write-test-"):
            pass
    except OSError as e:
        raise PermissionError(f"results_dir: cannot write to {directory} ({e.strerror})") from None
