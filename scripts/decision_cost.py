"""HUT's autograd functions now against those at an earlier commit: kernels per step and CPU step time, one process.

    python scripts/decision_cost.py --rev REV [--model roberta_large] [--layers 4] [--batch 1] [--seq 16] [--rounds 20]

The earlier ``hut/methods/hut/function.py`` and ``reads.py`` are read from git (``git show REV:...``)
and loaded as private modules; a candidate named ``hut@REV`` runs them in place of the current ones
(``hut.methods.hut.core`` looks its autograd functions up at each call; the candidate's layers get an
earlier ``HostReads``). Everything else (the layer, the factors, the model) is the working tree's.

* Kernels: ATen operators dispatched per phase of one training step and of one inference forward,
  counted as ``python -m hut.plan`` counts them (:func:`hut.plan.kernels.count_step` on the model at
  its real width, 2 and 3 layers, extrapolated to its depth), for HUT now, HUT at REV and LoRA, each
  as ``configs/method/<name>.yaml`` sets it (r=8 on q, v), in float32 and bf16.
* Step time: the same candidates with the model's paper settings and no dropout (:mod:`hut.bench`'s
  candidates) at ``--layers`` layers: forward + backward + AdamW step, thread CPU time, interleaved
  rounds, paired ratios with bootstrap 95% intervals (:mod:`hut.bench.measure`).

Nothing here is imported by the package: it answers "what did the change to the decisions cost".
"""
from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import types
from pathlib import Path

import torch

from hut.bench import candidates
from hut.bench.measure import Timer, interleaved, paired_ratio
from hut.bench.steps import train_step
from hut.build import adapt, load_base
from hut.config import load_group
from hut.methods.hut import core, hut_layers
from hut.plan import kernels
from hut.memory import ATTENTION_DROPOUT, LAYERS, layers_of

ROOT = Path(__file__).resolve().parents[1]
PRECISIONS = ("no", "bf16")


def module_at(rev: str, path: str, name: str, replace: dict[str, str]) -> types.ModuleType:
    """``path`` as it was at ``rev``, loaded as module ``name`` (imports rewritten by ``replace``)."""
    src = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    for old, new in replace.items():
        src = src.replace(old, new)
    mod = types.ModuleType(name)
    sys.modules[name] = mod
    exec(compile(src, f"{rev}:{path}", "exec"), mod.__dict__)  # noqa: S102 - our own history
    return mod


class Code:
    """The autograd functions and ``HostReads`` a candidate runs with (``None``: the working tree's)."""

    def __init__(self, rev: str | None):
        self.rev = rev
        if rev is None:
            self.function, self.HostReads = core, None
            return
        tag = "".join(c if c.isalnum() else "_" for c in rev)
        reads = module_at(rev, "hut/methods/hut/reads.py", f"hut_reads_at_{tag}", {})
        self.function = module_at(rev, "hut/methods/hut/function.py", f"hut_function_at_{tag}",
                                  {"from hut.methods.hut.reads import": f"from {reads.__name__} import"})
        self.HostReads = reads.HostReads

    def install(self, model: torch.nn.Module) -> None:
        """Give the model's HUT layers one ``HostReads`` of this code (one per model, as the method does)."""
        if self.HostReads is not None:
            shared = self.HostReads()
            for _, layer in hut_layers(model):
                layer.reads = shared

    @contextlib.contextmanager
    def active(self):
        now = core.FoldedWeight, core.ScaledActivations
        core.FoldedWeight, core.ScaledActivations = self.function.FoldedWeight, self.function.ScaledActivations
        try:
            yield
        finally:
            core.FoldedWeight, core.ScaledActivations = now


def count(model_name: str, method: str, code: Code, precision: str) -> dict[str, int]:
    """Kernels per phase at the model's depth, as :func:`hut.plan.kernels.count` extrapolates them."""
    model_cfg = candidates.model_config(model_name, None)
    method_cfg = load_group("method", method)  # as configured (dropout included), like the plan's cells
    pts = {}
    for layers in LAYERS:
        cfg = dict(model_cfg)
        depth_key = next(k for k in kernels.DEPTH_KEYS if k in cfg["arch"])
        cfg["arch"] = {**cfg["arch"], depth_key: layers, **dict.fromkeys(ATTENTION_DROPOUT, 0.0)}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            base = load_base(cfg, "classification", num_labels=2, pretrained=False, with_tokenizer=False)
            model = adapt(base, dict(method_cfg)).model
            code.install(model)
            with code.active():
                pts[layers] = kernels.count_step(model, "classification", precision)
    (a, lo), (b, hi) = ((n, pts[n]) for n in LAYERS)
    depth = layers_of(model_cfg)
    return {p: lo[p] + (depth - a) * (hi[p] - lo[p]) // (b - a) for p in lo}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rev", required=True, help="the commit whose function.py and reads.py to compare with")
    ap.add_argument("--model", default="roberta_large", choices=sorted(candidates.PAPER_TABLE))
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    now, old = Code(None), Code(args.rev)
    codes = {"hut": now, f"hut@{args.rev}": old, "lora": now}
    print(f"python {' '.join(sys.argv)}")
    print(f"torch {torch.__version__}, 1 thread; {args.model}; load average at start {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} CPUs (step times are thread CPU time: other processes do not count)")
    depth = layers_of(candidates.model_config(args.model, None))
    print(f"\nkernels (ATen operators dispatched) per step at {depth} layers, "
          f"as hut.plan counts them (batch {kernels.BATCH} x {kernels.SEQ}):")
    for precision in PRECISIONS:
        counts = {name: count(args.model, name.split("@")[0], code, precision) for name, code in codes.items()}
        for name, c in counts.items():
            print(f"  {precision:4s} {name:14s} " + "  ".join(f"{p} {c[p]:5d}" for p in kernels.PHASES))
        ref = counts[f"hut@{args.rev}"]
        print(f"  {precision:4s} hut / hut@{args.rev}: " +
              "  ".join(f"{p} {counts['hut'][p] / ref[p]:.3f}" for p in kernels.PHASES if ref[p]))
    base = candidates.build_base(args.model, args.layers, None, "cpu", 0)
    batch = candidates.make_batch(base, args.batch, args.seq, "cpu", 0)
    cands = []
    for name, code in codes.items():
        cand = candidates.build_candidate(name.split("@")[0], base)
        cand.name = name
        code.install(cand.model)
        cands.append(cand)
    timer = Timer("cpu")
    print(f"\nstep time (forward + backward + AdamW), {args.layers} layers, batch {args.batch} x {args.seq}, "
          f"{args.rounds} interleaved rounds, thread CPU time; ratio [bootstrap 95%]:")
    for precision in PRECISIONS:
        dtype = "bf16" if precision == "bf16" else "float32"

        def step(c: candidates.Candidate):
            with codes[c.name].active():
                return timer(lambda: train_step(c, batch, "cpu", dtype))

        t = interleaved(cands, step, args.rounds, args.warmup)
        by = {c.name: t[c].cpu for c in cands}
        meds = "  ".join(f"{c.name} {t[c].median * 1e3:.1f} ms" for c in cands)
        print(f"  {dtype:7s} median {meds}")
        print(f"  {dtype:7s} hut / hut@{args.rev} {paired_ratio(by['hut'], by[f'hut@{args.rev}']).text()}   "
              f"hut / lora {paired_ratio(by['hut'], by['lora']).text()}   "
              f"hut@{args.rev} / lora {paired_ratio(by[f'hut@{args.rev}'], by['lora']).text()}")
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
