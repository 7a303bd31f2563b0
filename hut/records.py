"""Run records: where a run writes, the record's schema, one atomic write, attempts, run locks.

One directory per run::

    <results_dir>/<experiment>/<task>/<method_key>/<model>/[<overrides>/]seed=<s>/
        metrics.json            the record (INTERFACE.md), rewritten atomically every epoch
        metrics.attempt<N>.json earlier records kept by force=true
        checkpoint.pt           trainable params, optimiser, scheduler, RNG, data position (while running)
        trainable.safetensors   the trained parameters of a finished run (hut.export.load_run)
        run.lock                held by the live process (pid, host); stale locks are taken over
        predictions.txt, references.txt (E2E)
        dev_predictions.jsonl   one line per epoch: what the task predicted on dev (Task.dev_predictions)

``method_key`` is the method name, or ``<method>-<variant>`` for ablation cells (Tables 4, 5).
``<overrides>`` is present only for a run whose command-line overrides change its result relative
to its experiment's own config (:mod:`hut.identity`), e.g. ``trainer.lr=0.0003``.

Every file is written by :func:`write_atomic`: a temporary file in the same folder, flushed and
fsynced, then renamed over the target, so a reader (or a rerun after a kill) sees the old file or
the new one, never half of one; a failed write (a full disk) leaves the old file as it was.
"""
from __future__ import annotations

import errno
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Mapping

from hut import faults

DEV_PREDICTIONS = "dev_predictions.jsonl"
# 2: + fingerprint, overrides, eval_subset, device; history rows carry train_loss. 1 is still read.
# Later fields, optional to readers: `device` as a dict (hut.runtime.device.describe; a string before),
# `weights` (hut.models.weights_identity; null for a model built from config).
SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)
# Errors of the disk itself (full, over quota, read-only, failing): no further write is tried; the
# files are left as the last good write made them.
DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO}
# Credential-like keys (but not e.g. `max_new_tokens`, a decoding setting).
_SECRET_KEY = re.compile(r"(api[_-]?key|secret|passw(or)?d|credential|(^|_)(auth_|access_)?token$)", re.I)


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


def remove_partial_writes(directory: Path) -> list[Path]:
    """Delete the temporary files a writer killed mid-write left (never read; only swept up)."""
    gone = []
    for p in Path(directory).glob(".*.tmp"):
        p.unlink(missing_ok=True)
        gone.append(p)
    return gone


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
    overrides: str | None = None  # the override-variant folder (hut.identity.variant_folder), if any

    @property
    def dir(self) -> Path:
        d = Path(self.results_dir) / self.experiment / self.task / self.method_key / self.model
        return (d / self.overrides if self.overrides else d) / f"seed={self.seed}"

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
    def trainable(self) -> Path:
        return self.dir / "trainable.safetensors"

    @property
    def dev_predictions(self) -> Path:
        return self.dir / DEV_PREDICTIONS

    @property
    def key(self) -> str:
        return Path(self.dir).relative_to(self.results_dir).as_posix()


def save_epoch_predictions(path: Path, epoch: int, saved: Mapping[str, Any]) -> None:
    """Add one epoch's dev predictions (a JSON line ``{"epoch": e, ...}``) to ``path``, atomically.

    Lines of this epoch or later (left by a run that was killed and resumed) are replaced, so the file
    always holds epochs 1..e of the run that wrote the record.
    """
    keep = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and int(json.loads(line).get("epoch", 0)) < epoch:
                keep.append(line)
    keep.append(json.dumps({"epoch": int(epoch), **saved}, separators=(",", ":")))
    write_atomic(path, "\n".join(keep) + "\n")


def read_epoch_predictions(path: Path) -> list[dict]:
    """The per-epoch dev predictions of a run (epoch order); [] if the run kept none."""
    if not Path(path).exists():
        return []
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    return sorted(rows, key=lambda r: int(r["epoch"]))


def new_record(container: Mapping[str, Any], paths: RunPaths, *, fingerprint: str,
               overrides: Mapping[str, Any] | None, **fields: Any) -> dict[str, Any]:
    """The record of a run as it starts (status ``running``); the trainer fills in the rest.

    ``container``: the resolved, scrubbed config. The one place a record's schema is written down.
    """
    cfg = container
    rec: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION, "status": "running", "experiment": paths.experiment,
        "task": str(cfg["task"]["name"]), "method": str(cfg["method"]["name"]), "variant": cfg.get("variant"),
        "model": str(cfg["model"]["name"]), "seed": int(cfg["seed"]), "fingerprint": fingerprint,
        "overrides": dict(overrides) if overrides else None, "best": None, "last": None, "history": [],
        "params": None, "wall_time_s": 0.0, "git_sha": git_sha(), "versions": versions(), "pid": os.getpid(),
        "config": dict(cfg),
    }
    rec.update(fields)
    return rec


def record_fingerprint(rec: Mapping[str, Any]) -> str | None:
    """A record's fingerprint: stored (schema 2), or recomputed from its stored config (schema 1)."""
    from hut.identity import fingerprint

    if rec.get("fingerprint"):
        return str(rec["fingerprint"])
    return fingerprint(rec["config"]) if isinstance(rec.get("config"), dict) else None


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


def versions(packages: tuple[str, ...] = ("hut-suite", "torch", "transformers", "peft", "accelerate", "datasets",
                                          "hydra-core", "numpy")) -> dict[str, str]:
    """Python's and the given packages' versions (the ones a result depends on)."""
    import importlib.metadata as md

    out = {"python": sys.version.split()[0]}
    for pkg in packages:
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
