"""The shared trainer: every method, every task, one loop you can read top to bottom.

    run(cfg) -> record
      1. where the run writes; skip it if finished (unless force=true, which keeps the old record)
      2. seed, build task + model + method, count parameters
      3. AdamW + linear schedule with warmup, through accelerate (device, mixed precision, DDP)
      4. resume from checkpoint.pt if a killed run left one
      5. for each epoch: train (NaN/inf loss stops the run as failed), evaluate, update best/last,
         rewrite metrics.json (status running), checkpoint
      6. final record (status success)

Nothing here branches on a method's or task's name: methods come from ``hut.methods``, tasks from
``hut.tasks``.
"""
from __future__ import annotations

import math
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from hut import records
from hut.methods import build_method, count_parameters, prepare_model
from hut.methods.hut import apply_eps_scales
from hut.models import load_model
from hut.tasks import build_task, task_info


class TrainingFailed(RuntimeError):
    def __init__(self, reason: str, step: int):
        super().__init__(f"{reason} at step {step}")
        self.reason, self.step = reason, step


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def run_paths(cfg) -> records.RunPaths:
    return records.RunPaths(
        results_dir=Path(cfg.results_dir), experiment=str(cfg.experiment_name), task=str(cfg.task.name),
        method_key=records.method_key(str(cfg.method.name), cfg.get("variant")), model=str(cfg.model.name),
        seed=int(cfg.seed),
    )


def _rng_state() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def _set_rng_state(s: dict) -> None:
    random.setstate(s["python"])
    np.random.set_state(s["numpy"])
    torch.set_rng_state(s["torch"])
    if s.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


def _trainable_state(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}


def _param_groups(model, tcfg, head_prefixes):
    """AdamW groups: no weight decay on biases and norms; optional separate head learning rate."""
    from hut.methods.base import _is_head

    groups: dict[tuple[bool, bool], list] = {}
    for n, p in model.named_parameters():
        if not p.requires_grad:
            continue
        no_decay = n.endswith(".bias") or "norm" in n.lower()
        head = tcfg.get("head_lr") is not None and _is_head(n, head_prefixes)
        groups.setdefault((no_decay, head), []).append(p)
    out = []
    for (no_decay, head), params in sorted(groups.items()):
        out.append({"params": params, "weight_decay": 0.0 if no_decay else float(tcfg.weight_decay),
                    "lr": float(tcfg.head_lr if head else tcfg.lr)})
    return out


def _epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The data order of an epoch is a pure function of (seed, epoch): resume replays it exactly."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=g).tolist()


def run(cfg: DictConfig) -> dict:
    from accelerate import Accelerator
    from transformers import get_linear_schedule_with_warmup

    t0 = time.time()
    tcfg = cfg.trainer
    paths = run_paths(cfg)

    # 1. Skip finished runs; force keeps the old record as an attempt. A run lock makes overlapping
    #    launches of the same sweep run each run once (the record is checked again under the lock).
    if (done := _finished(paths)) and not cfg.force:
        return done
    records.check_writable(paths.dir)
    lock = records.RunLock(paths.lock)
    if not lock.acquire():
        print(f"[skip] {paths.key}: running in another live process ({paths.lock})")
        return {"status": "running", "skipped": True}
    try:
        if (done := _finished(paths)) and not cfg.force:
            return done
        if cfg.force and paths.record.exists():
            old = records.read_record(paths.record) if paths.record.exists() else {}
            if old.get("status") == "success":
                kept = records.archive_record(paths)
                paths.checkpoint.unlink(missing_ok=True)
                print(f"[force] {paths.key}: previous record kept as {kept.name}")
        return _train(cfg, tcfg, paths, t0, Accelerator, get_linear_schedule_with_warmup)
    finally:
        lock.release()


def _train(cfg, tcfg, paths, t0, Accelerator, get_linear_schedule_with_warmup) -> dict:
    # 2. Seed, task, model, method.
    seed = int(cfg.seed)
    seed_everything(seed)
    container = records.scrub_secrets(OmegaConf.to_container(cfg, resolve=True))
    kind, num_labels = task_info(str(cfg.task.name))
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    loaded = load_model(model_cfg, kind, num_labels)
    method = build_method(OmegaConf.to_container(cfg.method, resolve=True))
    model = prepare_model(loaded.model, method, loaded.family, loaded.head_prefixes)
    params = count_parameters(model, loaded.head_prefixes)
    task = build_task(container, loaded.tokenizer)
    train_set = task.train_dataset()
    if not train_set:
        raise ValueError(f"task {cfg.task.name}: the training split is empty")

    # 3. Optimiser, schedule, accelerate.
    cpu = tcfg.device == "cpu" or (tcfg.device == "auto" and not torch.cuda.is_available())
    acc = Accelerator(cpu=cpu, mixed_precision=str(tcfg.mixed_precision),
                      gradient_accumulation_steps=int(tcfg.grad_accum))
    bs, accum = int(tcfg.batch_size), int(tcfg.grad_accum)
    steps_per_epoch = math.ceil(len(train_set) / (bs * acc.num_processes) / accum)
    epochs = int(tcfg.epochs)
    total_steps = steps_per_epoch * epochs
    if tcfg.get("max_steps"):
        total_steps = min(total_steps, int(tcfg.max_steps))
        epochs = min(epochs, math.ceil(total_steps / steps_per_epoch))
    warmup = int(tcfg.warmup_steps) if tcfg.get("warmup_steps") is not None else round(float(tcfg.warmup_ratio) * total_steps)
    # apply_eps_scales: per-parameter Adam eps tags (hut_compact with r=R reproduces HUT rank R
    # exactly); a no-op for every method that tags nothing.
    groups = apply_eps_scales(_param_groups(model, tcfg, loaded.head_prefixes), model, float(tcfg.adam_eps))
    optimizer = torch.optim.AdamW(groups, lr=float(tcfg.lr),
                                  betas=(0.9, 0.999), eps=float(tcfg.adam_eps))
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup, max(total_steps, 1))
    model, optimizer, scheduler = acc.prepare(model, optimizer, scheduler)

    record: dict[str, Any] = {
        "schema_version": records.SCHEMA_VERSION, "status": "running", "experiment": paths.experiment,
        "task": str(cfg.task.name), "method": str(cfg.method.name), "variant": cfg.get("variant"),
        "model": str(cfg.model.name), "seed": seed, "best": None, "last": None, "history": [],
        "params": params, "steps": {"per_epoch": steps_per_epoch, "total": total_steps, "warmup": warmup},
        "wall_time_s": 0.0, "git_sha": records.git_sha(), "versions": records.versions(),
        "device": str(acc.device), "nondeterministic_kernels": acc.device.type == "cuda",
        "pid": os.getpid(), "config": container,
    }

    # 4. Resume.
    start_epoch, start_batch, step, prev_wall = 0, 0, 0, 0.0
    if paths.checkpoint.exists():
        ck = torch.load(paths.checkpoint, map_location="cpu", weights_only=False)
        acc.unwrap_model(model).load_state_dict(ck["trainable"], strict=False)
        optimizer.load_state_dict(ck["optimizer"])
        scheduler.load_state_dict(ck["scheduler"])
        _set_rng_state(ck["rng"])
        start_epoch, start_batch, step = ck["epoch"], ck["batch"], ck["step"]
        record["history"], record["best"], record["last"] = ck["history"], ck["best"], ck["last"]
        prev_wall = ck.get("wall_time_s", 0.0)
        print(f"[resume] {paths.key}: epoch {start_epoch}, batch {start_batch}, step {step}")
    records.write_json_atomic(paths.record, record)
    logger = _make_logger(cfg, paths, container)

    def checkpoint(epoch: int, batch: int) -> None:
        if not acc.is_main_process:
            return
        state = {"trainable": _trainable_state(acc.unwrap_model(model)), "optimizer": optimizer.state_dict(),
                 "scheduler": scheduler.state_dict(), "rng": _rng_state(), "epoch": epoch, "batch": batch,
                 "step": step, "history": record["history"], "best": record["best"], "last": record["last"],
                 "wall_time_s": prev_wall + time.time() - t0}
        tmp = paths.checkpoint.with_suffix(".pt.tmp")
        torch.save(state, tmp)
        os.replace(tmp, paths.checkpoint)

    # 5. Train.
    ck_every = int(tcfg.get("checkpoint_every_steps") or 0)
    # Testing aid for the kill-and-resume test: slow each step down so a test can SIGKILL mid-run.
    step_delay = float(os.environ.get("HUT_TEST_STEP_DELAY", "0"))
    model.train()
    try:
        for epoch in range(start_epoch, epochs):
            order = _epoch_order(len(train_set), seed, epoch)
            # A private generator: building the loader must not draw from the global RNG (resume replays it).
            loader = torch.utils.data.DataLoader(train_set, batch_size=bs, sampler=order, collate_fn=task.collate,
                                                 generator=torch.Generator().manual_seed(seed))
            loader = acc.prepare(loader)
            first = start_batch if epoch == start_epoch else 0
            if first:
                loader = acc.skip_first_batches(loader, first)
            bar = tqdm(loader, desc=f"{paths.key} ep {epoch + 1}/{epochs}", leave=False,
                       disable=not acc.is_main_process or not tcfg.get("progress", True), initial=first,
                       total=len(order) // bs + (len(order) % bs > 0))
            for b, batch in enumerate(bar, start=first):
                with acc.accumulate(model):
                    loss = task.loss(model, batch)
                    if not torch.isfinite(loss):
                        raise TrainingFailed(f"non-finite loss ({loss.item()})", step)
                    acc.backward(loss)
                    if acc.sync_gradients and tcfg.get("max_grad_norm"):
                        acc.clip_grad_norm_(model.parameters(), float(tcfg.max_grad_norm))
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                if acc.sync_gradients:
                    step += 1
                    if step_delay:
                        time.sleep(step_delay)
                    if step % int(tcfg.log_every) == 0:
                        bar.set_postfix(loss=f"{loss.item():.4f}")
                        logger.log({"train/loss": loss.item(), "train/lr": scheduler.get_last_lr()[0]}, step)
                    if ck_every and step % ck_every == 0:
                        checkpoint(epoch, b + 1)
                    if step >= total_steps:
                        break
            # Evaluate once per epoch: the record keeps the best dev epoch and the last.
            metrics = {k: float(v) for k, v in task.evaluate(model, acc, paths.dir).items()}
            row = {"epoch": epoch + 1, "step": step, **metrics}
            record["history"].append(row)
            record["last"] = row
            if record["best"] is None or metrics[task.best_metric] > record["best"][task.best_metric]:
                record["best"] = row
            logger.log({f"dev/{k}": v for k, v in metrics.items()}, step)
            record["wall_time_s"] = round(prev_wall + time.time() - t0, 2)
            records.write_json_atomic(paths.record, record)
            checkpoint(epoch + 1, 0)
            if step >= total_steps:
                break
    except TrainingFailed as e:
        record.update(status="failed", error={"reason": e.reason, "step": e.step},
                      wall_time_s=round(prev_wall + time.time() - t0, 2))
        records.write_json_atomic(paths.record, record)
        logger.finish(1)
        print(f"[failed] {paths.key}: {e}")
        return record

    # 6. Done.
    record.update(status="success", wall_time_s=round(prev_wall + time.time() - t0, 2))
    record.pop("pid", None)
    records.write_json_atomic(paths.record, record)
    if not cfg.get("keep_checkpoint", False):
        paths.checkpoint.unlink(missing_ok=True)
    logger.finish(0)
    print(f"[done] {paths.key}: {_summary(record)}")
    return record


def _finished(paths: records.RunPaths) -> dict | None:
    if not paths.record.exists():
        return None
    try:
        old = records.read_record(paths.record)
    except records.CorruptRecord as e:
        print(f"[warn] {e}; rerunning")
        return None
    if old.get("status") != "success":
        return None
    print(f"[skip] {paths.key}: finished ({_summary(old)}); force=true reruns it")
    return old


def _summary(rec: dict) -> str:
    best = rec.get("best") or {}
    metric = ", ".join(f"{k}={v:.4f}" for k, v in best.items() if k not in ("epoch", "step") and isinstance(v, float))
    p = rec.get("params", {})
    return (f"best epoch {best.get('epoch')}: {metric}; adapter params {p.get('adapter', 0):,}; "
            f"{rec.get('wall_time_s', 0):.0f}s")


def _make_logger(cfg, paths, container):
    from hut.logger import make_logger

    return make_logger(cfg.logger, name=paths.key, group=paths.experiment, run_dir=paths.dir, config=container)
