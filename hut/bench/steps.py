"""One model: the training step and the memory of every candidate, and merged inference.

* Train step: forward (under bf16 autocast when ``dtype=bf16``) + backward + AdamW step +
  ``zero_grad(set_to_none=True)``, the same batch for every candidate, interleaved rounds
  (:mod:`hut.bench.measure`); ratios to the floor and to LoRA with 95% intervals.
* Memory: ``saved_activations_mb``, the unique storages autograd saves in one forward
  (``saved_tensors_hooks``), parameters and buffers excluded; ``extra_act_mb`` = minus the floor's.
  On CPU ``peak_mem_mb`` is modelled (weights + trainable gradients + AdamW state + saved
  activations; no allocator counter); on CUDA it is measured (the rise of max_memory_allocated).
* Inference: the forward of the base model, of HUT merged into stock modules and unmerged (and LoRA
  unmerged), in eval mode, interleaved; merged/base with its interval, and an A/A control (a copy of
  the base in its own memory / the base) that shows how far two identical models differ here.
"""
from __future__ import annotations

import copy
import gc
import math
import statistics
import time
from contextlib import nullcontext
from typing import Any, Callable, Mapping

import torch

from hut.activations import SavedTensors
from hut.bench import candidates
from hut.bench.measure import Ratio, Timer, agree, interleaved, paired_ratio
from hut.methods import merge_model

MIB = float(2**20)


def autocast(device: str, dtype: str):
    if dtype == "bf16":
        return torch.autocast(device, dtype=torch.bfloat16)
    return nullcontext()


def train_step(c: candidates.Candidate, batch: Mapping[str, torch.Tensor], device: str, dtype: str) -> torch.Tensor:
    """One forward, backward and optimiser step; the (detached) loss."""
    with autocast(device, dtype):
        loss = c.model(**batch).loss
    loss.backward()
    if c.optimizer is not None:
        c.optimizer.step()
        c.optimizer.zero_grad(set_to_none=True)
    else:  # a headless frozen decoder: nothing to update
        c.model.zero_grad(set_to_none=True)
    return loss.detach()


def memory(c: candidates.Candidate, batch: Mapping[str, torch.Tensor], device: str, dtype: str) -> dict[str, float]:
    weights = list(c.model.parameters()) + list(c.model.buffers())
    params = candidates.storages(weights)
    trainable = sum(candidates.storages([p for p in c.model.parameters() if p.requires_grad]).values())
    gc.collect()
    if device == "cuda":
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    with SavedTensors(weights) as saved:  # packs in forward only
        train_step(c, batch, device, dtype)
    optim = 0
    if c.optimizer is not None:
        optim = sum(candidates.storages([v for s in c.optimizer.state.values() for v in s.values()
                                if isinstance(v, torch.Tensor) and v.dim() > 0]).values())
    act = saved.bytes
    out = {"saved_activations_mb": act / MIB, "weights_mb": sum(params.values()) / MIB,
           "trainable_mb": trainable / MIB, "optimizer_state_mb": optim / MIB}
    if device == "cuda":
        torch.cuda.synchronize()
        out["peak_mem_mb"] = (torch.cuda.max_memory_allocated() - before + sum(params.values()) + optim) / MIB
    else:
        out["peak_mem_mb"] = (sum(params.values()) + trainable + optim + act) / MIB
    return out


def _ratios(times: Mapping[str, Any], ref: str, key: str = "cpu") -> dict[str, dict | None]:
    if ref not in times:
        return {n: None for n in times}
    out = {}
    for n, t in times.items():
        r = paired_ratio(getattr(t, key), getattr(times[ref], key))
        out[n] = r.as_dict() if r else None
    return out


def bench_model(model: str, s: Mapping[str, Any], log: Callable[[str], None]) -> dict[str, Any]:
    device, dtype = s["device"], s["dtype"]
    t0 = time.time()
    base = candidates.build_base(model, s["layers"], s.get("vocab"), device, s["seed"])
    batch = candidates.make_batch(base, s["batch"], s["seq"], device, s["seed"])
    depth = base.model.config.num_hidden_layers  # GPT-2's config maps it to n_layer
    log(f"[{model}] {depth} layers, batch {s['batch']} x {s['seq']}, {dtype}, built in {time.time() - t0:.1f} s")
    cands, failed = [], {}
    for name in candidates.candidate_names(s["methods"]):
        try:
            cands.append(candidates.build_candidate(name, base))
        except Exception as e:  # noqa: BLE001 - one method failing must not lose the others
            failed[name] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
            log(f"  [{name}] cannot be built: {failed[name]}")
    timer = Timer(device)

    def step(c: candidates.Candidate) -> tuple[float, float]:
        if c.error:
            return float("nan"), float("nan")
        try:
            return timer(lambda: train_step(c, batch, device, dtype))
        except Exception as e:  # noqa: BLE001
            c.error = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
            log(f"  [{c.name}] step failed: {c.error}")
            return float("nan"), float("nan")

    repeats = []
    for rep in range(int(s["repeats"])):
        times = interleaved(cands, step, int(s["rounds"]), int(s["warmup"]), log)
        ok = {c.name: t for c, t in times.items() if not c.error and t.cpu and not any(math.isnan(x) for x in t.cpu)}
        repeats.append({"times": ok, "to_floor": _ratios(ok, candidates.FLOOR), "to_lora": _ratios(ok, "lora"),
                        "to_floor_wall": _ratios(ok, candidates.FLOOR, "wall"),
                        "to_lora_wall": _ratios(ok, "lora", "wall")})
    for c in cands:
        if not c.error:
            try:
                c.mem = memory(c, batch, device, dtype)
            except Exception as e:  # noqa: BLE001
                c.error = f"memory: {type(e).__name__}: {e}"
    floor_act = next((c.mem["saved_activations_mb"] for c in cands if c.name == candidates.FLOOR and c.mem), None)
    rows = []
    for c in cands:
        if c.error or c.name not in repeats[0]["times"]:
            failed[c.name] = c.error or "no timed step"
            continue
        t = repeats[0]["times"][c.name]
        rows.append({
            "method": c.name, "model": model, "train_step_s": t.median, "train_step_wall_s": _median(t.wall),
            # ratio_to_*: the number (../shared/INTERFACE.md); *_ci: with its interval and rounds
            "ratio_to_floor": _value(repeats[0]["to_floor"][c.name]),
            "ratio_to_lora": _value(repeats[0]["to_lora"][c.name]),
            "ratio_to_floor_ci": repeats[0]["to_floor"][c.name], "ratio_to_lora_ci": repeats[0]["to_lora"][c.name],
            "ratio_to_floor_wall_ci": repeats[0]["to_floor_wall"][c.name],
            "ratio_to_lora_wall_ci": repeats[0]["to_lora_wall"][c.name],
            "repeats": [{"ratio_to_floor": r["to_floor"].get(c.name), "ratio_to_lora": r["to_lora"].get(c.name)}
                        for r in repeats],
            "trainable_params": sum(p.numel() for p in c.model.parameters() if p.requires_grad),
            "peak_mem_mb": c.mem["peak_mem_mb"], "saved_activations_mb": c.mem["saved_activations_mb"],
            "extra_act_mb": None if floor_act is None else c.mem["saved_activations_mb"] - floor_act,
            "optimizer_state_mb": c.mem["optimizer_state_mb"], "method_config": dict(c.config),
        })
    del cands
    gc.collect()
    try:
        inference = bench_inference(base, batch, s, log)
    except Exception as e:  # noqa: BLE001
        inference = {"error": f"{type(e).__name__}: {e}"}
    return {"setup": {"model": model, "layers": int(depth), "batch": int(s["batch"]), "seq": int(s["seq"]),
                      "dtype": dtype, "vocab": int(base.model.config.vocab_size), "total_params": sum(p.numel() for p in base.model.parameters())},
            "rows": rows, "inference": inference, "failed": failed,
            "repeatable": _repeatable(rows) if len(repeats) > 1 else None}


def _value(r: Mapping[str, Any] | None) -> float | None:
    return None if r is None else r["ratio"]


def _median(xs):
    return statistics.median(xs) if xs else float("nan")


def _repeatable(rows) -> dict[str, Any]:
    """Do the first two repeats' intervals overlap, for every ratio to the floor and to LoRA?"""
    checks = []
    for r in rows:
        for key, ref in (("ratio_to_floor", candidates.FLOOR), ("ratio_to_lora", "lora")):
            vals = [rep[key] for rep in r["repeats"][:2]]
            if r["method"] != ref and all(v is not None for v in vals):
                a, b = (Ratio(v["ratio"], v["ci95"][0], v["ci95"][1], v["rounds"]) for v in vals)
                checks.append((r["method"], key, agree(a, b)))
    return {"pairs": len(checks), "agree": sum(1 for *_, ok in checks if ok),
            "disagree": [f"{m} {k}" for m, k, ok in checks if not ok]}


def bench_inference(base: candidates.Base, batch: Mapping[str, torch.Tensor], s: Mapping[str, Any],
                    log: Callable[[str], None]) -> dict[str, Any]:
    """Forward latency: base, a copy of it (A/A control), HUT merged, HUT unmerged, LoRA unmerged (eval, interleaved)."""
    device, dtype = s["device"], s["dtype"]
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    variants: dict[str, torch.nn.Module] = {"base": candidates.shared_copy(base.model)}
    # A/A control: the same base model in its own memory. Merged HUT also runs the base's kernels on
    # weights of its own, so base_copy/base is the spread this measurement has when nothing differs.
    variants["base_copy"] = copy.deepcopy(variants["base"])
    hut = candidates.build_candidate("hut", base)
    g = torch.Generator().manual_seed(s["seed"] + 1)
    with torch.no_grad():  # move HUT off the identity so that the merge is not trivial
        for p in hut.model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g).to(p) * 0.01)
    variants["hut_unmerged"] = hut.model
    variants["hut_merged"] = merge_model(copy.deepcopy(hut.model), hut.method)
    variants["lora_unmerged"] = candidates.build_candidate("lora", base).model
    for m in variants.values():
        m.eval()
    with torch.inference_mode(), autocast(device, dtype):
        diff = float((variants["hut_merged"](**inputs).logits.float() - hut.model(**inputs).logits.float()).abs().max())
    timer = Timer(device)

    def fwd(name: str) -> tuple[float, float]:
        with torch.inference_mode(), autocast(device, dtype):
            return timer(lambda: variants[name](**inputs))

    times = interleaved(list(variants), fwd, int(s["infer_rounds"]), max(1, int(s["warmup"])))
    out: dict[str, Any] = {f"{k}_s": t.median for k, t in times.items()}
    for k in ("hut_merged", "hut_unmerged", "lora_unmerged", "base_copy"):
        r = paired_ratio(times[k].cpu, times["base"].cpu)
        out[f"{k}_over_base_ci"] = r.as_dict() if r else None
    out["merged_over_base_ci"] = out["hut_merged_over_base_ci"]
    out["merged_over_base"] = _value(out["merged_over_base_ci"])  # the number (INTERFACE.md)
    out["merged_max_abs_diff"] = diff
    out["rounds"] = int(s["infer_rounds"])
    log(f"  inference: merged/base {out['merged_over_base_ci']}, base copy/base {out['base_copy_over_base_ci']}")
    return out

