"""A run's record (``metrics.json``): its one schema, reading it back, its fingerprint, the files beside it.

The schema is INTERFACE.md's: ``schema_version``, ``status`` (running · success · failed), ``task``,
``method``, ``model``, ``seed``, ``best``, ``last``, ``history``, ``params``, ``wall_time_s``,
``git_sha``, ``versions``, ``config`` (resolved, credentials scrubbed), and this suite's own fields
(``fingerprint``, ``overrides``, ``eval_subset``, ``device``, ``weights``, ``steps``, ``error``).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Mapping

from hut.files.atomic import write_atomic
from hut.runs.identity import fingerprint
from hut.runtime.provenance import git_sha, versions
from hut.runs.paths import RunPaths

# 2: + fingerprint, overrides, eval_subset, device; history rows carry train_loss. 1 is still read.
# Later fields, optional to readers: `device` as a dict (hut.runtime.device.describe; a string before),
# `weights` (hut.models.weights_identity; null for a model built from config).
SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)
# Credential-like keys (but not e.g. `max_new_tokens`, a decoding setting).
_SECRET_KEY = re.compile(r"(api[_-]?key|secret|passw(or)?d|credential|(^|_)(auth_|access_)?token$)", re.I)


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
    if rec.get("fingerprint"):
        return str(rec["fingerprint"])
    return fingerprint(rec["config"]) if isinstance(rec.get("config"), dict) else None


def summary(rec: Mapping[str, Any]) -> str:
    """One line: the best epoch's metrics, the adapter's parameters, the wall time."""
    best = rec.get("best") or {}
    metric = ", ".join(f"{k}={v:.4f}" for k, v in best.items() if k not in ("epoch", "step", "train_loss")
                       and isinstance(v, float))
    p = rec.get("params") or {}
    return (f"best epoch {best.get('epoch')}: {metric}; adapter params {p.get('adapter', 0):,}; "
            f"{rec.get('wall_time_s', 0):.0f}s")


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
