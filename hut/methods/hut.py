"""HUT, the Hadamard Updated Transformation (arXiv 2409.13501), and its compact form.

The paper (x·W convention, W0 of shape d×k, frozen) updates a weight as

    Eq. (8)   W_new = (M_A · 1_{r×k} / r) ⊙ W0 ⊙ (1_{d×r} · M_B / r),  M_A ∈ R^{d×r}, M_B ∈ R^{r×k}
    Eq. (9)   h = γ ⊙ (x · W_new) + β,                                γ, β ∈ R^k.

The all-ones products are row means of M_A and column means of M_B, so with
a = mean_r M_A (length d) and b = mean_r M_B (length k)

    W_new = diag(a) · W0 · diag(b)   and   h = (γ ⊙ b) ⊙ ((a ⊙ x) · W0) + β:

an input scale, an output scale and a shift. :func:`hut_reference_weight` keeps Eq. (8) literally
(it builds the d×k matrix; tests only); the layers here never build it: they scale the input,
run the frozen matmul and scale/shift the output.

Frozen bias (the paper's equations have none). ``bias_mode``:

* ``scale`` (default): the bias is the last row of the augmented weight [W0; b0] (the weight of the
  constant input 1), and Eq. (8) is applied to that augmented matrix with the constant input's
  row scale fixed at 1, so b0 is scaled by mean M_B like every other row:
  ``h = γ ⊙ b ⊙ (x·diag(a)·W0 + b0) + β``. In words: HUT wraps the frozen affine layer f as
  ``h = (γ⊙b) ⊙ f(a⊙x) + β``. The frozen layer's own ``addmm`` (with its bias) runs unchanged on
  the scaled input, so at identity initialisation the output is *bit-identical* to the frozen model.
* ``keep``: only W0 is replaced and b0 stays as it is: ``h = γ ⊙ (x·W_new + b0) + β``.

Both span the same functions (β is a free shift); they differ only in how b0 enters the gradient of
M_B. A layer without a bias (Llama) behaves the same in both modes.

Initialisation (the paper states none): γ = 1 and β = 0 always, and

* ``init: ones`` (default) - M_A = M_B = 1: the adapted model equals the frozen model exactly;
* ``init: ones_plus_noise`` - 1 + N(0, init_std²) noise, projected so that every row mean of M_A and
  every column mean of M_B is 1 (up to rounding): the same function as ``ones``, different entries.
  With r = 1 a row/column *is* its mean, so the noise is zero.

Why the rank barely matters (Table 5): ∂L/∂M_A[i, l] = (1/r)·∂L/∂a_i for every l, so all entries of a
row get the same gradient and, under any per-coordinate optimiser, the same update; the function only
ever depends on the means. Under Adam/AdamW (decoupled weight decay included) the mean a_i follows
exactly the update of a single parameter a_i trained with the same lr and weight decay but with
Adam's eps multiplied by r (m and sqrt(v) of each entry are those of ∂L/∂a_i divided by r).
``hut_compact`` is that single-parameter form: one vector a (d), b (k), γ (k), β (k) per matrix; with
``r: R`` it tags a and b with an eps scale R, and an optimiser built with
:func:`apply_eps_scales` then follows HUT rank R's trajectory up to float error.

Memory (``memory_efficient: true``, default): plain autograd saves, per adapted layer, the input x
(for ∂a) and the pre-scale output v = f(a⊙x) (for ∂s); the scaled input a⊙x too if the frozen
weight needed a gradient. :class:`_HutFunction` saves only x and its own output y, which the next op
saves anyway for q, k, v (attention) and ffn_in (the activation), so its storage is shared: one
activation-sized tensor less per adapted layer (for o and ffn_out, followed by dropout and a
residual add, saving y costs what saving v did). In backward it recovers v = (y - t) / s. If some |s| is below sqrt(eps) of the compute dtype the recovery would amplify
rounding, and the function saves v instead (checked once per parameter update, so on CUDA at most
one host sync per layer and optimiser step). ``memory_efficient: false`` runs plain autograd; both
give the same outputs bit for bit and the same gradients up to float error (tested).

Under autocast (bf16/fp16) the input, frozen weight and bias and the small scale vectors are cast to
the autocast dtype, so the output has the dtype the frozen layer would have produced and the frozen
matmul runs in the low precision; gradients flow back to the float32 parameters through the casts.

Fused q/k/v (GPT-2 ``attn.c_attn``, output [q | k | v]): each adapted slice has its own
M_A/M_B/γ/β; a slice that is not adapted is computed by the frozen ``addmm`` on its columns and never
sees an adapter, so its output is the frozen model's.

``merge`` folds everything into the frozen weight and bias and puts stock ``nn.Linear``/``Conv1D``
modules back (zero extra inference latency). ``unmerge`` restores the adapter layer from a saved
reference to it (exact; no division): the merged module keeps the original layer, frozen weights and
all, in a plain attribute that is not part of its ``state_dict``. Pass ``keep_original=False`` to
merge when unmerge is not needed and the memory is.
"""
from __future__ import annotations

import math
import re
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch
import torch.nn as nn
from transformers.pytorch_utils import Conv1D

from hut.methods.base import METHODS, Method
from hut.methods.targets import FUSED_PARTS, PATTERNS, Target, replace_module, resolve_targets

INITS = ("ones", "ones_plus_noise")
BIAS_MODES = ("scale", "keep")
COMPACT_FORMS = ("split", "folded")
SLICE_NAMES = ("q", "k", "v")  # fused c_attn blocks, in output order
WHOLE = "w"  # adapter key of a whole (non-fused) module
_UNMERGE_ATTR = "_hut_unmerge_layer"


# --------------------------------------------------------------------------------------------------
# Eq. (8) as written: the slow reference (tests only)
# --------------------------------------------------------------------------------------------------
def hut_reference_weight(W0: torch.Tensor, M_A: torch.Tensor, M_B: torch.Tensor) -> torch.Tensor:
    """Eq. (8) literally: ``(M_A·1/r) ⊙ W0 ⊙ (1·M_B/r)``, W0 of shape d×k (x·W convention)."""
    d, k = W0.shape
    r = M_A.shape[1]
    if M_A.shape != (d, r) or M_B.shape != (r, k):
        raise ValueError(f"shapes do not fit: W0 {tuple(W0.shape)}, M_A {tuple(M_A.shape)}, M_B {tuple(M_B.shape)}")
    ones_rk = torch.ones(r, k, dtype=W0.dtype, device=W0.device)
    ones_dr = torch.ones(d, r, dtype=W0.dtype, device=W0.device)
    return (M_A @ ones_rk / r) * W0 * (ones_dr @ M_B / r)


def hut_reference_forward(
    x: torch.Tensor,
    W0: torch.Tensor,
    b0: torch.Tensor | None,
    M_A: torch.Tensor,
    M_B: torch.Tensor,
    gamma: torch.Tensor,
    beta: torch.Tensor,
    bias_mode: str = "scale",
) -> torch.Tensor:
    """Eq. (9) on the Eq. (8) weight, with the frozen bias placed as ``bias_mode`` says."""
    W_new = hut_reference_weight(W0, M_A, M_B)
    h = x @ W_new
    if b0 is not None:
        if bias_mode == "scale":  # b0 is the augmented weight's last row: scaled by 1·M_B/r too
            r = M_B.shape[0]
            h = h + b0 * (torch.ones(1, r, dtype=M_B.dtype, device=M_B.device) @ M_B / r)[0]
        else:
            h = h + b0
    return gamma * h + beta


# --------------------------------------------------------------------------------------------------
# Trainable factors of one adapted matrix (or one fused slice)
# --------------------------------------------------------------------------------------------------
class _Factors(nn.Module):
    """The trainable part for one d×k matrix. ``vectors()`` -> (a [d], b [k] or None, γ [k], β [k])."""

    def vectors(self) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    #: parameter name -> Adam eps multiplier (see :func:`apply_eps_scales`)
    eps_scales: dict[str, float] = {}


class HutFactors(_Factors):
    """The paper's parameterisation: M_A (d×r), M_B (r×k), γ (k), β (k): d·r + r·k + 2k parameters."""

    def __init__(self, d: int, k: int, r: int, *, init: str = "ones", init_std: float = 0.02,
                 generator: torch.Generator | None = None, device=None, dtype=None):
        super().__init__()
        self.d, self.k, self.r = d, k, r
        fk = {"device": device, "dtype": dtype}
        self.M_A = nn.Parameter(torch.ones(d, r, **fk))
        self.M_B = nn.Parameter(torch.ones(r, k, **fk))
        self.gamma = nn.Parameter(torch.ones(k, **fk))
        self.beta = nn.Parameter(torch.zeros(k, **fk))
        if init == "ones_plus_noise" and init_std > 0 and r > 1 and self.M_A.device.type != "meta":
            with torch.no_grad():
                self.M_A.copy_(_mean_one_noise(d, r, 1, init_std, generator))
                self.M_B.copy_(_mean_one_noise(r, k, 0, init_std, generator))

    def vectors(self):
        return self.M_A.mean(dim=1), self.M_B.mean(dim=0), self.gamma, self.beta

    def extra_repr(self) -> str:
        return f"d={self.d}, k={self.k}, r={self.r}"


class CompactFactors(_Factors):
    """The means directly. ``split``: a (d), b (k), γ (k), β (k) = HUT at r = 1, d + 3k parameters.
    ``folded``: a (d), γ (k), β (k) with b ≡ 1 (three vectors, d + 2k): the same functions, but
    γ⊙b is one parameter instead of a product of two, so it trains differently from HUT.

    ``eps_scale`` (the HUT rank to imitate) is attached to a and b: see :func:`apply_eps_scales`.
    """

    def __init__(self, d: int, k: int, *, form: str = "split", eps_scale: float = 1.0, device=None, dtype=None):
        super().__init__()
        self.d, self.k, self.form = d, k, form
        fk = {"device": device, "dtype": dtype}
        self.a = nn.Parameter(torch.ones(d, **fk))
        self.b = nn.Parameter(torch.ones(k, **fk)) if form == "split" else None
        self.gamma = nn.Parameter(torch.ones(k, **fk))
        self.beta = nn.Parameter(torch.zeros(k, **fk))
        self.eps_scales = {"a": float(eps_scale)}
        if self.b is not None:
            self.eps_scales["b"] = float(eps_scale)

    def vectors(self):
        return self.a, self.b, self.gamma, self.beta

    def extra_repr(self) -> str:
        return f"d={self.d}, k={self.k}, form={self.form}, eps_scale={self.eps_scales['a']:g}"


def _mean_one_noise(rows: int, cols: int, mean_dim: int, std: float, gen: torch.Generator | None) -> torch.Tensor:
    """1 + N(0, std²) noise with zero mean along ``mean_dim`` (so those means stay 1)."""
    n = torch.randn(rows, cols, generator=gen, dtype=torch.float64) * std
    return 1.0 + (n - n.mean(dim=mean_dim, keepdim=True))


# --------------------------------------------------------------------------------------------------
# The memory-saving autograd function
# --------------------------------------------------------------------------------------------------
def _frozen_block(x2: torch.Tensor, W: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Exactly what the frozen Linear/Conv1D computes for these output columns."""
    return torch.addmm(bias, x2, W) if bias is not None else x2 @ W


class _HutFunction(torch.autograd.Function):
    """y = [blocks], adapted block: s ⊙ (addmm(c, a⊙x, W_blk)) + t; frozen block: addmm(b, x, W_blk).

    Inputs are already in the compute dtype. Saves x, W (a view of the frozen weight or its autocast
    copy, as the frozen layer's own backward does) and the output y; recovers v = (y - t) / s.
    """

    @staticmethod
    def forward(ctx, x2, W, bias, blocks, bias_inside, save_v, *vecs):
        outs: list[torch.Tensor] = []
        saved_v: list[torch.Tensor] = []
        with torch.autocast(x2.device.type, enabled=False):
            for start, stop, j in blocks:
                Wb = W[:, start:stop]
                bb = bias[start:stop] if bias is not None else None
                if j < 0:
                    outs.append(_frozen_block(x2, Wb, bb))
                    continue
                a, s, t = vecs[3 * j : 3 * j + 3]
                v = _frozen_block(x2 * a, Wb, bb if bias_inside else None)
                if save_v:
                    saved_v.append(v)
                    outs.append(v * s + t)
                else:  # v is a fresh temporary: scale it in place, keep only y
                    outs.append(v.mul_(s).add_(t))
            y = outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1)
        ctx.blocks = blocks
        ctx.save_v = save_v
        ctx.n_adapted = len(vecs) // 3
        ctx.save_for_backward(x2, W, y, *vecs, *saved_v)
        return y

    @staticmethod
    def backward(ctx, gy):
        x2, W, y, *rest = ctx.saved_tensors
        m = ctx.n_adapted
        vecs, saved_v = rest[: 3 * m], rest[3 * m :]
        need_x = ctx.needs_input_grad[0]
        vec_grads: list[torch.Tensor | None] = [None] * (3 * m)
        gx = None
        low = y.dtype in (torch.float16, torch.bfloat16)
        with torch.autocast(x2.device.type, enabled=False):
            for start, stop, j in ctx.blocks:
                g = gy[:, start:stop]
                Wb = W[:, start:stop]
                if j < 0:
                    if need_x:
                        gu = g @ Wb.t()
                        gx = gu if gx is None else gx.add_(gu)
                    continue
                a, s, t = vecs[3 * j : 3 * j + 3]
                if ctx.save_v:
                    v = saved_v[j]
                else:  # recover the pre-scale output from the saved output
                    yb = y[:, start:stop]
                    v = (yb.float() - t.float()) / s.float() if low else (yb - t) / s
                need_a, need_s, need_t = ctx.needs_input_grad[6 + 3 * j : 9 + 3 * j]
                if need_s:
                    gs = (g.float() * v.float()).sum(0) if low else (g * v).sum(0)
                    vec_grads[3 * j + 1] = gs.to(s.dtype)
                del v
                if need_t:
                    vec_grads[3 * j + 2] = g.sum(0, dtype=torch.float32).to(t.dtype) if low else g.sum(0)
                if need_a or need_x:
                    gu = (g * s) @ Wb.t()  # gradient w.r.t. the scaled input a⊙x
                    if need_a:
                        ga = (gu.float() * x2.float()).sum(0) if low else (gu * x2).sum(0)
                        vec_grads[3 * j] = ga.to(a.dtype)
                    if need_x:
                        gxa = gu.mul_(a)
                        gx = gxa if gx is None else gx.add_(gxa)
        return (gx, None, None, None, None, None, *vec_grads)


# --------------------------------------------------------------------------------------------------
# The layer
# --------------------------------------------------------------------------------------------------
def _linear_kind(base: nn.Module) -> str:
    if isinstance(base, Conv1D):
        return "conv1d"
    if isinstance(base, nn.Linear):
        return "linear"
    raise ValueError(f"cannot adapt {type(base).__name__}: HUT/LoRA wrap nn.Linear or transformers Conv1D")


def _in_out(base: nn.Module) -> tuple[int, int]:
    """(d_in, d_out) of a Linear (out×in storage) or Conv1D (in×out storage)."""
    w = base.weight
    return (w.shape[0], w.shape[1]) if isinstance(base, Conv1D) else (w.shape[1], w.shape[0])


def _compute_dtype(x: torch.Tensor, weight: torch.Tensor) -> torch.dtype:
    dev = x.device.type
    if torch.is_autocast_enabled(dev) and weight.is_floating_point():
        return torch.get_autocast_dtype(dev)
    return weight.dtype


def fused_slices(family: str, target: Target) -> tuple[int, ...] | None:
    """The blocks to adapt when ``target`` is a fused q/k/v module, else None.

    ``resolve_targets`` reports a fused module whose three parts are all requested as a whole
    module; HUT and LoRA still give each of q, k, v its own factors, as for separate matrices
    (and as the LoRA reference implementation's MergedLinear does for GPT-2).
    """
    for pattern, part in PATTERNS.get(family, {}).values():
        if part is not None and re.search(pattern, target.name):
            return target.slices if target.slices is not None else tuple(range(FUSED_PARTS))
    return None


def output_blocks(d_out: int, slices: Sequence[int] | None) -> list[tuple[str | None, int, int]]:
    """Partition of the output columns: (adapter key or None if frozen, start, stop)."""
    if slices is None:
        return [(WHOLE, 0, d_out)]
    if d_out % FUSED_PARTS:
        raise ValueError(f"fused module output {d_out} is not divisible into {FUSED_PARTS} parts")
    w = d_out // FUSED_PARTS
    return [(SLICE_NAMES[i] if i in slices else None, i * w, (i + 1) * w) for i in range(FUSED_PARTS)]


class HutLinear(nn.Module):
    """A frozen ``nn.Linear``/``Conv1D`` with HUT factors on all or some (fused) output blocks."""

    def __init__(
        self,
        base: nn.Module,
        slices: Sequence[int] | None,
        make_factors: Callable[[int, int], _Factors],
        *,
        bias_mode: str = "scale",
        memory_efficient: bool = True,
    ):
        super().__init__()
        self.kind = _linear_kind(base)
        self.base = base
        self.d_in, self.d_out = _in_out(base)
        self.blocks = output_blocks(self.d_out, slices)
        self.hut = nn.ModuleDict({key: make_factors(self.d_in, stop - start)
                                  for key, start, stop in self.blocks if key is not None})
        self.bias_mode = bias_mode
        self.memory_efficient = memory_efficient
        self._save_v_key: Any = None
        self._save_v_val = False

    def extra_repr(self) -> str:
        return f"kind={self.kind}, blocks={[(k, a, b) for k, a, b in self.blocks]}, bias_mode={self.bias_mode}"

    def weight_io(self) -> torch.Tensor:
        """The frozen weight as d_in×d_out (a view)."""
        w = self.base.weight
        return w if self.kind == "conv1d" else w.t()

    def _block_vectors(self, start: int, stop: int, key: str):
        """(a, s, t) of a block in float: y = s ⊙ (x·diag(a)·W [+ b0 if bias inside]) + t."""
        a, b, gamma, beta = self.hut[key].vectors()
        s = gamma * b if b is not None else gamma
        b0 = self.base.bias
        if self.bias_mode == "keep" and b0 is not None:
            t = gamma * b0[start:stop] + beta
        else:
            t = beta
        return a, s, t

    def _save_v(self, svecs: list[torch.Tensor], dtype: torch.dtype) -> bool:
        key = (dtype, tuple((p._version, p.data_ptr()) for p in self.hut.parameters()))
        if key != self._save_v_key:
            tol = math.sqrt(torch.finfo(dtype).eps)
            mins = torch.stack([s.detach().abs().amin() for s in svecs])
            self._save_v_val = bool((mins < tol).any())  # one host sync per parameter update
            self._save_v_key = key
        return self._save_v_val

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        W = self.weight_io()
        bias = self.base.bias
        cdt = _compute_dtype(x, W)
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.d_in).to(cdt)
        Wc = W.to(cdt)
        bc = bias.to(cdt) if bias is not None else None
        bias_inside = self.bias_mode == "scale"
        spec: list[tuple[int, int, int]] = []
        vecs: list[torch.Tensor] = []
        for key, start, stop in self.blocks:
            if key is None:
                spec.append((start, stop, -1))
                continue
            spec.append((start, stop, len(vecs) // 3))
            vecs.extend(v.to(cdt) for v in self._block_vectors(start, stop, key))
        needs_grad = torch.is_grad_enabled() and (x2.requires_grad or any(v.requires_grad for v in vecs))
        if self.memory_efficient and needs_grad and not W.requires_grad:
            save_v = self._save_v(vecs[1::3], cdt)
            y = _HutFunction.apply(x2, Wc, bc, tuple(spec), bias_inside, save_v, *vecs)
        else:
            outs = []
            for start, stop, j in spec:
                Wb = Wc[:, start:stop]
                bb = bc[start:stop] if bc is not None else None
                if j < 0:
                    outs.append(_frozen_block(x2, Wb, bb))
                else:
                    a, s, t = vecs[3 * j : 3 * j + 3]
                    v = _frozen_block(x2 * a, Wb, bb if bias_inside else None)
                    outs.append(v * s + t)
            y = outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1)
        return y.view(*lead, self.d_out)

    # -------------------------------------------------------------------------------- merge
    @torch.no_grad()
    def merged_module(self, keep_original: bool = True) -> nn.Module:
        """A stock Linear/Conv1D computing this layer's function (bias added if the base had none)."""
        W = self.weight_io()
        b0 = self.base.bias
        wdt = W.dtype
        fdt = torch.promote_types(wdt, torch.float32)
        Wm = W.detach().to(fdt).clone()
        bm = b0.detach().to(fdt).clone() if b0 is not None else torch.zeros(self.d_out, dtype=fdt, device=W.device)
        for key, start, stop in self.blocks:
            if key is None:
                continue
            a, s, t = (v.detach().to(fdt) for v in self._block_vectors(start, stop, key))
            Wm[:, start:stop] = a[:, None] * W[:, start:stop].to(fdt) * s[None, :]
            if self.bias_mode == "scale":
                bm[start:stop] = s * bm[start:stop] + t
            else:
                bm[start:stop] = t if b0 is not None else bm[start:stop] + t
        with torch.device("meta"):
            new = Conv1D(self.d_out, self.d_in) if self.kind == "conv1d" else nn.Linear(self.d_in, self.d_out)
        w_store = Wm if self.kind == "conv1d" else Wm.t()
        new.weight = nn.Parameter(w_store.to(wdt).contiguous(), requires_grad=self.base.weight.requires_grad)
        bdt = b0.dtype if b0 is not None else wdt
        new.bias = nn.Parameter(bm.to(bdt), requires_grad=b0.requires_grad if b0 is not None else False)
        new.train(self.base.training)
        if keep_original:
            object.__setattr__(new, _UNMERGE_ATTR, self)  # not a submodule: not in state_dict
        return new


# --------------------------------------------------------------------------------------------------
# Whole-model helpers
# --------------------------------------------------------------------------------------------------
def hut_layers(model: nn.Module) -> list[tuple[str, HutLinear]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, HutLinear)]


def merge_hut(model: nn.Module, keep_original: bool = True) -> nn.Module:
    """Replace every :class:`HutLinear` by its merged stock module (in place; returns ``model``)."""
    for name, layer in hut_layers(model):
        new = layer.merged_module(keep_original)
        if name == "":
            return new
        replace_module(model, name, new)
    return model


def unmerge_hut(model: nn.Module) -> nn.Module:
    """Undo :func:`merge_hut` (merged with ``keep_original=True``): put the HUT layers back."""
    found = False
    for name, m in list(model.named_modules()):
        layer = m.__dict__.get(_UNMERGE_ATTR)
        if layer is None:
            continue
        found = True
        layer.to(m.weight.device)
        if name == "":
            return layer
        replace_module(model, name, layer)
    if not found:
        raise ValueError("nothing to unmerge: no module merged by HUT with keep_original=True")
    return model


def adam_eps_scales(model: nn.Module) -> dict[int, float]:
    """id(parameter) -> Adam eps multiplier requested by its factors (compact a, b: the rank r)."""
    out: dict[int, float] = {}
    for m in model.modules():
        if isinstance(m, _Factors):
            for pname, scale in m.eps_scales.items():
                p = getattr(m, pname, None)
                if isinstance(p, nn.Parameter) and scale != 1.0:
                    out[id(p)] = scale
    return out


def apply_eps_scales(param_groups: Iterable[Mapping[str, Any]] | Iterable[nn.Parameter], model: nn.Module,
                     eps: float) -> list[dict[str, Any]]:
    """Split optimiser param groups so that tagged parameters get ``eps × scale``.

    ``param_groups``: parameters, or dicts as ``torch.optim`` takes them. Groups without a tagged
    parameter come back unchanged (with ``eps`` set); HUT's own parameters are never tagged, so for
    every other method this is a no-op. ``hut_compact`` with ``r: R`` under
    ``AdamW(apply_eps_scales(groups, model, eps), eps=eps, ...)`` follows HUT rank R under
    ``AdamW(groups, eps=eps, ...)``.
    """
    groups = list(param_groups)
    if groups and not isinstance(groups[0], Mapping):
        groups = [{"params": groups}]
    scales = adam_eps_scales(model)
    out: list[dict[str, Any]] = []
    for g in groups:
        params = list(g["params"])
        by_scale: dict[float, list] = {}
        for p in params:
            by_scale.setdefault(scales.get(id(p), 1.0), []).append(p)
        base_eps = g.get("eps", eps)
        for scale, ps in by_scale.items():
            out.append({**g, "params": ps, "eps": base_eps * scale})
    return out


# --------------------------------------------------------------------------------------------------
# Config validation
# --------------------------------------------------------------------------------------------------
def _positive_int(cfg: Mapping[str, Any], key: str, method: str, default: int | None = None) -> int:
    v = cfg.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise ValueError(f"method.{key} must be a positive integer for method '{method}' (got {v!r})")
    return int(v)


def _choice(cfg: Mapping[str, Any], key: str, choices: Sequence[str], default: str, method: str) -> str:
    v = cfg.get(key, default)
    if v not in choices:
        raise ValueError(f"method.{key}={v!r} for method '{method}'; choose one of {', '.join(choices)}")
    return str(v)


def _bool(cfg: Mapping[str, Any], key: str, default: bool, method: str) -> bool:
    v = cfg.get(key, default)
    if not isinstance(v, bool):
        raise ValueError(f"method.{key} must be true or false for method '{method}' (got {v!r})")
    return v


def _targets(cfg: Mapping[str, Any]) -> list[str] | str:
    t = cfg.get("targets", ["q", "v"])
    return t if isinstance(t, str) else [str(x) for x in t]


# --------------------------------------------------------------------------------------------------
# The methods
# --------------------------------------------------------------------------------------------------
@METHODS.register("hut")
class HutMethod(Method):
    """HUT as in the paper: M_A (d×r), M_B (r×k), γ, β per adapted matrix.

    Config: ``r`` (int > 0), ``targets`` (short names, default [q, v]), ``init`` (ones |
    ones_plus_noise), ``init_std``, ``bias_mode`` (scale | keep), ``memory_efficient`` (bool).
    """

    name = "hut"
    identity_at_init = True
    mergeable = True

    def __init__(self, cfg: Mapping[str, Any]):
        super().__init__(cfg)
        self._validate()

    def _validate(self) -> None:
        c = self.cfg
        self.r = _positive_int(c, "r", self.name, 8)
        self.init = _choice(c, "init", INITS, "ones", self.name)
        self.init_std = float(c.get("init_std", 0.02))
        if not self.init_std >= 0:
            raise ValueError(f"method.init_std must be >= 0 (got {self.init_std!r})")
        self.bias_mode = _choice(c, "bias_mode", BIAS_MODES, "scale", self.name)
        self.memory_efficient = _bool(c, "memory_efficient", True, self.name)
        self.targets = _targets(c)

    def _factory(self, base: nn.Module, gen: torch.Generator) -> Callable[[int, int], _Factors]:
        w = base.weight
        return lambda d, k: HutFactors(d, k, self.r, init=self.init, init_std=self.init_std, generator=gen,
                                       device=w.device, dtype=w.dtype)

    def apply(self, model: nn.Module, family: str) -> nn.Module:
        targets = resolve_targets(model, family, self.targets)
        # One draw from the global RNG whatever r, init or method (hut / hut_compact), so that the
        # rest of a run (dropout, data order) sees the same random stream across a rank ablation.
        seed = int(torch.randint(0, 2**62, (1,), device="cpu").item())
        gen = torch.Generator().manual_seed(seed)
        for t in targets:
            base = model.get_submodule(t.name)
            _linear_kind(base)
            layer = HutLinear(base, fused_slices(family, t), self._factory(base, gen),
                              bias_mode=self.bias_mode, memory_efficient=self.memory_efficient)
            replace_module(model, t.name, layer)
        return model

    def merge(self, model: nn.Module, keep_original: bool = True) -> nn.Module:
        return merge_hut(model, keep_original=keep_original)

    def unmerge(self, model: nn.Module) -> nn.Module:
        return unmerge_hut(model)


@METHODS.register("hut_compact")
class HutCompactMethod(HutMethod):
    """HUT with the means as parameters: a (d), b (k), γ (k), β (k) per matrix (``form: split``).

    The same function as HUT at every rank, d + 3k parameters instead of d·r + r·k + 2k. Under
    Adam/AdamW, HUT rank r with eps ε moves each mean exactly as this form moves a, b with eps r·ε
    (same lr, same decoupled weight decay; γ and β are shared as they are): set ``r`` here to that
    rank and build the optimiser with :func:`apply_eps_scales` to reproduce HUT rank r step for
    step; with a plain optimiser (eps ε everywhere) this is HUT at r = 1. ``r`` never changes the
    parameter count. ``form: folded`` drops b (γ carries the whole output scale; three vectors,
    d + 2k): the same functions again, but a different trajectory, since HUT trains the product γ⊙b.

    Config: ``r`` (default 1), ``form`` (split | folded), ``targets``, ``init`` (ones; ones_plus_noise
    is accepted and is the same, since HUT's noisy init has means 1), ``bias_mode``,
    ``memory_efficient``.
    """

    name = "hut_compact"

    def _validate(self) -> None:
        c = self.cfg
        self.r = _positive_int(c, "r", self.name, 1)
        self.init = _choice(c, "init", INITS, "ones", self.name)
        self.form = _choice(c, "form", COMPACT_FORMS, "split", self.name)
        self.bias_mode = _choice(c, "bias_mode", BIAS_MODES, "scale", self.name)
        self.memory_efficient = _bool(c, "memory_efficient", True, self.name)
        self.targets = _targets(c)

    def _factory(self, base: nn.Module, gen: torch.Generator) -> Callable[[int, int], _Factors]:
        w = base.weight
        return lambda d, k: CompactFactors(d, k, form=self.form, eps_scale=self.r, device=w.device, dtype=w.dtype)
