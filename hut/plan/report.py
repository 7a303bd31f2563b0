"""The plan as text: the per-cell table, totals, downloads, how each figure was made, the recipe."""
from __future__ import annotations

import math
from typing import Callable, Sequence

from hut import experiments as ex
from hut.plan.estimate import GIB, Line, hardware
from hut.results.render.formats import simple, to_text

MAX_JOBS = 4  # runs packed on one GPU at most: beyond that the runs contend for the same compute


def gib(x: float | None) -> str:
    return "?" if x is None else f"{x / GIB:.1f}"


def hours(x: float | None) -> str:
    return "?" if x is None else (f"{x:.2f}" if x < 10 else f"{x:.0f}")


def table(lines: Sequence[Line], free_gib: float) -> list[str]:
    rows = []
    for ln in lines:
        m = ln.memory
        parts = (f"{gib(m.get('total'))} = {gib(m.get('weights'))}+{gib(m.get('gradients'))}+"
                 f"{gib(m.get('adamw'))}+{gib(m.get('activations'))}") if m else "?"
        fits = "?" if not m else ("yes" if m["total"] <= free_gib * GIB else "NO")
        left = None if ln.hours is None else ln.hours * ln.left
        rows.append([ln.label, f"{ln.batch}×{ln.max_length}", ln.precision, f"{len(ln.finished)}/{len(ln.seeds)}",
                     parts, fits, hours(ln.hours), hours(left)])
    header = ["cell", "batch×len", "prec", "runs done", "peak GiB est. (weights+grads+AdamW+activations)", "fits",
              "h/run est.", "h left est."]
    return to_text(simple(header, rows, align="lrrrlrrr")).splitlines()


def render(experiment: str, g: dict, lines: Sequence[Line], downloads: Sequence[dict], results_dir: str,
           gpus: int = 1, cluster: bool = False, log: Callable[[str], None] = print) -> dict:
    hw = hardware()
    free = float(g["memory_gib"]) - float(hw["headroom_gib"])
    runs = sum(len(ln.seeds) for ln in lines)
    done = sum(len(ln.finished) for ln in lines)
    known = [ln for ln in lines if ln.hours is not None]
    total_h = sum(ln.hours * len(ln.seeds) for ln in known)
    left_h = sum(ln.hours * ln.left for ln in known)
    rate = float(g["peak_tflops"]) * float(hw["utilisation"])
    log(f"hut.plan: experiment {experiment} on {g['kind']} ({g['name']}, {g['memory_gib']} GiB); every figure "
        f"below is an estimate, made as stated under 'how'")
    log(f"cells {len(lines)}, seeds {','.join(map(str, lines[0].seeds)) if lines else '-'}: {runs} runs, {done} "
        f"finished, {runs - done} left (finished: a success record under {results_dir} with the cell's fingerprint)")
    conflicts = sum(len(ln.conflicts) for ln in lines)
    if conflicts:
        log(f"WARNING {conflicts} runs have a finished record of another config at their path: hut.train stops "
            f"there (give them another results_dir=, or force=true)")
    log("")
    for s in table(lines, free):
        log(s)
    log("")
    log(f"total (est.): {hours(total_h)} GPU-hours for all {runs} runs, {hours(left_h)} for the {runs - done} left, "
        f"on one {g['kind']}" + (f"; {len(lines) - len(known)} cells without an hours estimate (see notes)"
                                 if len(known) < len(lines) else ""))
    misfits = [ln for ln in lines if ln.fix]
    for ln in misfits:
        log(f"does not fit a {g['kind']} ({free:.0f} GiB usable): {ln.label}: est. {gib(ln.memory['total'])} GiB; "
            f"set {ln.fix}")
    if misfits:
        log("  (batch_size and grad_accum are part of a run's identity: runs with these overrides are an override "
            "variant, a row of their own in the tables, not the paper row)")
    notes = sorted({n for ln in lines for n in ln.notes})
    for n in notes:
        log(f"note: {n}")
    log("")
    log("downloads (est.):")
    for d in downloads:
        mb = "?" if d["mb"] is None else f"{d['mb']:,.0f} MB"
        log(f"  {d['what']} (source: {d['source']}): {mb}  [{d['how']}]")
    log("")
    log("how:")
    log(f"  hours = tokens × FLOPs per token / ({g['peak_tflops']} TFLOP/s bf16 dense peak × {hw['utilisation']} "
        f"assumed utilisation = {rate:.0f} TFLOP/s sustained; decoding at {hw['decode_utilisation']}); FLOPs per "
        f"token from hut.flops (one training step and one forward pass on 1 × 128 tokens, as Table 2); tokens per "
        f"example from hut/plan/datasets.yaml (python -m hut.plan.lengths)")
    log("  memory = float32 weights + float32 gradients and AdamW moments of what trains (counted on the model "
        "built from config) + activations measured with saved-tensor hooks on 2- and 3-layer copies at real width "
        "(batch 1, 16/32/64 tokens, the run's autocast; hut/plan/memory.py), scaled to the depth, batch and "
        f"max_length; {hw['headroom_gib']} GiB kept free for the CUDA context")
    log("")
    for s in recipe(experiment, g, lines, free, gpus, cluster):
        log(s)
    return {"runs": runs, "finished": done, "hours_total": total_h, "hours_left": left_h,
            "misfits": [ln.label for ln in misfits]}


def recipe(experiment: str, g: dict, lines: Sequence[Line], free_gib: float, gpus: int, cluster: bool) -> list[str]:
    base = f"python -m hut.train -m experiment={experiment}"
    peaks = [ln.memory["total"] / GIB for ln in lines if ln.memory and ln.left]
    longest = max([ln.hours for ln in lines if ln.hours is not None] or [0.0])
    out = ["recipe (fastest for this machine; finished runs are skipped, so any of these can be rerun):"]
    if cluster:
        minutes = max(60, math.ceil(longest * 1.5 * 60))
        out += [f"  {base} hydra/launcher=slurm hydra.launcher.partition=<partition> "
                f"hydra.launcher.timeout_min={minutes} hydra.launcher.array_parallelism=<GPUs you may hold>",
                f"  (one GPU per run; timeout 1.5 × the longest run's estimate of {hours(longest)} h; a timed-out run "
                f"resumes from its checkpoint)"]
        return out
    if gpus > 1:
        out.append(f"  {base} hydra/launcher=joblib hydra.launcher.n_jobs={gpus}   (job i on GPU i mod {gpus})")
    else:
        out.append(f"  {base}   (one run after another: the estimate above)")
    fit = int(free_gib // max(peaks)) if peaks else 0
    if fit >= 2:
        n = min(fit, MAX_JOBS) * gpus
        out.append(f"  {base} hydra/launcher=joblib hydra.launcher.n_jobs={n}   ({min(fit, MAX_JOBS)} runs at once per "
                   f"GPU fit its memory (largest est. {max(peaks):.1f} GiB); worth it only when one run leaves the GPU "
                   f"idle: nvidia-smi shows under ~70% utilisation. The FLOP-based hours are compute-bound: packing "
                   f"recovers idle time, it cannot beat them)")
    else:
        out.append("  (several runs at once do not fit this GPU's memory: run them one after another)")
    sweep = {k: v for k, v in ex.sweep(experiment).items() if k != "seed"}
    if sweep:
        key, values = next(iter(sweep.items()))
        seeds = ex.seeds(experiment)
        out.append(f"  a slice: {base} {key}={','.join(values[:2])} seed={seeds[0]}   (every sweep key of "
                   f"configs/experiment/{experiment}.yaml ({', '.join([*sweep, 'seed'])}) takes a subset; the rest "
                   f"runs later, finished runs are skipped)")
    return out
