"""Where a method's training step spends its time beyond the frozen floor's, op by op.

    python scripts/profile_step.py [--model roberta_large] [--layers 4] [--dtype bf16] [--methods hut,lora]
                                   [--steps 6] [--top 12] [--shapes]

Builds the model from config at real width (hut.bench.candidates, the paper rows' method settings),
profiles ``--steps`` training steps of each candidate with ``torch.profiler`` (CPU, one thread, after
one warm-up step; candidates interleaved, the order rotating every round), and prints for each method
the ops whose median self CPU time per step differs most from the floor's, in ms. The profiler adds its own overhead per op, so the absolute figures are larger
than ``python -m hut.bench`` measures; use this for *where* the time goes, the bench for *how much*.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from collections import defaultdict

import torch

from hut.bench import candidates
from hut.bench.measure import interleaved
from hut.bench.steps import train_step


def self_cpu_ms(cand: candidates.Candidate, batch, dtype: str, shapes: bool) -> dict[str, float]:
    """Self CPU time per op name (and input shapes, with ``shapes``) of one training step, in ms."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], record_shapes=shapes) as prof:
        train_step(cand, batch, "cpu", dtype)
    per_op: dict[str, float] = defaultdict(float)
    for ev in prof.key_averages(group_by_input_shape=shapes):
        per_op[f"{ev.key} {ev.input_shapes}" if shapes else ev.key] += ev.self_cpu_time_total / 1e3
    return dict(per_op)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="roberta_large")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--dtype", default="bf16", choices=("float32", "bf16"))
    ap.add_argument("--methods", default="hut,lora")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--shapes", action="store_true", help="one row per op and input shapes")
    args = ap.parse_args()
    torch.set_num_threads(1)
    base = candidates.build_base(args.model, args.layers, None, "cpu", 0)
    batch = candidates.make_batch(base, args.batch, args.seq, "cpu", 0)
    names = candidates.candidate_names(args.methods.split(","))
    cands = {n: candidates.build_candidate(n, base) for n in names}
    for c in cands.values():
        train_step(c, batch, "cpu", args.dtype)  # warm-up, outside the profiles
    runs: dict[str, list[dict[str, float]]] = {n: [] for n in names}

    def profiled(n: str) -> tuple[float, float]:
        runs[n].append(self_cpu_ms(cands[n], batch, args.dtype, args.shapes))
        return 0.0, 0.0  # the profiles are the measurement; interleaved() only schedules them

    interleaved(names, profiled, args.steps, 0)  # candidates interleaved, the order rotating each round

    def median_ops(rs: list[dict[str, float]]) -> tuple[dict[str, float], float]:
        keys = set().union(*rs)
        ops = {k: statistics.median(r.get(k, 0.0) for r in rs) for k in keys}
        return ops, statistics.median(sum(r.values()) for r in rs)

    prof = {n: median_ops(runs[n]) for n in names}
    floor_ops, floor_total = prof[candidates.FLOOR]
    print(f"Command: `{' '.join(['python scripts/profile_step.py', *sys.argv[1:]])}`\n")
    print(f"torch {torch.__version__}, 1 thread; {args.model}, {args.layers} layers, batch {args.batch} x {args.seq}, "
          f"{args.dtype}; {args.steps} profiled steps each, interleaved; median self CPU ms per step (profiler "
          "overhead included)")
    print(f"floor: {floor_total:.1f} ms")
    for n in names[1:]:
        ops, total = prof[n]
        diff = {k: ops.get(k, 0.0) - floor_ops.get(k, 0.0) for k in set(ops) | set(floor_ops)}
        print(f"\n{n}: {total:.1f} ms, {total - floor_total:+.1f} ms over the floor; ops that differ most:")
        for k, v in sorted(diff.items(), key=lambda kv: -abs(kv[1]))[: args.top]:
            print(f"  {v:+8.2f}  {k[:150]}")


if __name__ == "__main__":
    main()
