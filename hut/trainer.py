"""The shared trainer: every method, every task, one loop you can read top to bottom.

    run(cfg, overrides) -> record
      1. which run this is (hut.identity): its fingerprint and, for result-changing overrides, its own
         folder; skip it if finished with the same fingerprint; never reuse a record of another config
      2. seed, build task + model + method, count parameters
      3. AdamW (groups by hut.optim, then the method's own split) + linear schedule with warmup,
         through accelerate (device, mixed precision, DDP)
      4. resume from checkpoint.pt if a killed run of the same fingerprint left one
      5. for each epoch: train (a non-finite loss stops the run as failed), evaluate, update best/last,
         rewrite metrics.json (status running), checkpoint
      6. save the trained parameters (trainable.safetensors, with the base model's identity), final
         record (status success)

A run that fails before it finishes (missing data, a bad setting) leaves a failed record with its
reason (the tables mark it †); ``trainer.device=cuda`` without a GPU stops before anything is
written (hut.runtime.device). The record names the device used and the weights loaded
(``hut.models.weights_identity``: their SHA-256 is part of the fingerprint).

Nothing here branches on a method's or task's name: methods come from ``hut.methods``, tasks from
``hut.tasks``.
"""
from __future__ import annotations

import math
import pickle
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from omegaconf import DictConfig, OmegaConf

from hut import faults, identity, records
from hut.export import base_model_label, save_trainable, trainable_state_dict
from hut.methods import build_method, count_parameters, prepare_model
from hut.models import load_model, weights_identity
from hut.optim import param_groups
from hut.runtime import device as devices
from hut.runtime.console import RunProgress
from hut.runtime.seed import rng_state, seed_everything, set_rng_state
from hut.tasks import build_task, task_info

CHECKPOINT_FORMAT = 2


class TrainingFailed(RuntimeError):
    def __init__(self, reason: str, step: int):
        super().__init__(f"{reason} at step {step}")
        self.reason, self.step = reason, step


class RunConflict(ValueError):
    """A finished record at this run's path was made by another config: never reused, never overwritten."""


class BadCheckpoint(ValueError):
    """A checkpoint that is not plain tensors and data (or is unreadable): refused, never executed."""


def run_paths(cfg, overrides: Mapping[str, Any] | None = None) -> records.RunPaths:
    return records.RunPaths(
        results_dir=Path(cfg.results_dir), experiment=str(cfg.experiment_name), task=str(cfg.task.name),
        method_key=records.method_key(str(cfg.method.name), cfg.get("variant")), model=str(cfg.model.name),
        seed=int(cfg.seed), overrides=identity.variant_folder(overrides),
    )


def run(cfg: DictConfig, overrides: Sequence[str] | None = None) -> dict:
    """Train and evaluate one run; return its record.

    ``overrides``: the command line's overrides (``hut.train`` passes Hydra's), from which the run's
    override variant is derived; None for a run composed in code, which is then its experiment's run.
    """
    from accelerate import Accelerator
    from transformers import get_linear_schedule_with_warmup

    t0 = time.time()
    device = devices.resolve(cfg.trainer.device)  # cuda without a GPU: stop before anything is written
    # 1. Which run this is: the config and the weights it loads. A run lock makes overlapping launches
    #    of the same sweep run each run once (the record is checked again under the lock).
    container = records.scrub_secrets(OmegaConf.to_container(cfg, resolve=True))
    variant = identity.override_variant(container, overrides) if overrides else None
    weights = weights_identity(container["model"])
    fp = identity.fingerprint(container, weights=weights["sha256"] if weights else None)
    paths = run_paths(cfg, variant)
    if (done := _finished(paths, fp, container, bool(cfg.force))) is not None:
        return done
    records.check_writable(paths.dir)
    lock = records.RunLock(paths.lock)
    if not lock.acquire():
        print(f"[skip] {paths.key}: running in another live process ({paths.lock})")
        return {"status": "running", "skipped": True}
    try:
        if (done := _finished(paths, fp, container, bool(cfg.force))) is not None:
            return done
        records.remove_partial_writes(paths.dir)  # left by a writer that was killed
        if cfg.force and paths.record.exists():
            kept = records.archive_record(paths)
            paths.checkpoint.unlink(missing_ok=True)
            print(f"[force] {paths.key}: previous record kept as {kept.name}")
        try:
            return _train(cfg, container, fp, variant, paths, t0, Accelerator, get_linear_schedule_with_warmup,
                          device, weights)
        except Exception as e:
            if not (isinstance(e, OSError) and e.errno in records.DISK_ERRORS):  # a full disk: files left as they are
                _record_failure(paths, container, fp, variant, e)
            raise
    finally:
        lock.release()


def require_loss_scaling(acc) -> None:
    """fp16 trains only with a loss scale: accelerate's GradScaler (it scales the loss in ``acc.backward``
    and unscales before clipping and the step). Without one, small fp16 gradients fall into fp16's
    subnormal range and lose their precision (issue 26), and on a CPU
    accelerate gives neither a scaler nor autocast: the run would train in float32 and be recorded as fp16."""
    if acc.mixed_precision == "fp16" and acc.scaler is None:
        raise ValueError(f"trainer.mixed_precision=fp16 needs a loss scale, which accelerate gives only on a GPU "
                         f"(device {acc.device.type}: no GradScaler, no autocast); use trainer.mixed_precision=bf16 or no")


def _record_failure(paths: records.RunPaths, container, fp: str, variant, err: BaseException) -> None:
    """A run that stopped on an error (missing data, a bad setting, a crash) leaves a failed record
    with the reason, never an empty folder or a record that says it is still running."""
    try:
        rec = records.read_record(paths.record) if paths.record.exists() else None
    except records.CorruptRecord:
        rec = None
    if rec is None or rec.get("status") != "running":
        rec = records.new_record(container, paths, fingerprint=fp, overrides=variant)
    first = (str(err).strip().splitlines() or [""])[0]
    rec.update(status="failed", error={"reason": f"{type(err).__name__}: {first}", "step": None})
    rec.pop("pid", None)
    try:
        records.write_json_atomic(paths.record, rec)
    except OSError:  # cannot write it either: the run's own error is what the user needs
        pass


def _train(cfg, container, fp, variant, paths, t0, Accelerator, get_linear_schedule_with_warmup, device,
           weights) -> dict:
    tcfg = cfg.trainer
    # 2. Seed, task, model, method.
    seed = int(cfg.seed)
    seed_everything(seed)
    kind, num_labels = task_info(str(cfg.task.name))
    loaded = load_model(OmegaConf.to_container(cfg.model, resolve=True), kind, num_labels)
    method = build_method(OmegaConf.to_container(cfg.method, resolve=True))
    model = prepare_model(loaded.model, method, loaded.family, loaded.head_prefixes)
    params = count_parameters(model, loaded.head_prefixes)
    task = build_task(container, loaded.tokenizer)
    train_set = task.train_dataset()
    if not train_set:
        raise ValueError(f"task {cfg.task.name}: the training split is empty")

    # 3. Optimiser, schedule, accelerate (on the device resolved in run(): never a silent fallback).
    # accelerate keeps one process-wide AcceleratorState and refuses a second Accelerator with another
    # mixed_precision; a Hydra multirun (basic launcher) runs its jobs in one process, so a sweep over
    # trainer.mixed_precision would fail on its second job. Clear that state (not the distributed
    # PartialState) so each run gets exactly the precision its config asks for.
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=False)
    acc = Accelerator(cpu=device == "cpu", mixed_precision=str(tcfg.mixed_precision),
                      gradient_accumulation_steps=int(tcfg.grad_accum))
    if acc.device.type != device:
        raise devices.DeviceUnavailable(f"trainer.device={tcfg.device}: accelerate chose {acc.device}, not {device}")
    require_loss_scaling(acc)
    bs, accum = int(tcfg.batch_size), int(tcfg.grad_accum)
    steps_per_epoch = math.ceil(len(train_set) / (bs * acc.num_processes) / accum)
    epochs = int(tcfg.epochs)
    total_steps = steps_per_epoch * epochs
    if tcfg.get("max_steps"):
        total_steps = min(total_steps, int(tcfg.max_steps))
        epochs = min(epochs, math.ceil(total_steps / steps_per_epoch))
    warmup = int(tcfg.warmup_steps) if tcfg.get("warmup_steps") is not None else round(float(tcfg.warmup_ratio) * total_steps)
    groups = param_groups(model, float(tcfg.weight_decay), float(tcfg.lr), tcfg.get("head_lr"), loaded.head_prefixes)
    groups = method.param_groups(model, groups, float(tcfg.adam_eps))  # e.g. hut_compact's Adam eps mapping
    optimizer = torch.optim.AdamW(groups, lr=float(tcfg.lr), betas=(0.9, float(tcfg.adam_beta2)),
                                  eps=float(tcfg.adam_eps))
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup, max(total_steps, 1))
    model, optimizer, scheduler = acc.prepare(model, optimizer, scheduler)

    record = records.new_record(
        container, paths, fingerprint=fp, overrides=variant, params=params, eval_subset=task.eval_subset(),
        steps={"per_epoch": steps_per_epoch, "total": total_steps, "warmup": warmup},
        device=devices.describe(acc.device, str(acc.mixed_precision), acc.num_processes), weights=weights,
        nondeterministic_kernels=acc.device.type == "cuda")

    # 4. Resume (only a checkpoint of this fingerprint; anything but plain tensors and data is refused).
    pos = {"epoch": 0, "batch": 0, "step": 0, "wall_time_s": 0.0, "loss_sum": 0.0, "loss_n": 0}
    if (ck := _load_checkpoint(paths, fp)) is not None:
        acc.unwrap_model(model).load_state_dict(ck["trainable"], strict=False)
        optimizer.load_state_dict(ck["optimizer"])
        scheduler.load_state_dict(ck["scheduler"])
        set_rng_state(ck["rng"])
        pos = {k: ck[k] for k in pos}
        record["history"], record["best"], record["last"] = ck["history"], ck["best"], ck["last"]
        print(f"[resume] {paths.key}: epoch {pos['epoch']}, batch {pos['batch']}, step {pos['step']}")
    records.write_json_atomic(paths.record, record)
    logger = _make_logger(cfg, paths, container)
    step = pos["step"]

    def wall() -> float:
        return round(pos["wall_time_s"] + time.time() - t0, 2)

    def checkpoint(epoch: int, batch: int, loss_sum: float, loss_n: int) -> None:
        if not acc.is_main_process:
            return
        state = {"format": CHECKPOINT_FORMAT, "fingerprint": fp,
                 "trainable": trainable_state_dict(acc.unwrap_model(model)), "optimizer": optimizer.state_dict(),
                 "scheduler": scheduler.state_dict(), "rng": rng_state(), "epoch": epoch, "batch": batch,
                 "step": step, "history": record["history"], "best": record["best"], "last": record["last"],
                 "wall_time_s": wall(), "loss_sum": loss_sum, "loss_n": loss_n}
        records.write_atomic(paths.checkpoint, lambda f: torch.save(state, f))

    # 5. Train.
    ck_every, log_every = int(tcfg.get("checkpoint_every_steps") or 0), int(tcfg.log_every)
    label = f"{paths.task}/{paths.method_key}/{paths.model} s{paths.seed}" + (" +variant" if variant else "")
    progress = RunProgress(label, total_steps, step, bool(tcfg.get("progress", True)), acc.is_main_process)
    model.train()
    try:
        for epoch in range(pos["epoch"], epochs):
            order = _epoch_order(len(train_set), seed, epoch)
            # A private generator: building the loader must not draw from the global RNG (resume replays it).
            loader = torch.utils.data.DataLoader(train_set, batch_size=bs, sampler=order, collate_fn=task.collate,
                                                 generator=torch.Generator().manual_seed(seed))
            loader = acc.prepare(loader)
            first = pos["batch"] if epoch == pos["epoch"] else 0
            if first:
                loader = acc.skip_first_batches(loader, first)
            # The epoch's training loss, summed on the device: no host sync per step.
            resumed = epoch == pos["epoch"] and first
            loss_sum = torch.tensor(pos["loss_sum"] if resumed else 0.0, device=acc.device)
            loss_n = pos["loss_n"] if resumed else 0
            epoch_t0, examples = time.time(), 0
            for b, batch in enumerate(loader, start=first):
                with acc.accumulate(model):
                    loss = task.loss(model, batch)
                    acc.backward(loss)
                    if acc.sync_gradients and tcfg.get("max_grad_norm"):
                        acc.clip_grad_norm_(model.parameters(), float(tcfg.max_grad_norm))
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                loss_sum += loss.detach().float()
                loss_n += 1
                examples += len(next(iter(batch.values())))
                if acc.sync_gradients:
                    step += 1
                    faults.point("step")
                    if step % log_every == 0:  # a non-finite loss makes the sum non-finite for good
                        _check_finite(loss_sum, step)
                        shown, lr = loss.item(), scheduler.get_last_lr()[0]
                        progress.step(step, shown, lr, wall())
                        logger.log({"train/loss": shown, "train/lr": lr}, step)
                    else:
                        progress.step(step)
                    if ck_every and step % ck_every == 0:
                        checkpoint(epoch, b + 1, float(loss_sum), loss_n)
                    if step >= total_steps:
                        break
            _check_finite(loss_sum, step)
            train_s = time.time() - epoch_t0
            # Evaluate once per epoch: the record keeps the best dev epoch and the last.
            metrics = {k: float(v) for k, v in task.evaluate(model, acc, paths.dir).items()}
            if (saved := task.dev_predictions()) is not None and acc.is_main_process:
                records.save_epoch_predictions(paths.dev_predictions, epoch + 1, saved)  # selection bias: hut.report
                record["dev_predictions"] = paths.dev_predictions.name
            row = {"epoch": epoch + 1, "step": step, "train_loss": float(loss_sum) / max(loss_n, 1), **metrics}
            record["history"].append(row)
            record["last"] = row
            if record["best"] is None or metrics[task.best_metric] > record["best"][task.best_metric]:
                record["best"] = row
            logger.log({f"dev/{k}": v for k, v in metrics.items()}, step)
            progress.epoch(epoch + 1, epochs, step, row["train_loss"], metrics, scheduler.get_last_lr()[0],
                           examples * acc.num_processes / max(train_s, 1e-9), wall())
            record["wall_time_s"] = wall()
            records.write_json_atomic(paths.record, record)
            checkpoint(epoch + 1, 0, 0.0, 0)
            if step >= total_steps:
                break
    except TrainingFailed as e:
        progress.close()
        record.update(status="failed", error={"reason": e.reason, "step": e.step}, wall_time_s=wall())
        records.write_json_atomic(paths.record, record)
        logger.finish(1)
        print(f"[failed] {paths.key}: {e}")
        return record

    progress.close()
    # 6. Done: the trained parameters first (with the base model's identity), then the record that says
    #    they are final.
    if acc.is_main_process:
        save_trainable(acc.unwrap_model(model), paths.trainable,
                       metadata={"fingerprint": fp, "record": paths.record.name, "method": container["method"],
                                 "model": container["model"]["name"],
                                 "base_model": base_model_label(container["model"], weights)})
    record.update(status="success", wall_time_s=wall())
    record.pop("pid", None)
    records.write_json_atomic(paths.record, record)
    if not cfg.get("keep_checkpoint", False):
        paths.checkpoint.unlink(missing_ok=True)
    logger.finish(0)
    print(f"[done] {paths.key}: {_summary(record)}")
    return record


# --------------------------------------------------------------------------------------------------
# Run identity on disk
# --------------------------------------------------------------------------------------------------
def _finished(paths: records.RunPaths, fp: str, container: Mapping[str, Any], force: bool) -> dict | None:
    """The finished record of this run (to skip), None (to run: always with ``force``), or RunConflict
    (another config's)."""
    if force or not paths.record.exists():
        return None
    try:
        old = records.read_record(paths.record)
    except records.CorruptRecord as e:
        print(f"[warn] {e}; rerunning")
        return None
    if old.get("status") != "success":
        return None
    old_fp = records.record_fingerprint(old)
    if old_fp != fp:
        diff = identity.differences(old.get("config") or {}, container)
        if not diff:  # the same config: other weights (a local_dir with another model, a new hub revision)
            diff = {"model weights sha256": ((old.get("weights") or {}).get("sha256"), "the weights loaded now")}
        shown = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in list(diff.items())[:6])
        more = f" (+{len(diff) - 6} more)" if len(diff) > 6 else ""
        raise RunConflict(
            f"{paths.record} is a finished run of another config ({shown or 'fingerprint ' + str(old_fp)}{more}); "
            f"not reused. Give this run its own folder by passing the changed keys as command-line overrides "
            f"(python -m hut.train ... key=value), another results_dir=, or force=true to rerun it here "
            f"(the old record is kept as metrics.attempt<N>.json)")
    if paths.checkpoint.exists():  # left by a kill between the final record and the cleanup
        paths.checkpoint.unlink(missing_ok=True)
    print(f"[skip] {paths.key}: finished ({_summary(old)}); force=true reruns it")
    return old


def _load_checkpoint(paths: records.RunPaths, fp: str) -> dict | None:
    """This run's checkpoint; None when there is none or it is another config's (then removed)."""
    if not paths.checkpoint.exists():
        return None
    try:
        ck = torch.load(paths.checkpoint, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BadCheckpoint(
            f"{paths.checkpoint}: refused: it is not a checkpoint of plain tensors and data written by this "
            f"suite ({first}). Nothing in it was run. Delete the file to start the run over.") from None
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT or ck.get("fingerprint") != fp:
        why = "another config" if isinstance(ck, dict) and ck.get("format") == CHECKPOINT_FORMAT else "an older format"
        print(f"[restart] {paths.key}: the checkpoint is of {why}; starting over")
        paths.checkpoint.unlink(missing_ok=True)
        return None
    return ck


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------
def _check_finite(loss_sum: torch.Tensor, step: int) -> None:
    """Checked every ``trainer.log_every`` steps and at each epoch's end (one host sync each time)."""
    if not torch.isfinite(loss_sum):
        raise TrainingFailed("non-finite loss (checked every trainer.log_every steps)", step)


def _epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The data order of an epoch is a pure function of (seed, epoch): resume replays it exactly."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=g).tolist()


def _summary(rec: dict) -> str:
    best = rec.get("best") or {}
    metric = ", ".join(f"{k}={v:.4f}" for k, v in best.items() if k not in ("epoch", "step", "train_loss")
                       and isinstance(v, float))
    p = rec.get("params") or {}
    return (f"best epoch {best.get('epoch')}: {metric}; adapter params {p.get('adapter', 0):,}; "
            f"{rec.get('wall_time_s', 0):.0f}s")


def _make_logger(cfg, paths, container):
    from hut.logger import make_logger

    return make_logger(cfg.logger, name=paths.key, group=paths.experiment, run_dir=paths.dir, config=container)
