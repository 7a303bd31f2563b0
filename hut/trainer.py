"""The shared trainer: every method, every task, one loop you can read top to bottom.

    run(cfg, overrides) -> record
      0. the config checked against its schema (hut.schema) and the device resolved: a bad setting or
         a missing GPU stops here, before anything is written
      1. which run this is (hut.runs.store.identify): its folder and its one fingerprint (the config
         and the weights it loads); a finished run of the same fingerprint is skipped, a finished
         record of another config is never reused (RunConflict); the run's lock is taken
      2. _setup: seed; the model built with its method (hut.build); the task's data; AdamW (groups by
         hut.optim, then the method's own split) and a linear schedule with warmup, through accelerate
         (device, mixed precision, DDP)
      3. _resume: from checkpoint.pt if a killed run of the same fingerprint left one
      4. _train_epoch, _end_epoch: train (a non-finite loss stops the run as failed), evaluate, update
         best/last, rewrite metrics.json (status running), checkpoint
      5. _finish: the trained parameters (trainable.safetensors, with the base model's identity), then
         the final record (status success)

A run that fails once its lock is taken (missing data, a crash) leaves a failed record with its
reason (the tables mark it †). Where the run's files go, its records, checkpoint, lock and dev
predictions are the run store's (hut.runs.store: the trainer writes none of them itself); the
others are written into the folder the store names: the trained parameters by hut.export
(``save_trainable`` to ``paths.trainable``), the task's own files (``predictions.json``,
``references.txt``) by its ``evaluate`` in ``paths.dir``, the logger's files (wandb, offline) there
too. Nothing here branches on a method's or task's name: methods come from ``hut.methods``, tasks
from ``hut.tasks``.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from omegaconf import DictConfig
from transformers import get_linear_schedule_with_warmup

from hut.runtime import faults
from hut.build import build
from hut.export import base_model_label, save_trainable, trainable_state_dict
from hut.runtime.logger import make_logger
from hut.optim import param_groups
from hut.runs import store
from hut.runs.checkpoint import load_checkpoint, save_checkpoint
from hut.runs.record import summary
from hut.runtime import device as devices
from hut.runtime.console import RunProgress, quiet_libraries
from hut.runtime.seed import rng_state, seed_everything, set_rng_state
from hut.schema import validate
from hut.tasks import build_task, task_info

# Where a run stands; a checkpoint stores it (batch: the next batch of the epoch; loss_*: the epoch's so far).
START = {"epoch": 0, "batch": 0, "step": 0, "wall_time_s": 0.0, "loss_sum": 0.0, "loss_n": 0}


def run(cfg: DictConfig, overrides: Sequence[str] | None = None) -> dict:
    """Train and evaluate one run; return its record.

    ``overrides``: the command line's overrides (``hut.train`` passes Hydra's), from which the run's
    override variant is derived; None for a run composed in code, which is then its experiment's run.
    """
    t0 = time.time()
    validate(cfg)
    quiet_libraries(bool(cfg.trainer.progress))  # no LOAD REPORT unless asked for; bars fit for the output
    device = devices.resolve(cfg.trainer.device)  # cuda without a GPU: stop before anything is written
    this = store.identify(cfg, overrides)
    with store.claim(this) as claim:
        if claim.result is not None:
            return claim.result
        return _train(this, device, t0)


def _train(this: store.Run, device: str, t0: float) -> dict:
    s = _setup(this, device, t0)
    _resume(s)
    try:
        for epoch in range(s.pos["epoch"], s.epochs):
            _end_epoch(s, epoch, *_train_epoch(s, epoch))
            if s.step >= s.total_steps:
                break
    except store.RunFailed as e:
        return _failed(s, e)
    return _finish(s)


@dataclass
class _Training:
    """One run while it trains: what :func:`_setup` built and where the loop stands."""

    run: store.Run
    t0: float
    acc: Accelerator
    adapted: Any  # hut.build.Adapted (its model is acc.prepare's)
    model: Any
    optimizer: torch.optim.Optimizer
    scheduler: Any
    task: Any
    train_set: list
    record: dict
    epochs: int
    total_steps: int
    pos: dict
    step: int = 0
    logger: Any = None
    progress: RunProgress | None = None

    @property
    def tcfg(self) -> dict:
        return self.run.config["trainer"]

    def wall(self) -> float:
        return round(self.pos["wall_time_s"] + time.time() - self.t0, 2)


def _setup(this: store.Run, device: str, t0: float) -> _Training:
    """Seed, model and method, data, accelerate, optimiser and schedule; the run's record (status running)."""
    cfg, tcfg = this.config, this.config["trainer"]
    seed_everything(int(cfg["seed"]))
    kind, num_labels = task_info(str(cfg["task"]["name"]))
    adapted = build(cfg["model"], cfg["method"], kind, num_labels)
    task = build_task(cfg, adapted.tokenizer)
    train_set = task.train_dataset()
    if not train_set:
        raise ValueError(f"task {cfg['task']['name']}: the training split is empty (data.train_split="
                         f"{cfg['data'].get('train_split')}, data.max_train_samples={cfg['data'].get('max_train_samples')})")
    acc = _accelerator(tcfg, device)
    bs, accum = int(tcfg["batch_size"]), int(tcfg["grad_accum"])
    steps_per_epoch = math.ceil(len(train_set) / (bs * acc.num_processes) / accum)
    epochs = int(tcfg["epochs"])
    total_steps = steps_per_epoch * epochs
    if tcfg.get("max_steps"):
        total_steps = min(total_steps, int(tcfg["max_steps"]))
        epochs = min(epochs, math.ceil(total_steps / steps_per_epoch))
    warmup = (int(tcfg["warmup_steps"]) if tcfg.get("warmup_steps") is not None
              else round(float(tcfg["warmup_ratio"]) * total_steps))
    model = adapted.model
    groups = param_groups(model, float(tcfg["weight_decay"]), float(tcfg["lr"]), tcfg.get("head_lr"),
                          adapted.head_prefixes)
    groups = adapted.method.param_groups(model, groups, float(tcfg["adam_eps"]))  # e.g. hut_compact's eps mapping
    optimizer = torch.optim.AdamW(groups, lr=float(tcfg["lr"]), betas=(0.9, float(tcfg["adam_beta2"])),
                                  eps=float(tcfg["adam_eps"]))
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup, max(total_steps, 1))
    model, optimizer, scheduler = acc.prepare(model, optimizer, scheduler)
    record = store.start(
        this, params=adapted.params, eval_subset=task.eval_subset(),
        steps={"per_epoch": steps_per_epoch, "total": total_steps, "warmup": warmup},
        device=devices.describe(acc.device, str(acc.mixed_precision), acc.num_processes), weights=this.weights,
        nondeterministic_kernels=acc.device.type == "cuda")
    return _Training(this, t0, acc, adapted, model, optimizer, scheduler, task, train_set, record, epochs,
                     total_steps, dict(START))


def _accelerator(tcfg: dict, device: str) -> Accelerator:
    """accelerate on the device resolved in :func:`run` (never a silent fallback), at the config's precision.

    accelerate keeps one process-wide AcceleratorState and refuses a second Accelerator with another
    mixed_precision; a Hydra multirun (basic launcher) runs its jobs in one process, so a sweep over
    trainer.mixed_precision would fail on its second job. Its state is cleared (not the distributed
    PartialState) so each run gets exactly the precision its config asks for.
    """
    AcceleratorState._reset_state(reset_partial_state=False)
    acc = Accelerator(cpu=device == "cpu", mixed_precision=str(tcfg["mixed_precision"]),
                      gradient_accumulation_steps=int(tcfg["grad_accum"]))
    if acc.device.type != device:
        raise devices.DeviceUnavailable(f"trainer.device={tcfg['device']}: accelerate chose {acc.device}, not {device}")
    require_loss_scaling(acc)
    return acc


def require_loss_scaling(acc) -> None:
    """fp16 trains only with a loss scale: accelerate's GradScaler (it scales the loss in ``acc.backward``
    and unscales before clipping and the step). Without one, small fp16 gradients fall into fp16's
    subnormal range and lose their precision, and on a CPU accelerate gives neither a scaler nor
    autocast: the run would train in float32 and be recorded as fp16."""
    if acc.mixed_precision == "fp16" and acc.scaler is None:
        raise ValueError(f"trainer.mixed_precision=fp16 needs a loss scale, which accelerate gives only on a GPU "
                         f"(device {acc.device.type}: no GradScaler, no autocast); use trainer.mixed_precision=bf16 or no")


def _resume(s: _Training) -> None:
    """From this run's checkpoint if a killed run left one (only its fingerprint's; anything but plain
    tensors and data is refused); then the record (status running), the logger and the progress bar."""
    this = s.run
    if (ck := load_checkpoint(this.paths, this.fingerprint)) is not None:
        s.acc.unwrap_model(s.model).load_state_dict(ck["trainable"], strict=False)
        s.optimizer.load_state_dict(ck["optimizer"])
        s.scheduler.load_state_dict(ck["scheduler"])
        set_rng_state(ck["rng"])
        s.pos = {k: ck[k] for k in START}
        s.record["history"], s.record["best"], s.record["last"] = ck["history"], ck["best"], ck["last"]
        print(f"[resume] {this.key}: epoch {s.pos['epoch']}, batch {s.pos['batch']}, step {s.pos['step']}")
    store.save(this, s.record)
    s.step = s.pos["step"]
    s.logger = make_logger(this.config.get("logger"), name=this.key, group=this.paths.experiment,
                           run_dir=this.paths.dir, config=this.config)
    p = this.paths
    label = f"{p.task}/{p.method_key}/{p.model} s{p.seed}" + (" +variant" if this.variant else "")
    s.progress = RunProgress(label, s.total_steps, s.step, bool(s.tcfg.get("progress", True)), s.acc.is_main_process)
    s.model.train()


def _train_epoch(s: _Training, epoch: int) -> tuple[torch.Tensor, int, int, float]:
    """One epoch's optimiser steps (from the checkpoint's batch when resuming it): (the loss summed on
    the device, the batches summed, the examples seen, seconds)."""
    tcfg, acc, seed = s.tcfg, s.acc, int(s.run.config["seed"])
    ck_every, log_every = int(tcfg.get("checkpoint_every_steps") or 0), int(tcfg["log_every"])
    # A private generator: building the loader must not draw from the global RNG (resume replays it).
    loader = torch.utils.data.DataLoader(s.train_set, batch_size=int(tcfg["batch_size"]),
                                         sampler=_epoch_order(len(s.train_set), seed, epoch),
                                         collate_fn=s.task.collate, generator=torch.Generator().manual_seed(seed))
    loader = acc.prepare(loader)
    first = s.pos["batch"] if epoch == s.pos["epoch"] else 0
    if first:
        loader = acc.skip_first_batches(loader, first)
    # The epoch's training loss, summed on the device: no host sync per step.
    resumed = epoch == s.pos["epoch"] and first
    loss_sum = torch.tensor(s.pos["loss_sum"] if resumed else 0.0, device=acc.device)
    loss_n = s.pos["loss_n"] if resumed else 0
    t0, examples = time.time(), 0
    for b, batch in enumerate(loader, start=first):
        loss = _step(s, batch)
        loss_sum += loss.detach().float()
        loss_n += 1
        examples += len(next(iter(batch.values())))
        if not acc.sync_gradients:
            continue
        s.step += 1
        faults.point("step")
        if s.step % log_every == 0:  # a non-finite loss makes the sum non-finite for good
            _check_finite(loss_sum, s.step)
            shown, lr = loss.item(), s.scheduler.get_last_lr()[0]
            s.progress.step(s.step, shown, lr, s.wall())
            s.logger.log({"train/loss": shown, "train/lr": lr}, s.step)
        else:
            s.progress.step(s.step)
        if ck_every and s.step % ck_every == 0:
            _checkpoint(s, epoch, b + 1, float(loss_sum), loss_n)
        if s.step >= s.total_steps:
            break
    _check_finite(loss_sum, s.step)
    return loss_sum, loss_n, examples, time.time() - t0


def _step(s: _Training, batch) -> torch.Tensor:
    """Forward, backward and (when the accumulated gradients are synced) clip and step."""
    with s.acc.accumulate(s.model):
        loss = s.task.loss(s.model, batch)
        s.acc.backward(loss)
        if s.acc.sync_gradients and s.tcfg.get("max_grad_norm"):
            s.acc.clip_grad_norm_(s.model.parameters(), float(s.tcfg["max_grad_norm"]))
        s.optimizer.step()
        s.scheduler.step()
        s.optimizer.zero_grad(set_to_none=True)
    return loss


def _end_epoch(s: _Training, epoch: int, loss_sum: torch.Tensor, loss_n: int, examples: int, train_s: float) -> None:
    """Evaluate once per epoch (the record keeps the best dev epoch and the last), rewrite the record,
    checkpoint."""
    task, record, acc = s.task, s.record, s.acc
    metrics = {k: float(v) for k, v in task.evaluate(s.model, acc, s.run.paths.dir).items()}
    if (saved := task.dev_predictions()) is not None and acc.is_main_process:
        store.save_dev_predictions(s.run, record, epoch + 1, saved)  # selection bias: hut.results.judge.selection
    # the held-out tune split (data.tune_samples): what a learning-rate search selects on, never reported;
    # scored at the last epoch only, the one the search's rule reads (hut.tune.search)
    last = epoch + 1 == s.epochs
    tune = {f"tune_{k}": float(v) for k, v in ((task.evaluate_tune(s.model, acc) if last else None) or {}).items()}
    row = {"epoch": epoch + 1, "step": s.step, "train_loss": float(loss_sum) / max(loss_n, 1), **metrics, **tune}
    record["history"].append(row)
    record["last"] = row
    if record["best"] is None or metrics[task.best_metric] > record["best"][task.best_metric]:
        record["best"] = row
    s.logger.log({f"dev/{k}": v for k, v in metrics.items()} | {f"tune/{k[5:]}": v for k, v in tune.items()}, s.step)
    s.progress.epoch(epoch + 1, s.epochs, s.step, row["train_loss"], metrics, s.scheduler.get_last_lr()[0],
                     examples * acc.num_processes / max(train_s, 1e-9), s.wall())
    record["wall_time_s"] = s.wall()
    store.save(s.run, record)
    _checkpoint(s, epoch + 1, 0, 0.0, 0)


def _checkpoint(s: _Training, epoch: int, batch: int, loss_sum: float, loss_n: int) -> None:
    if not s.acc.is_main_process:
        return
    state = {"trainable": trainable_state_dict(s.acc.unwrap_model(s.model)), "optimizer": s.optimizer.state_dict(),
             "scheduler": s.scheduler.state_dict(), "rng": rng_state(), "epoch": epoch, "batch": batch,
             "step": s.step, "history": s.record["history"], "best": s.record["best"], "last": s.record["last"],
             "wall_time_s": s.wall(), "loss_sum": loss_sum, "loss_n": loss_n}
    save_checkpoint(s.run.paths, s.run.fingerprint, state)


def _failed(s: _Training, e: store.RunFailed) -> dict:
    s.progress.close()
    record = store.record_failure(s.run, e, s.record, s.wall())
    s.logger.finish(1)
    print(f"[failed] {s.run.key}: {e}")
    return record


def _finish(s: _Training) -> dict:
    """The trained parameters first (with the base model's identity), then the record that says they are final."""
    s.progress.close()
    this = s.run
    if s.acc.is_main_process:
        save_trainable(s.acc.unwrap_model(s.model), this.paths.trainable,
                       metadata={"fingerprint": this.fingerprint, "record": this.paths.record.name,
                                 "method": this.config["method"], "model": this.config["model"]["name"],
                                 "base_model": base_model_label(this.config["model"], this.weights)})
    record = store.finish(this, s.record, s.wall())
    s.logger.finish(0)
    print(f"[done] {this.key}: {summary(record)}")
    return record


def _check_finite(loss_sum: torch.Tensor, step: int) -> None:
    """Checked every ``trainer.log_every`` steps and at each epoch's end (one host sync each time)."""
    if not torch.isfinite(loss_sum):
        raise store.RunFailed("non-finite loss (checked every trainer.log_every steps)", step)


def _epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The data order of an epoch is a pure function of (seed, epoch): resume replays it exactly."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=g).tolist()
