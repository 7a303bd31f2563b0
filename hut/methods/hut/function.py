"""HUT's autograd functions: the two ways one adapted layer is computed.

One frozen Linear/Conv1D, seen as ``y = x·W + b0`` (W of shape d×k), whose output columns are
split into blocks (one block for a whole module; three for GPT-2's fused ``c_attn``). An adapted
block has three float vectors (``core.block_vectors``): the input scale ``a`` (d), the
output scale ``s = γ ⊙ mean M_B`` (k_b) and the shift ``t`` (k_b), and computes

    y_b = s ⊙ ((a ⊙ x)·W_b + b0_b) + t        (bias inside: ``bias_mode: scale``)
    y_b = s ⊙ ((a ⊙ x)·W_b) + t               (``bias_mode: keep``: t holds γ ⊙ b0_b + β)

A frozen block computes ``x·W_b + b0_b``, bit for bit what the frozen layer computes.

Full precision: :class:`ScaledActivations`
------------------------------------------
Scale the input, run the frozen matmul, scale and shift the output: the cost of the frozen matmul
plus elementwise work on the activations. It saves the input x and its own output y (the next op
saves y anyway for q, k, v and ffn_in, so that storage is shared), not the pre-scale output
``v = (a⊙x)·W_b + …``, which backward recovers as ``v = (y - t) / s`` (or recomputes, below).

Low precision (bf16/fp16 autocast): :class:`FoldedWeight`
---------------------------------------------------------
Under autocast a scale must never multiply a value that is already rounded to the low dtype. The
scales are vectors near 1: a bf16 scale is exactly 1.0 for |a - 1| < 2^-9, and a float scale
applied to a bf16 activation (itself on the bf16 grid) rounds back to the same grid point for the
same range, so an update of that size is invisible to the forward: casting x, W and the scales to
bf16 first gives a HUT layer with every scale at 1.002 an output ``torch.equal`` to the frozen
layer's. The scales therefore multiply the one float32 value there is, the master weight, and the
result is rounded once::

    W' = low(W ⊙ (a ⊗ s)),   c = s ⊙ b0 + t (or t),   y = c + x_low · W'

which is the merged layer, computed on the fly. Each entry of W' is a different float32 number
times (1 + δ), so their roundings are spread over the bf16 grid and the expected output moves by δ
(tests/test_mixed_precision.py measures the share of a float32 output change that survives: ≈ 1).

It is also the cheapest exact form here: autocast casts a frozen weight to bf16 in every forward
anyway (no cache for ``requires_grad=False`` weights), and writing ``W ⊙ (a ⊗ s)`` into that copy
instead costs 2.9x the plain cast for a 1024×1024 Linear and 3.1x for GPT-2's fused c_attn with q
and v adapted (0.57 and 1.7 ms on one CPU core; ``python scripts/fold_cost.py --compile``, which also
finds torch.compile of the fold no better: 2.5x and 7.2x), while the forward needs
no per-token work at all beyond the frozen ``addmm``. The alternative (scale the activations in
float32, round, matmul, scale the output in float32, round) keeps per-token elementwise work in mixed
dtypes, which CPU PyTorch runs on a slow path (the ``naive`` candidate of scripts/fold_cost.py is one
such op: 36x a plain cast), and it still rounds v before s is applied.

Backward needs no unscaled weight: ``gx_b = g_b·W'_bᵀ`` is the input gradient of the block (one
matmul, as the frozen layer's backward), ``∂a = Σ_n x_low ⊙ gx_b / a`` and
``∂s = (Σ_n g_b ⊙ y_b - t·Σ_n g_b) / s``, reductions in the low dtype with float accumulation. It
saves x_low (LoRA under autocast saves the same cast of its input), W' in place of the cast weight
the frozen layer would save, and y (and the float weight, a parameter: no new storage); in a layer
whose input needs no gradient (the lowest adapted one) it saves no W' and takes ∂a from the float
weight: ``∂a = rowsum((xᵀg) ⊙ W ⊙ s)``.

Decisions without a host read
-----------------------------
Where the divisions above would lose the answer, backward takes another formula, per adapted block:

* ∂s: where the shift dominates (|t| over half of |y - t|, both summed over ~64 sampled rows:
  ``reads.SHIFT_SHARE``; y - t then loses the bits of s ⊙ v) or some |s| is under sqrt(eps) of the
  compute dtype, it recomputes the unscaled product ``u = x_low·low(W_b ⊙ a)`` (one matmul of the
  block's forward size) and takes ``∂s = Σ_n g ⊙ u (+ b0·Σ_n g)``: no division;
* ∂a: where some a is 0 (its row of W' is 0), it takes ∂a from the float weight as above;
* full precision (:class:`ScaledActivations`): where some |s| is under sqrt(eps), it recomputes
  ``v = (a ⊙ x)·W_b (+ b0)`` from the saved x instead of ``v = (y - t) / s``.

The forward launches nothing for these decisions: it hands views of what they need (the vectors,
~64 sampled rows of y) to the model's :class:`hut.methods.hut.reads.HostReads`, which computes every
layer's statistics in a few batched operators when the first backward needs them and reads them in
one go: one host read per step for the whole model, and a fixed number of decision kernels per step
whatever the number of layers. A shift-free layer with healthy scales (HUT's start) never recomputes.
"""
from __future__ import annotations

from typing import Sequence

import torch

from hut.methods.hut.reads import HostReads, tolerance

# One output block: (start, stop, j) with j the index of its vector triple, or -1 for a frozen block.
Blocks = Sequence[tuple[int, int, int]]


def frozen_block(x2: torch.Tensor, W: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Exactly what the frozen Linear/Conv1D computes for these output columns."""
    return torch.addmm(bias, x2, W) if bias is not None else x2 @ W


def _frozen_input_grad(gx: torch.Tensor | None, g: torch.Tensor, Wb: torch.Tensor) -> torch.Tensor:
    """gx + g·W_bᵀ: a frozen block's share of the input gradient."""
    return g @ Wb.t() if gx is None else gx.addmm_(g, Wb.t())


def scaled_block(x2, Wb, bb, a, s, t, bias_inside: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(v, y) of one adapted block in full precision, with autograd: the plain-autograd reference."""
    v = frozen_block(x2 * a, Wb, bb if bias_inside else None)
    return v, torch.addcmul(t, v, s)


class ScaledActivations(torch.autograd.Function):
    """Full precision: y_b = s ⊙ addmm(b0_b, a⊙x, W_b) + t per adapted block; saves x and y."""

    N_ARGS = 6  # arguments before the vectors

    @staticmethod
    def forward(ctx, x2, W, bias, blocks: Blocks, bias_inside: bool, reads: HostReads, *vecs):
        outs: list[torch.Tensor] = []
        with torch.autocast(x2.device.type, enabled=False):
            for start, stop, j in blocks:
                Wb = W[:, start:stop]
                bb = bias[start:stop] if bias is not None else None
                if j < 0:
                    outs.append(frozen_block(x2, Wb, bb))
                    continue
                a, s, t = vecs[3 * j : 3 * j + 3]
                v = frozen_block(x2 * a, Wb, bb if bias_inside else None)
                outs.append(torch.addcmul(t, v, s, out=v))  # v is a fresh temporary: scale it in place
            y = outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1)
        ctx.blocks, ctx.bias_inside, ctx.n_adapted = blocks, bias_inside, len(vecs) // 3
        ctx.decision = reads.defer(blocks, vecs, tolerance(W.dtype))
        ctx.save_for_backward(x2, W, y, bias if bias is not None else W.new_empty(0), *vecs)
        return y

    @staticmethod
    def backward(ctx, gy):
        x2, W, y, bias, *vecs = ctx.saved_tensors
        need_x = ctx.needs_input_grad[0]
        need = ctx.needs_input_grad[ScaledActivations.N_ARGS :]
        flags = ctx.decision.get() if any(need[1::3]) else None  # only ∂s has a decision here
        vec_grads: list[torch.Tensor | None] = [None] * (3 * ctx.n_adapted)
        gx = None
        for start, stop, j in ctx.blocks:
            g = gy[:, start:stop]
            Wb = W[:, start:stop]
            if j < 0:
                gx = _frozen_input_grad(gx, g, Wb) if need_x else gx
                continue
            a, s, t = vecs[3 * j : 3 * j + 3]
            need_a, need_s, need_t = need[3 * j : 3 * j + 3]
            if need_s:
                if flags[2 * j]:  # a degenerate |s|: (y - t) / s would amplify rounding
                    bb = bias[start:stop] if ctx.bias_inside and bias.numel() else None
                    v = frozen_block(x2 * a, Wb, bb)
                else:
                    v = (y[:, start:stop] - t) / s
                vec_grads[3 * j + 1] = (g * v).sum(0)
                del v
            if need_t:
                vec_grads[3 * j + 2] = g.sum(0)
            if need_a or need_x:
                gu = (g * s) @ Wb.t()  # gradient w.r.t. the scaled input a⊙x
                if need_a:
                    vec_grads[3 * j] = (gu * x2).sum(0)
                if need_x:
                    gxa = gu.mul_(a)
                    gx = gxa if gx is None else gx.add_(gxa)
        return (gx, None, None, None, None, None, *vec_grads)


def fold_weight(W: torch.Tensor, bias: torch.Tensor | None, blocks: Blocks, bias_inside: bool, vecs,
                dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(W', c): the scales folded into the float weight and rounded once to ``dtype``; c in float.

    W' has the layout of W (a Linear's transposed view stays a transposed view), so the matmul sees
    what the frozen layer's autocast copy would be. Differentiable when the vectors require grad
    (the plain-autograd reference path).
    """
    Wf = torch.empty_like(W, dtype=dtype)
    cs: list[torch.Tensor] = []
    for start, stop, j in blocks:
        Wb = W[:, start:stop]
        bb = bias[start:stop] if bias is not None else None
        if j < 0:
            Wf[:, start:stop] = Wb
            cs.append(bb if bb is not None else torch.zeros(stop - start, dtype=W.dtype, device=W.device))
            continue
        a, s, t = vecs[3 * j : 3 * j + 3]
        if torch.is_grad_enabled() and (a.requires_grad or s.requires_grad):
            Wf[:, start:stop] = (Wb * a[:, None] * s).to(dtype)
        else:
            _scale_into(Wb, a, s, Wf[:, start:stop])
        cs.append(torch.addcmul(t, bb, s) if bias_inside and bb is not None else t)
    c = cs[0] if len(cs) == 1 else torch.cat(cs)
    return Wf, c


def _scale_into(Wb: torch.Tensor, a: torch.Tensor, s: torch.Tensor | None, out: torch.Tensor) -> None:
    """out <- low(Wb ⊙ (a ⊗ s)) (s None: low(Wb ⊙ a)), computed along Wb's storage order.

    One float temporary, scaled once out of place and once in place, then one cast into ``out``. The obvious ``torch.mul(Wb * a[:, None], s, out=out)``
    on a Linear's transposed weight view costs 7-10 ms at 1024x1024 on one CPU core (a strided,
    mixed-dtype elementwise op), this about 0.6 ms, 2.9x the plain cast autocast would do
    (``python scripts/fold_cost.py``).
    """
    # (W ⊙ a) ⊙ s in both branches: the order merged_weights uses, so the two agree bit for bit.
    if Wb.stride(0) == 1:  # a Linear's weight: rows of Wbᵀ are contiguous
        tmp = Wb.t() * a
        if s is not None:
            tmp.mul_(s[:, None])
        out.t().copy_(tmp)
    else:  # a Conv1D's weight (d×k storage) or a block of its columns
        tmp = Wb * a[:, None]
        if s is not None:
            tmp.mul_(s)
        out.copy_(tmp)


def _grad_a_from_weight(xl: torch.Tensor, g: torch.Tensor, Wb: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """∂a_i = Σ_j (xᵀg)_ij · W_ij · s_j, with W the float weight block: no W' needed, no division by a.

    The same matmul cost as ``g·W'ᵀ`` (N·d·k), computed in the weight's storage order; the d×k
    product is a temporary of backward, not a saved activation.
    """
    if Wb.stride(0) == 1:  # a Linear's transposed view: work on Wbᵀ (k_b×d, contiguous rows)
        m = (g.t() @ xl).float().mul_(Wb.t())
        return s @ m
    m = (xl.t() @ g).float().mul_(Wb)
    return m @ s


def _grad_s(ctx, xl, g, yb, Wb, bias, start, stop, a, s, t, gsum, recompute: bool) -> torch.Tensor:
    """∂s of one block: Σ_n g ⊙ v (bias inside: v includes b0), with Wb the float weight block.

    Cheap form: s ⊙ v = y - t, so ∂s = (Σ g ⊙ y - t·Σ g) / s. ``recompute`` (the shift dominates, or a
    degenerate |s|): u = x_low·low(W_b ⊙ a), the product without s, t and bias, and ∂s = Σ g ⊙ u
    (+ b0·Σ g): one matmul of the block's forward size, no division.
    """
    if not recompute:
        return (torch.linalg.vecdot(g, yb, dim=0).float() - t * gsum) / s
    Wa = torch.empty_like(Wb, dtype=ctx.dtype)
    _scale_into(Wb, a, None, Wa)
    gu = torch.linalg.vecdot(g, xl @ Wa, dim=0).float()
    if ctx.bias_inside and bias.numel():
        gu = gu + bias[start:stop].float() * gsum
    return gu


class FoldedWeight(torch.autograd.Function):
    """Low precision: y = low(c) + x_low · low(W ⊙ a⊗s); saves x_low, W' and y (see the module doc)."""

    N_ARGS = 7  # arguments before the vectors

    @staticmethod
    def forward(ctx, x2, W, bias, blocks: Blocks, bias_inside: bool, reads: HostReads, dtype: torch.dtype, *vecs):
        with torch.autocast(x2.device.type, enabled=False):
            Wf, c = fold_weight(W, bias, blocks, bias_inside, vecs, dtype)
            xl = x2 if x2.dtype == dtype else x2.to(dtype)
            y = torch.addmm(c.to(dtype), xl, Wf)
        ctx.blocks, ctx.x_dtype, ctx.n_adapted = blocks, x2.dtype, len(vecs) // 3
        ctx.bias_inside, ctx.dtype = bias_inside, dtype
        ctx.decision = reads.defer(blocks, vecs, tolerance(dtype), y)
        # Without an input gradient (the lowest adapted layer) W' is not saved: ∂a then comes from
        # the float master weight, which is a parameter (saving it stores nothing new).
        ctx.save_for_backward(xl, Wf if ctx.needs_input_grad[0] else W.new_empty(0), W, y,
                              bias if bias is not None else W.new_empty(0), *vecs)
        return y

    @staticmethod
    def backward(ctx, gy):
        xl, Wf, W, y, bias, *vecs = ctx.saved_tensors
        need_x = ctx.needs_input_grad[0]
        need = ctx.needs_input_grad[FoldedWeight.N_ARGS :]
        flags = ctx.decision.get() if any(need[0::3]) or any(need[1::3]) else None
        vec_grads: list[torch.Tensor | None] = [None] * (3 * ctx.n_adapted)
        gx = None
        for start, stop, j in ctx.blocks:
            g = gy[:, start:stop]
            if j < 0:
                gx = _frozen_input_grad(gx, g, Wf[:, start:stop]) if need_x else gx
                continue
            a, s, t = vecs[3 * j : 3 * j + 3]
            need_a, need_s, need_t = need[3 * j : 3 * j + 3]
            gsum = g.sum(0).float()
            if need_t:
                vec_grads[3 * j + 2] = gsum.to(t.dtype)
            if need_s:
                vec_grads[3 * j + 1] = _grad_s(ctx, xl, g, y[:, start:stop], W[:, start:stop], bias, start, stop,
                                               a, s, t, gsum, flags[2 * j]).to(s.dtype)
            weight_route = need_a and (not need_x or flags[2 * j + 1])  # W' not saved, or a zero in a
            if weight_route:
                vec_grads[3 * j] = _grad_a_from_weight(xl, g, W[:, start:stop], s).to(a.dtype)
            if need_x or (need_a and not weight_route):
                gxb = g @ Wf[:, start:stop].t()  # = a ⊙ ((g ⊙ s)·W_bᵀ): the block's input gradient
                if need_a and not weight_route:
                    vec_grads[3 * j] = (torch.linalg.vecdot(xl, gxb, dim=0).float() / a).to(a.dtype)
                if need_x:
                    gx = gxb if gx is None else gx.add_(gxb)
        if gx is not None and gx.dtype != ctx.x_dtype:
            gx = gx.to(ctx.x_dtype)
        return (gx, None, None, None, None, None, None, *vec_grads)
