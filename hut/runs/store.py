"""Which run a config is, whether it may run, and its record: written once per state, by one function each.

    run = identify(cfg, overrides)      the run's one identity: folder, resolved config, weights, fingerprint
    with claim(run) as c:               finished? (skip) another config's? (RunConflict) running elsewhere?
        if c.result is not None:        (skip) else lock it; force=true keeps the old record as an attempt
            return c.result
        record = start(run, ...)        status running
        save(run, record)               after every epoch
        finish(run, record, wall)       status success
    an exception inside ``claim``       status failed, with the reason (:func:`record_failure`)

Every record of a run, running, finished or failed, carries the same fingerprint: the digest of its
resolved config and of the pretrained weights it loads (:func:`hut.runs.identity.fingerprint`,
:func:`hut.models.weights_identity`), made once by :func:`identify`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

from omegaconf import DictConfig, OmegaConf

from hut.files.atomic import check_writable, is_disk_error, remove_partial_writes, write_json_atomic
from hut.files.lock import RunLock
from hut.runs.identity import differences, fingerprint, override_variant
from hut.models import weights_identity
from hut.runs.checkpoint import remove_checkpoint
from hut.runs.paths import RunPaths, run_paths
from hut.runs.record import (CorruptRecord, new_record, read_record, record_fingerprint, save_epoch_predictions,
                             scrub_secrets, summary)


class RunConflict(ValueError):
    """A finished record at this run's path was made by another config: never reused, never overwritten."""


class RunFailed(RuntimeError):
    """The run stopped while training (a non-finite loss): recorded with its reason and step."""

    def __init__(self, reason: str, step: int):
        super().__init__(f"{reason} at step {step}")
        self.reason, self.step = reason, step


@dataclass(frozen=True)
class Run:
    """Which run this is: made once by :func:`identify`, asked by everything that writes its files."""

    paths: RunPaths
    config: dict[str, Any]  # the resolved config, credential-like keys scrubbed (the record's ``config``)
    variant: dict[str, Any] | None  # the result-changing command-line overrides (hut.runs.identity.override_variant)
    weights: dict[str, Any] | None  # hut.models.weights_identity (None: a model built from config)
    fingerprint: str

    @property
    def key(self) -> str:
        return self.paths.key

    @property
    def force(self) -> bool:
        return bool(self.config.get("force"))


def identify(cfg: DictConfig | Mapping[str, Any], overrides: Sequence[str] | None = None) -> Run:
    """The run of a composed config. ``overrides``: the command line's (its override variant, its own
    folder); None for a run composed in code, which is then its experiment's run."""
    resolved = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    container = scrub_secrets(resolved)
    variant = override_variant(container, overrides) if overrides else None
    weights = weights_identity(container["model"])
    fp = fingerprint(container, weights=weights["sha256"] if weights else None)
    return Run(run_paths(container, variant), container, variant, weights, fp)


def finished(run: Run) -> dict | None:
    """The finished record of this run (to skip), None (to run: always with ``force``), or RunConflict
    (another config's)."""
    paths = run.paths
    if run.force or not paths.record.exists():
        return None
    try:
        old = read_record(paths.record)
    except CorruptRecord as e:
        print(f"[warn] {e}; rerunning")
        return None
    if old.get("status") != "success":
        return None
    old_fp = record_fingerprint(old)
    if old_fp != run.fingerprint:
        raise RunConflict(_conflict(paths.record, old, old_fp, run.config))
    remove_checkpoint(paths)  # left by a kill between the final record and the cleanup
    print(f"[skip] {run.key}: finished ({summary(old)}); force=true reruns it")
    return old


def _conflict(record: Path, old: Mapping[str, Any], old_fp: str | None, container: Mapping[str, Any]) -> str:
    diff = differences(old.get("config") or {}, container)
    if not diff:  # the same config: other weights (a local_dir with another model, a new hub revision)
        diff = {"model weights sha256": ((old.get("weights") or {}).get("sha256"), "the weights loaded now")}
    shown = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in list(diff.items())[:6])
    more = f" (+{len(diff) - 6} more)" if len(diff) > 6 else ""
    return (f"{record} is a finished run of another config ({shown or 'fingerprint ' + str(old_fp)}{more}); "
            f"not reused. Give this run its own folder by passing the changed keys as command-line overrides "
            f"(python -m hut.train ... key=value), another results_dir=, or force=true to rerun it here "
            f"(the old record is kept as metrics.attempt<N>.json)")


class Claim:
    """The right to run ``run`` here, now (a context manager; see the module's docstring).

    On entry, ``result`` is the record to return instead of running (finished, or held by another live
    process), else None and the run's lock is held. An exception inside (other than a full disk's)
    leaves a failed record; the lock is released on exit.
    """

    def __init__(self, run: Run):
        self.run, self.result, self._lock = run, None, None

    def __enter__(self) -> "Claim":
        run = self.run
        if (done := finished(run)) is not None:
            self.result = done
            return self
        check_writable(run.paths.dir)
        lock = RunLock(run.paths.lock)
        if not lock.acquire():  # overlapping launches of one sweep run each run once
            print(f"[skip] {run.key}: running in another live process ({run.paths.lock})")
            self.result = {"status": "running", "skipped": True}
            return self
        try:
            if (done := finished(run)) is not None:  # finished while this process waited for the lock
                self.result = done
            else:
                _prepare(run)
        except BaseException:
            lock.release()
            raise
        if self.result is None:
            self._lock = lock
        else:
            lock.release()
        return self

    def __exit__(self, kind, err, tb) -> bool:
        if self._lock is None:
            return False
        try:
            if isinstance(err, Exception) and not is_disk_error(err):  # a full disk: files left as they are
                record_failure(self.run, err)
        finally:
            self._lock.release()
        return False


def claim(run: Run) -> Claim:
    return Claim(run)


def _prepare(run: Run) -> None:
    """Sweep up a killed writer's temporary files; with ``force``, keep the old record as an attempt."""
    remove_partial_writes(run.paths.dir)
    if run.force and run.paths.record.exists():
        kept = archive_record(run.paths)
        remove_checkpoint(run.paths)
        print(f"[force] {run.key}: previous record kept as {kept.name}")


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


def start(run: Run, **fields: Any) -> dict[str, Any]:
    """The run's record as it starts (status running; not yet written), with the weights it loads."""
    fields.setdefault("weights", run.weights)
    return new_record(run.config, run.paths, fingerprint=run.fingerprint, overrides=run.variant, **fields)


def save(run: Run, record: Mapping[str, Any]) -> None:
    write_json_atomic(run.paths.record, record)


def save_dev_predictions(run: Run, record: dict, epoch: int, predictions: Mapping[str, Any]) -> None:
    """One epoch's dev predictions beside the record (read by the epoch selection, hut.results.judge.selection)."""
    save_epoch_predictions(run.paths.dev_predictions, epoch, predictions)
    record["dev_predictions"] = run.paths.dev_predictions.name


def finish(run: Run, record: dict, wall_time_s: float) -> dict:
    """The success record (written after the trained parameters); the checkpoint goes unless kept."""
    record.update(status="success", wall_time_s=wall_time_s)
    record.pop("pid", None)
    save(run, record)
    if not run.config.get("keep_checkpoint", False):
        remove_checkpoint(run.paths)
    return record


def record_failure(run: Run, err: BaseException, record: dict | None = None,
                   wall_time_s: float | None = None) -> dict:
    """A run that stopped on an error (missing data, a bad setting, a crash, a non-finite loss) leaves a
    failed record with the reason, never an empty folder or a record that says it is still running.

    ``record``: the run's own record as far as it got; else the running record on disk if it is this
    run's (same fingerprint), else a new one. A write that fails is let go: the run's own error is what
    the user needs.
    """
    rec = record if record is not None else _running_record(run)
    if isinstance(err, RunFailed):
        rec.update(status="failed", error={"reason": err.reason, "step": err.step})
    else:
        first = (str(err).strip().splitlines() or [""])[0]
        rec.update(status="failed", error={"reason": f"{type(err).__name__}: {first}", "step": None})
    if wall_time_s is not None:
        rec["wall_time_s"] = wall_time_s
    rec.pop("pid", None)
    try:
        save(run, rec)
    except OSError:
        pass
    return rec


def _running_record(run: Run) -> dict:
    try:
        rec = read_record(run.paths.record) if run.paths.record.exists() else None
    except CorruptRecord:
        rec = None
    if rec is None or rec.get("status") != "running" or record_fingerprint(rec) != run.fingerprint:
        rec = start(run)
    return rec


def standing(cfg: Mapping[str, Any]) -> Literal["finished", "conflict"] | None:
    """How the record at a resolved config's folder stands to it, before anything is loaded (``hut.plan``):
    ``finished`` (a success of this config, taking the weights the record names), ``conflict`` (a
    success of another config: ``hut.train`` stops there) or None (no finished record). The trainer
    checks the weights themselves when it reaches the run."""
    container = scrub_secrets(dict(cfg))
    try:
        rec = read_record(run_paths(container).record)
    except (OSError, ValueError):
        return None
    if rec.get("status") != "success":
        return None
    fp = fingerprint(container, weights=(rec.get("weights") or {}).get("sha256"))
    return "finished" if record_fingerprint(rec) == fp else "conflict"
