"""What folding HUT's scales into the weight costs against the plain cast autocast does anyway.

    python scripts/fold_cost.py [--size 1024] [--rounds 40] [--compile]

One CPU thread, thread CPU time, candidates interleaved (hut.bench.measure). Layouts: a Linear's
weight (stored k×d, seen as its transposed view) and GPT-2's fused c_attn Conv1D (stored d×3k, q and
v adapted). Candidates: ``cast`` (W.to(bf16), what autocast does for a frozen weight),
``fold`` (hut.methods.hut.function.fold_weight, the code in use) and ``naive`` (one strided
mixed-dtype ``torch.mul(W*a, s, out=bf16)``: the form it replaced) and, with ``--compile``,
``compiled`` (``torch.compile`` of fold_weight: one fused kernel, the alternative the issue asked
to measure).
"""
from __future__ import annotations

import argparse
import sys

import torch

from hut.bench.measure import Timer, interleaved, paired_ratio
from hut.methods.hut.function import fold_weight


def naive(W, blocks, vecs, dtype):
    out = torch.empty_like(W, dtype=dtype)
    for start, stop, j in blocks:
        if j < 0:
            out[:, start:stop] = W[:, start:stop]
        else:
            a, s = vecs[3 * j], vecs[3 * j + 1]
            torch.mul(W[:, start:stop] * a[:, None], s, out=out[:, start:stop])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile(fold_weight)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    d = k = args.size
    g = torch.Generator().manual_seed(0)
    vec = lambda n, base: base + 0.01 * torch.randn(n, generator=g)  # noqa: E731
    layouts = {
        "linear": (torch.randn(k, d, generator=g).t(), ((0, k, 0),), [vec(d, 1.0), vec(k, 1.0), vec(k, 0.0)]),
        "conv1d_qv": (torch.randn(d, 3 * k, generator=g), ((0, k, 0), (k, 2 * k, -1), (2 * k, 3 * k, 1)),
                      [vec(d, 1.0), vec(k, 1.0), vec(k, 0.0), vec(d, 1.0), vec(k, 1.0), vec(k, 0.0)]),
    }
    timer, bf = Timer("cpu"), torch.bfloat16
    print(f"Command: `{' '.join(['python scripts/fold_cost.py', *sys.argv[1:]])}`\n")
    print(f"torch {torch.__version__}, 1 thread, {args.rounds} interleaved rounds, size {d}")
    for name, (W, blocks, vecs) in layouts.items():
        fns = {
            "cast": lambda: W.to(bf),
            "fold": lambda: fold_weight(W, None, blocks, True, vecs, bf),
            "naive": lambda: naive(W, blocks, vecs, bf),
        }
        if args.compile:
            compiled = torch.compile(fold_weight, dynamic=False)
            with torch.no_grad():
                compiled(W, None, blocks, True, vecs, bf)  # compile outside the timing
            fns["compiled"] = lambda: compiled(W, None, blocks, True, vecs, bf)
        ref = fold_weight(W, None, blocks, True, vecs, bf)[0].float()
        diff = (naive(W, blocks, vecs, bf).float() - ref).abs().max().item()
        with torch.no_grad():
            t = interleaved(list(fns), lambda n: timer(fns[n]), args.rounds, warmup=3)
        cast = t["cast"].cpu
        parts = [f"{n} {t[n].median * 1e3:.3f} ms ({paired_ratio(t[n].cpu, cast).text(2)} x cast)" for n in fns]
        print(f"{name}: " + "; ".join(parts) + f"; fold vs naive max |diff| {diff:.1e}")


if __name__ == "__main__":
    main()
