"""HUT's training step now against HUT at an earlier commit, in one process, as paired ratios.

    python scripts/hut_before_after.py --rev 442e5bc [--dtype bf16] [--layers 2] [--rounds 20]

The earlier ``HutLinear`` is read from git (``git show <rev>:hut/methods/hut.py``: the single-module
HUT before the mixed-precision work), loaded as a private module with its registrations disabled,
and put in place of every current ``HutLinear`` of a second copy of the same model (same frozen
weights, same factors). The floor, both HUTs and LoRA are timed like ``python -m hut.bench`` does
(thread CPU time, interleaved rounds, bootstrap 95% intervals; hut.bench.measure), on the paper's
settings for the model (Table 1 row for RoBERTa-large: r=8 on q, v). Nothing here is imported by
the package: it exists to answer "what did the change cost".
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import types
from pathlib import Path

import torch

from hut.bench import candidates
from hut.bench.measure import Timer, interleaved, paired_ratio
from hut.bench.steps import train_step
from hut.methods.hut import hut_layers
from hut.methods.targets import replace_module

ROOT = Path(__file__).resolve().parents[1]


def old_hut_module(rev: str) -> types.ModuleType:
    src = subprocess.run(["git", "show", f"{rev}:hut/methods/hut.py"], cwd=ROOT, check=True, capture_output=True,
                         text=True).stdout
    src = src.replace("@METHODS.register(", "@_not_registered(")  # the current registry keeps its names
    mod = types.ModuleType(f"hut_at_{rev}")
    mod.__dict__["_not_registered"] = lambda name: (lambda cls: cls)
    exec(compile(src, f"{rev}:hut/methods/hut.py", "exec"), mod.__dict__)  # noqa: S102 - our own history
    return mod


def with_old_layers(cand: candidates.Candidate, old: types.ModuleType, r: int) -> candidates.Candidate:
    for name, layer in hut_layers(cand.model):
        keyed = [i for i, (key, _, _) in enumerate(layer.blocks) if key is not None]
        slices = tuple(keyed) if len(layer.blocks) > 1 else None
        new = old.HutLinear(layer.base, slices, lambda d, k: old.HutFactors(d, k, r),
                            bias_mode=layer.bias_mode, memory_efficient=layer.memory_efficient)
        assert [(a, b) for _, a, b in new.blocks] == [(a, b) for _, a, b in layer.blocks], name
        with torch.no_grad():
            for key, f in layer.factors.items():
                for pname, p in f.named_parameters():
                    getattr(new.hut[key], pname).copy_(p)
        replace_module(cand.model, name, new)
    cand.model.train()
    params = [p for p in cand.model.parameters() if p.requires_grad]
    cand.optimizer = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.01)
    cand.name = "hut@old"
    return cand


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rev", default="442e5bc")
    ap.add_argument("--model", default="roberta_large", choices=sorted(candidates.PAPER_TABLE))
    ap.add_argument("--dtype", default="float32", choices=["float32", "bf16"])
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    old = old_hut_module(args.rev)
    base = candidates.build_base(args.model, args.layers, None, "cpu", 0)
    batch = candidates.make_batch(base, args.batch, args.seq, "cpu", 0)
    cands = [candidates.build_candidate(n, base) for n in ("floor", "hut", "lora")]
    r = int(cands[1].config["r"])
    cands.append(with_old_layers(candidates.build_candidate("hut", base), old, r))
    timer = Timer("cpu")
    t = interleaved(cands, lambda c: timer(lambda: train_step(c, batch, "cpu", args.dtype)), args.rounds, args.warmup)
    by = {c.name: t[c].cpu for c in cands}
    print(f"{sys.argv[0]} " + " ".join(sys.argv[1:]))
    print(f"torch {torch.__version__}, 1 thread; {args.model}, {args.layers} layers, batch {args.batch} x {args.seq}, "
          f"{args.dtype}; {args.rounds} interleaved rounds; HUT r={r} on {cands[1].config['targets']}; "
          f"hut@old = HutLinear at {args.rev}")
    for c in cands:
        print(f"  {c.name:8s} median {t[c].median:.4f} s   vs floor {paired_ratio(by[c.name], by['floor']).text()}"
              f"   vs lora {paired_ratio(by[c.name], by['lora']).text()}")
    print(f"  hut (now) / hut@old: {paired_ratio(by['hut'], by['hut@old']).text()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
