"""The plan as text: the per-cell table, totals, downloads, how each figure was made, the recipe."""
from __future__ import annotations

import math
from typing import Callable, Sequence

from hut.config import experiments as ex
from hut.plan.assumptions import datasets, hardware
from hut.plan.estimate import GIB, Line
from hut.results.render.formats import simple, to_text

MAX_JOBS = 4  # runs packed on one GPU at most: beyond that the runs contend for the same compute


def gib(x: float | None) -> str:
    return "?" if x is None else f"{x / GIB:.1f}"


def hours(x: float | None) -> str:
    return "unknown" if x is None else (f"{x:.2f}" if x < 10 else f"{x:.0f}")


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
    unknown = [ln for ln in lines if ln.hours is None]  # any unknown cell makes its total unknown, never smaller
    total_h = None if unknown else sum(ln.hours * len(ln.seeds) for ln in lines)
    left_h = None if any(ln.left for ln in unknown) else sum(ln.hours * ln.left for ln in lines if ln.left)
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
    for s in hours_table(lines):
        log(s)
    log("")
    log(total_line(lines, g["kind"]))
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
    for s in how_hours(g, lines):
        log(s)
    log("  memory = float32 weights + float32 gradients and AdamW moments of what trains (counted on the model "
        "built from config) + activations measured with saved-tensor hooks on 2- and 3-layer copies at real width "
        "(batch 1, 16/32/64 tokens, the run's autocast; hut/memory.py), scaled to the depth, batch and "
        f"max_length; {hw['headroom_gib']} GiB kept free for the CUDA context")
    log("")
    for s in recipe(experiment, g, lines, free, gpus, cluster):
        log(s)
    return {"runs": runs, "finished": done, "hours_total": total_h, "hours_left": left_h,
            "hours_unknown": [ln.label for ln in unknown],
            "misfits": [ln.label for ln in misfits]}


def recipe(experiment: str, g: dict, lines: Sequence[Line], free_gib: float, gpus: int, cluster: bool) -> list[str]:
    base = f"python -m hut.train -m experiment={experiment}"
    peaks = [ln.memory["total"] / GIB for ln in lines if ln.memory and ln.left]
    longest = max([ln.hours for ln in lines if ln.hours is not None] or [0.0])
    out = ["recipe (fastest for this machine; finished runs are skipped, so any of these can be rerun):"]
    if cluster:
        minutes = max(60, math.ceil(longest * 1.5 * 60))
        unknown = sum(ln.hours is None for ln in lines)
        basis = (f"timeout 1.5 × the longest run's estimate of {hours(longest)} h" if not unknown else
                 f"hours unknown for {unknown} cells: timeout {minutes} min is not an estimate for them; set "
                 f"hydra.launcher.timeout_min yourself")
        out += [f"  {base} hydra/launcher=slurm hydra.launcher.partition=<partition> "
                f"hydra.launcher.timeout_min={minutes} hydra.launcher.array_parallelism=<GPUs you may hold>",
                f"  (one GPU per run; {basis}; a timed-out run resumes from its checkpoint)"]
        return out
    if gpus > 1:
        out.append(f"  {base} hydra/launcher=joblib hydra.launcher.n_jobs={gpus}   (job i on GPU i mod {gpus})")
    else:
        out.append(f"  {base}   (one run after another: the estimate above)")
    fit = int(free_gib // max(peaks)) if peaks else 0
    if fit >= 2:
        n = min(fit, MAX_JOBS) * gpus
        out.append(f"  {base} hydra/launcher=joblib hydra.launcher.n_jobs={n}   ({min(fit, MAX_JOBS)} runs at once per "
                   f"GPU fit its memory (largest est. {max(peaks):.1f} GiB); worth it when one run leaves the GPU "
                   f"idle: cells bound by the kernel floor (above) do, and nvidia-smi shows under ~70% utilisation; "
                   f"packing recovers that idle time, it cannot beat the FLOP time)")
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


def total_line(lines: Sequence[Line], kind: str) -> str:
    """All runs' hours and those left; a cell without an estimate makes the total unknown (a lower bound
    from the others is given), never a zero."""
    runs, left = sum(len(ln.seeds) for ln in lines), sum(ln.left for ln in lines)
    unknown = [ln for ln in lines if ln.hours is None]
    known_all = sum(ln.hours * len(ln.seeds) for ln in lines if ln.hours is not None)
    known_left = sum(ln.hours * ln.left for ln in lines if ln.hours is not None)
    if not unknown:
        return f"total (est.): {hours(known_all)} GPU-hours for all {runs} runs, {hours(known_left)} for the {left} left, on one {kind}"
    why = "; ".join(sorted({ln.unknown or "no estimate" for ln in unknown}))
    n = sum(len(ln.seeds) for ln in unknown)
    if len(unknown) == len(lines):
        return f"total (est.): unknown GPU-hours for all {runs} runs on one {kind}: no cell has an estimate ({why})"
    return (f"total (est.): unknown for all {runs} runs on one {kind}: at least {hours(known_all)} GPU-hours for the "
            f"{runs - n} runs of estimated cells ({hours(known_left)} of them left), and {n} runs in {len(unknown)} cells "
            f"unknown ({why})")


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}" if seconds < 1 else f"{seconds * 1e3:,.0f}"


def hours_table(lines: Sequence[Line]) -> list[str]:
    """Per cell, what its hours are made of: the training step (FLOP time against the kernel floor, and
    which bounds it) and the evaluation or decoding it adds."""
    rows = []
    for ln in lines:
        if ln.time is None:
            rows.append([ln.label, f"unknown: {ln.unknown or 'no estimate'}", "", "", "", "", "", "", "", ""])
            continue
        tr, ev = ln.time.phases
        rows.append([ln.label, f"{tr.steps:,}", f"{tr.kernels:,}", _ms(tr.flop_s), _ms(tr.floor_s), tr.bound,
                     f"{1 / tr.step_s:.1f}", f"{ev.steps:,} × {_ms(ev.step_s)}", ev.bound, hours(ln.hours)])
    header = ["cell", "train steps", "kernels/step", "step ms: FLOPs", "floor", "bound", "steps/s",
              "eval: steps × ms", "bound", "h/run est."]
    return to_text(simple(header, rows, align="lrrrrlrrlr")).splitlines()


def how_hours(g: dict, lines: Sequence[Line]) -> list[str]:
    """The basis of the hours: the step model, the GPU kind's figures and each task's sizes."""
    hw, cost = hardware(), g["kernel_us"]
    rate = float(g["peak_tflops"]) * float(hw["utilisation"])
    out = ["  hours = steps × max(FLOP time, kernel floor) per step, training then evaluation (hut/plan/hours.py):",
           f"    FLOP time = FLOPs / ({g['peak_tflops']} TFLOP/s bf16 dense peak × {hw['utilisation']} assumed "
           f"utilisation = {rate:.0f} TFLOP/s; decoding at {hw['decode_utilisation']}); FLOPs per token from hut.flops "
           f"(one training step and one forward pass on 1 × 128 tokens, as Table 2)",
           f"    kernel floor = kernels per step (counted on each cell's model and method: hut/plan/kernels.py) × "
           f"{cost['forward']} µs per forward kernel + {cost['backward']} µs per backward or optimizer kernel "
           f"(hut/plan/hardware.yaml: the forward figure calibrated on the LoRA paper's published adapter latencies, "
           f"python -m hut.plan.kernels; the backward figure an assumption with its bounds there); the larger of "
           f"the two is taken (they overlap; where they are close the real step is longer)"]
    for task in dict.fromkeys(ln.task for ln in lines):
        d = datasets().get(task)
        out.append(f"    {task}: " + ("no sizes in hut/plan/datasets.yaml: hours unknown" if d is None else
                                      f"{d['train']:,} train / {d['eval']:,} eval examples"
                                      + (f" × {d['features_per_example']} features each" if d.get("features_per_example")
                                         else "") + f"; {d['measured']}"))
    return out
