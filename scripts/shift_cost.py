"""What HUT's exact ∂s under a dominant shift costs (issue 26): one adapted layer, forward + backward.

    python scripts/shift_cost.py [--size 1024] [--tokens 1024] [--rounds 30]

One HutLinear of RoBERTa-large's q size (d = k = 1024, r = 8) on ``--tokens`` tokens, under CPU bf16
autocast, one thread, thread CPU time, candidates interleaved with paired ratios and bootstrap 95%
intervals (hut.bench.measure). Candidates, each a forward and backward of the layer:

* ``before``: the backward before the fix (∂s from (y - t)/s always; wrong when the shift dominates);
* ``no_shift``: the fix with β = 0 (HUT's start, and any layer whose shift is small): the test only;
* ``shift``: the fix with |t| = 100 |y - t| (the shift dominates): the test and the recomputed x·low(W ⊙ a).

Memory: the bytes the layer's autograd graph saves (saved_tensors_hooks), before and after: the fix
saves the frozen bias in addition (a parameter: no new storage) and keeps the recomputed product as a
temporary of backward only.
"""
from __future__ import annotations

import argparse
import sys

import torch
import torch.nn as nn

from hut.bench.measure import Timer, interleaved, paired_ratio
from hut.methods.hut import HutFactors, HutLinear
from hut.methods.hut import function as hut_function


def before_grad_s(ctx, xl, g, yb, Wb, bias, start, stop, a, s, t, gsum, folded):
    """The pre-fix ∂s: (Σ g ⊙ y - t Σ g) / s from the rounded y."""
    return (torch.linalg.vecdot(g, yb, dim=0).float() - t * gsum) / s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--tokens", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    d = k = args.size
    base = nn.Linear(d, k)
    base.requires_grad_(False)
    layer = HutLinear(base, None, lambda d_, k_: HutFactors(d_, k_, 8))
    x = torch.randn(args.tokens, d, requires_grad=True)
    gy = torch.randn(args.tokens, k)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        u = layer(x).float()
    big_beta = 100 * u.abs().mean(0)
    fixed = hut_function._grad_s

    def setup(name):
        hut_function._grad_s = before_grad_s if name == "before" else fixed
        layer.hut["w"].beta.data.copy_(big_beta if name == "shift" else torch.zeros(k))

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = layer(x)
        y.backward(gy.to(y.dtype))
        layer.zero_grad(set_to_none=True)
        x.grad = None

    def saved_bytes(name):
        setup(name)
        seen = {}

        def pack(t):
            st = t.untyped_storage()
            seen[st.data_ptr()] = st.nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), torch.autocast("cpu", dtype=torch.bfloat16):
            y = layer(x)
        del y
        params = {p.untyped_storage().data_ptr() for p in layer.parameters()}
        return sum(v for ptr, v in seen.items() if ptr not in params)

    timer = Timer("cpu")
    names = ["before", "no_shift", "shift"]
    print(f"Command: `{' '.join(['python scripts/shift_cost.py', *sys.argv[1:]])}`\n")
    print(f"torch {torch.__version__}, 1 thread, {args.rounds} interleaved rounds, HutLinear {d}x{k} r=8, "
          f"{args.tokens} tokens, CPU bf16 autocast, forward + backward (input gradient on)")
    mem = {n: saved_bytes(n) for n in names}
    t = interleaved(names, lambda n: (setup(n), timer(step))[1], args.rounds, warmup=3)
    hut_function._grad_s = fixed
    for n in names:
        r = paired_ratio(t[n].cpu, t["before"].cpu)
        print(f"{n}: {t[n].median * 1e3:.2f} ms, {r.text(3)} x before; saved activations {mem[n] / 2**20:.2f} MiB "
              f"({mem[n] - mem['before']:+d} bytes vs before)")


if __name__ == "__main__":
    main()
